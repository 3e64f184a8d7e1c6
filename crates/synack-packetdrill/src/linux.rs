//! The live Linux kernel as the oracle: runs a script with upstream packetdrill (the C tool Linux
//! tests its TCP with) against this machine's kernel, the way upstream's `run_all.py` does.
//!
//! - Each script runs in a fresh network namespace of its own (its sysctls stay private; the
//!   namespace is deleted afterwards, also on failure or timeout), with `--send_omit_free` and
//!   `run_all.py`'s addresses: IPv4 (`--local_ip=192.168.0.1 --remote_ip=192.0.2.1`, gateway
//!   192.168.0.1, netmask 255.255.0.0) unless the script pins `--ip_version=ipv6` (then the
//!   IPv6 set, MTU 1520). A flag whose option the script's header sets itself (`--local_ip`,
//!   `--remote_ip`) is left out, so the script's own value holds (packetdrill would let the
//!   command line override it). The addresses exist only on packetdrill's TUN device inside
//!   that namespace.
//! - The script runs from a staged copy of itself and of the files its commands name by a
//!   relative path (`./defaults.sh`, `../common/defaults.sh`), shell scripts made executable and
//!   symbolic links stored as plain files resolved, so a read-only checkout works; upstream's
//!   `set_sysctls.py` helper, when a script names it and it is not there, by a stand-in.
//! - A namespace may only select an allowed congestion control, so cubic and reno are added to
//!   `net.ipv4.tcp_allowed_congestion_control` while a [`Kernel`] exists (restored on drop), and
//!   each namespace starts with `tcp_congestion_control=cubic`, the kernel's built-in default
//!   (a namespace otherwise inherits the host's choice, BBR on some machines).
//! - Timing: packetdrill's default tolerance is 4 ms. The kernel's timers land on jiffies (4 ms
//!   at HZ=250), so a script may allow itself kselftest's slow-machine tolerance on the kernel
//!   side only, with a comment line `// linux-tolerance-usecs: 14000` (at most 14000);
//!   [`KernelOptions::tolerance_usecs`] sets it for a whole run.
//! - With [`KernelOptions::strict_segments`] (our suite) every outbound line matches exactly one
//!   packet, except in a script that says `// linux-merge-segments: <why>`.
//!
//! Needs root (namespaces, TUN). [`find_packetdrill`] says where the binary comes from.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The upstream packetdrill the oracle is calibrated with.
pub const UPSTREAM_REPO: &str = "https://github.com/google/packetdrill";
/// Its commit (the sources live in `gtests/net/packetdrill` of that tree).
pub const UPSTREAM_COMMIT: &str = "2c4001c4d6fc04a3bbd01d4b92be62717a37648a";
/// Environment variable naming a packetdrill binary.
pub const ENV_BINARY: &str = "SYNACK_LINUX_PACKETDRILL";
/// Environment variable naming packetdrill's source directory (`gtests/net/packetdrill` of a
/// checkout of [`UPSTREAM_COMMIT`]) to build the binary from when none is found.
pub const ENV_SOURCE: &str = "SYNACK_PACKETDRILL_SRC";
/// The largest kernel-side tolerance a script may ask for: kselftest's slow-machine value.
pub const MAX_TOLERANCE_USECS: u64 = 14_000;
/// The comment a script uses to ask for a kernel-side tolerance.
pub const TOLERANCE_COMMENT: &str = "// linux-tolerance-usecs:";
/// The comment a script uses to let packetdrill merge consecutive packets into one outbound
/// line even under [`KernelOptions::strict_segments`] (Linux sends a long write as several
/// TSO packets whose sizes depend on its pacing rate), followed by the reason.
pub const MERGE_COMMENT: &str = "// linux-merge-segments:";

const V4_FLAGS: [&str; 5] = [
    "--ip_version=ipv4",
    "--local_ip=192.168.0.1",
    "--gateway_ip=192.168.0.1",
    "--netmask_ip=255.255.0.0",
    "--remote_ip=192.0.2.1",
];
const V6_FLAGS: [&str; 5] = [
    "--ip_version=ipv6",
    "--mtu=1520",
    "--local_ip=fd3d:0a0b:17d6::1",
    "--gateway_ip=fd3d:0a0b:17d6:8888::1",
    "--remote_ip=fd3d:fa7b:d17d::1",
];
/// The `-D` symbols `run_all.py` passes (IPv4 run, then IPv6 run).
const V4_DEFINES: [&str; 4] = [
    "TFO_COOKIE=3021b9d889017eeb",
    "CODE=host_unreachable",
    "CMSG_LEVEL_IP=SOL_IP",
    "CMSG_TYPE_RECVERR=IP_RECVERR",
];
const V6_DEFINES: [&str; 3] = [
    "TFO_COOKIE=c1d1e9742a47a9bc",
    "CMSG_LEVEL_IP=SOL_IPV6",
    "CMSG_TYPE_RECVERR=IPV6_RECVERR",
];
const ALLOWED_CC: &str = "/proc/sys/net/ipv4/tcp_allowed_congestion_control";
/// Stands in for upstream's `set_sysctls.py` helper (which is code, not part of the script
/// data): sets each `/proc/sys/PATH=VALUE` argument, and leaves the restore script the
/// scripts' cleanup line runs (`/tmp/sysctl_restore_${PPID}.sh`, `${PPID}` being packetdrill)
/// as a no-op, since every script has a namespace of its own. packetdrill is its parent or
/// grandparent (the shell running the command may or may not exec it).
const SET_SYSCTLS_STANDIN: &str = r#"#!/bin/sh
# synack oracle: sets /proc/sys/PATH=VALUE for each argument (stand-in for set_sysctls.py).
for a in "$@"; do
    echo "${a#*=}" > "${a%%=*}" || exit 1
done
gp=$(cut -d' ' -f4 "/proc/$PPID/stat" 2>/dev/null)
for p in $PPID $gp; do
    if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = packetdrill ]; then
        echo '#!/bin/sh' > "/tmp/sysctl_restore_$p.sh" && chmod +x "/tmp/sysctl_restore_$p.sh"
    fi
done
"#;

/// Whether the script's header sets the option of command-line flag `flag` (`--local_ip=...`)
/// itself. packetdrill lets the command line override a script's options, so `run_all.py`'s
/// addresses would replace the ones a script names; but a script that names its addresses
/// (fastopen/server/simple*.pkt: "the differences are the local or remote IP addresses", its
/// cookies computed from them) means to run with them, and synack's runner uses them. The
/// oracle then leaves that flag out, so Linux runs the script as written too.
fn script_pins(text: &str, flag: &str) -> bool {
    let name = flag.split('=').next().unwrap_or(flag);
    text.lines().any(|l| {
        l.trim()
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('='))
    })
}

/// Where the packetdrill binary comes from, in this order: `explicit` (`--packetdrill PATH`),
/// the environment variable [`ENV_BINARY`], `packetdrill` on `PATH`, or a build from the
/// sources [`ENV_SOURCE`] names (cached in the temporary directory).
pub fn find_packetdrill(explicit: Option<&Path>) -> Result<PathBuf, String> {
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if let Some(p) = explicit {
        return if executable(p) {
            Ok(p.to_path_buf())
        } else {
            Err(format!(
                "--packetdrill {}: not an executable file",
                p.display()
            ))
        };
    }
    if let Some(p) = std::env::var_os(ENV_BINARY) {
        let p = PathBuf::from(p);
        return if executable(&p) {
            Ok(p)
        } else {
            Err(format!(
                "{ENV_BINARY}={}: not an executable file",
                p.display()
            ))
        };
    }
    if let Some(paths) = std::env::var_os("PATH") {
        if let Some(p) = std::env::split_paths(&paths)
            .map(|d| d.join("packetdrill"))
            .find(|p| executable(p))
        {
            return Ok(p);
        }
    }
    if let Some(src) = std::env::var_os(ENV_SOURCE) {
        return build_from_source(Path::new(&src));
    }
    Err(format!(
        "no packetdrill binary: pass --packetdrill PATH, set {ENV_BINARY}, put packetdrill on \
         PATH, or set {ENV_SOURCE} to the gtests/net/packetdrill directory of {UPSTREAM_REPO} \
         at commit {UPSTREAM_COMMIT} to build it (needs gcc, make, bison, flex)"
    ))
}

/// Builds packetdrill from `src` (upstream's `gtests/net/packetdrill`) in a copy under the
/// temporary directory, once: a later call finds the binary there.
pub fn build_from_source(src: &Path) -> Result<PathBuf, String> {
    if !src.join("configure").is_file() {
        return Err(format!(
            "{ENV_SOURCE}={}: no packetdrill sources there (expected its configure script)",
            src.display()
        ));
    }
    let abs = std::fs::canonicalize(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in abs.as_os_str().as_encoded_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    let out = std::env::temp_dir().join(format!("synack-packetdrill-{h:016x}"));
    let bin = out.join("packetdrill");
    if bin.is_file() {
        return Ok(bin);
    }
    // Built aside and renamed into place, so that runs building at once do not collide.
    let building = out.with_extension(format!("building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    copy_tree(&abs, &building).map_err(|e| format!("copying {}: {e}", abs.display()))?;
    for step in [
        &["./configure"][..],
        &["make", "-s", "-j2", "packetdrill"][..],
    ] {
        let o = Command::new(step[0])
            .args(&step[1..])
            .current_dir(&building)
            .output()
            .map_err(|e| format!("building packetdrill: {}: {e}", step[0]))?;
        if !o.status.success() {
            return Err(format!(
                "building packetdrill in {}: `{}` failed (needs gcc, make, bison, flex):\n{}",
                building.display(),
                step.join(" "),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
    }
    if std::fs::rename(&building, &out).is_err() {
        let _ = std::fs::remove_dir_all(&building);
    }
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "building packetdrill: no {} after the build",
            bin.display()
        ))
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type()?.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)?;
            let mut p = std::fs::metadata(&dst)?.permissions();
            p.set_mode(p.mode() | 0o200);
            std::fs::set_permissions(&dst, p)?;
        }
    }
    Ok(())
}

/// Why the kernel side cannot run here, if it cannot: not root, or no `ip` command.
pub fn missing_privileges() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2));
    if euid != Some("0") {
        return Some("not root (packetdrill needs network namespaces and a TUN device)".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("the `ip` command (iproute2) is not installed".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    None
}

/// How the kernel side runs.
#[derive(Debug, Clone)]
pub struct KernelOptions {
    pub packetdrill: PathBuf,
    /// `--tolerance_usecs` for every script (a script's own comment wins when larger).
    pub tolerance_usecs: Option<u64>,
    /// A script still running after this is killed and fails.
    pub timeout: Duration,
    /// Extra `-D NAME=VALUE` symbols.
    pub defines: Vec<String>,
    /// packetdrill's `--verbose`: every packet and call in the output.
    pub verbose: bool,
    /// packetdrill's `--strict_segments`: each outbound line matches exactly one packet.
    /// Without it packetdrill merges consecutive packets until a line's payload is reached,
    /// which also swallows a pure ACK sent just before the data a line expects.
    pub strict_segments: bool,
}

/// How a script ended on the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelOutcome {
    Pass,
    /// packetdrill failed; its first error line, and the script line it names if any.
    Fail {
        line: Option<u32>,
        message: String,
    },
    /// Killed after [`KernelOptions::timeout`].
    TimedOut,
    /// The run could not be set up (namespace, staging, spawning).
    Error(String),
}

impl KernelOutcome {
    /// The outcome in one line: `pass`, packetdrill's first error with its script line, or why
    /// the run did not finish (`elapsed`: how long a killed run had been going).
    pub fn summary(&self, elapsed: Duration) -> String {
        match self {
            KernelOutcome::Pass => "pass".into(),
            KernelOutcome::Fail {
                line: Some(l),
                message,
            } => format!("line {l}: {message}"),
            KernelOutcome::Fail {
                line: None,
                message,
            } => message.clone(),
            KernelOutcome::TimedOut => format!("killed after {:.0} s", elapsed.as_secs_f64()),
            KernelOutcome::Error(e) => format!("could not run: {e}"),
        }
    }
}

/// One script's kernel run.
#[derive(Debug, Clone)]
pub struct KernelReport {
    pub script: PathBuf,
    pub outcome: KernelOutcome,
    /// packetdrill's output (stdout and stderr).
    pub output: String,
    pub elapsed: Duration,
}

/// The kernel side of a run: holds the staging directory and the congestion-control
/// allowance, both undone on drop. [`Kernel::run`] may be called from several threads.
pub struct Kernel {
    opts: KernelOptions,
    stage: PathBuf,
    allowed_before: Option<String>,
    next: AtomicUsize,
    stop: Arc<AtomicBool>,
    /// coreutils' `stdbuf` is there to line-buffer packetdrill's output.
    stdbuf: bool,
}

impl Kernel {
    /// Prepares the kernel side; `stop` set to true ends running scripts early (Ctrl-C).
    pub fn new(opts: KernelOptions, stop: Arc<AtomicBool>) -> Result<Kernel, String> {
        if let Some(why) = missing_privileges() {
            return Err(why);
        }
        let stage = std::env::temp_dir().join(format!("synack-oracle-{}", std::process::id()));
        std::fs::create_dir_all(&stage).map_err(|e| format!("{}: {e}", stage.display()))?;
        // cubic may be a module; reno is built in.
        let _ = Command::new("modprobe")
            .arg("tcp_cubic")
            .stderr(Stdio::null())
            .status();
        let before = std::fs::read_to_string(ALLOWED_CC)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("{ALLOWED_CC}: {e}"))?;
        let mut allowed: Vec<&str> = before.split_whitespace().collect();
        let mut allowed_before = None;
        if !(allowed.contains(&"cubic") && allowed.contains(&"reno")) {
            for cc in ["cubic", "reno"] {
                if !allowed.contains(&cc) {
                    allowed.push(cc);
                }
            }
            std::fs::write(ALLOWED_CC, allowed.join(" "))
                .map_err(|e| format!("{ALLOWED_CC}: allowing cubic and reno: {e}"))?;
            allowed_before = Some(before);
        }
        let stdbuf = Command::new("stdbuf")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        Ok(Kernel {
            opts,
            stage,
            allowed_before,
            next: AtomicUsize::new(0),
            stop,
            stdbuf,
        })
    }

    /// Runs one script on the kernel.
    pub fn run(&self, script: &Path) -> KernelReport {
        let start = Instant::now();
        let (outcome, output) = match self.run_inner(script) {
            Ok(r) => r,
            Err(e) => (KernelOutcome::Error(e), String::new()),
        };
        KernelReport {
            script: script.to_path_buf(),
            outcome,
            output,
            elapsed: start.elapsed(),
        }
    }

    fn run_inner(&self, script: &Path) -> Result<(KernelOutcome, String), String> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let text = std::fs::read_to_string(script)
            .map_err(|e| format!("cannot read {}: {e}", script.display()))?;
        let tolerance = script_tolerance(&text)?
            .into_iter()
            .chain(self.opts.tolerance_usecs)
            .max();
        let dir = self.stage.join(n.to_string());
        let (cwd, file) = stage_script(script, &text, &dir)?;
        let ns = NetNs::add(&format!("synack-oracle-{}-{n}", std::process::id()))?;
        let log_path = dir.join("output.txt");
        let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let v6 = text.contains("--ip_version=ipv6");
        let (fam, defines): (&[&str], &[&str]) = if v6 {
            (&V6_FLAGS, &V6_DEFINES)
        } else {
            (&V4_FLAGS, &V4_DEFINES)
        };
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.0]);
        if self.stdbuf {
            // Line-buffered, so a run killed at the timeout still shows how far it got.
            cmd.args(["stdbuf", "-oL", "-eL"]);
        }
        cmd.arg(&self.opts.packetdrill)
            .arg("--send_omit_free")
            .args(fam.iter().filter(|f| !script_pins(&text, f)));
        if let Some(t) = tolerance {
            cmd.arg(format!("--tolerance_usecs={t}"));
        }
        if self.opts.verbose {
            cmd.arg("--verbose");
        }
        if self.opts.strict_segments && !has_comment(&text, MERGE_COMMENT) {
            cmd.arg("--strict_segments");
        }
        for d in defines
            .iter()
            .copied()
            .chain(self.opts.defines.iter().map(String::as_str))
        {
            cmd.arg("-D").arg(d);
        }
        cmd.arg(&file)
            .current_dir(&cwd)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Its own process group, so a timeout kills the commands it started too.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting packetdrill: {e}"))?;
        let deadline = Instant::now() + self.opts.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) => {}
                Err(e) => return Err(format!("waiting for packetdrill: {e}")),
            }
            if Instant::now() >= deadline || self.stop.load(Ordering::Relaxed) {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stderr(Stdio::null())
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        drop(ns);
        let _ = std::fs::remove_file(format!("/tmp/sysctl_restore_{}.sh", child.id()));
        let output = std::fs::read_to_string(&log_path).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        let outcome = match status {
            None if self.stop.load(Ordering::Relaxed) => KernelOutcome::Error("interrupted".into()),
            None => KernelOutcome::TimedOut,
            Some(s) if s.success() => KernelOutcome::Pass,
            Some(s) => {
                let base = file.to_string_lossy();
                first_error(&output, &base).map_or_else(
                    || KernelOutcome::Fail {
                        line: None,
                        message: format!("packetdrill exited with {s}"),
                    },
                    |(line, message)| KernelOutcome::Fail { line, message },
                )
            }
        };
        Ok((outcome, output))
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        if let Some(before) = &self.allowed_before {
            let _ = std::fs::write(ALLOWED_CC, before);
        }
        let _ = std::fs::remove_dir_all(&self.stage);
    }
}

/// A network namespace, deleted on drop.
struct NetNs(String);

impl NetNs {
    fn add(name: &str) -> Result<NetNs, String> {
        let ip = |args: &[&str]| -> Result<(), String> {
            let o = Command::new("ip")
                .args(args)
                .output()
                .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
            if o.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
        };
        ip(&["netns", "add", name])?;
        let ns = NetNs(name.to_string());
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        ip(&[
            "netns",
            "exec",
            name,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.tcp_congestion_control=cubic",
        ])?;
        Ok(ns)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

/// The kernel-side tolerance a script asks for with [`TOLERANCE_COMMENT`].
pub fn script_tolerance(text: &str) -> Result<Option<u64>, String> {
    let Some(rest) = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(TOLERANCE_COMMENT))
    else {
        return Ok(None);
    };
    let word = rest.split_whitespace().next().unwrap_or("");
    let v: u64 = word
        .parse()
        .map_err(|_| format!("{TOLERANCE_COMMENT} needs a number of microseconds, got {word:?}"))?;
    if v > MAX_TOLERANCE_USECS {
        return Err(format!(
            "{TOLERANCE_COMMENT} {v} is more than {MAX_TOLERANCE_USECS} (kselftest's \
             slow-machine tolerance)"
        ));
    }
    Ok(Some(v))
}

/// Whether a line of `text` starts with `comment`.
pub fn has_comment(text: &str, comment: &str) -> bool {
    text.lines().any(|l| l.trim_start().starts_with(comment))
}

/// packetdrill's first error line (`NAME.pkt:LINE: error ...`, or `NAME.pkt: ...`), with the
/// line number when it names one.
pub fn first_error(output: &str, script_name: &str) -> Option<(Option<u32>, String)> {
    let prefix = format!("{script_name}:");
    output.lines().find_map(|l| {
        let rest = l.strip_prefix(&prefix)?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            Some((None, rest.trim().to_string()))
        } else {
            let msg = rest[digits.len()..].trim_start_matches(':').trim();
            Some((digits.parse().ok(), msg.to_string()))
        }
    })
}

/// Copies `script` into `dir`, at the same place relative to the files its text names by a
/// relative path (`./defaults.sh`, `../common/defaults.sh`), which are copied too: shell
/// scripts made executable, a plain file holding only the relative path of another file (a
/// symbolic link stored as a file) replaced by that file. Returns the directory to run in and
/// the script's file name.
pub fn stage_script(script: &Path, text: &str, dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let src_dir = script.parent().unwrap_or(Path::new("."));
    let name = script
        .file_name()
        .ok_or_else(|| format!("{}: not a file", script.display()))?;
    let refs: Vec<PathBuf> = text
        .split(|c: char| c.is_whitespace() || c == '`' || c == '"' || c == '\'')
        .filter(|w| w.starts_with("./") || w.starts_with("../"))
        .map(PathBuf::from)
        .collect();
    // The run directory sits as deep as the deepest `../` reference needs.
    let depth = refs
        .iter()
        .map(|r| {
            r.components()
                .take_while(|c| *c == Component::ParentDir)
                .count()
        })
        .max()
        .unwrap_or(0);
    let mut cwd = dir.to_path_buf();
    for i in 0..depth {
        cwd.push(format!("d{i}"));
    }
    std::fs::create_dir_all(&cwd).map_err(|e| format!("{}: {e}", cwd.display()))?;
    std::fs::copy(script, cwd.join(name)).map_err(|e| format!("{}: {e}", script.display()))?;
    for r in refs {
        let src = src_dir.join(&r);
        let standin = r.file_name().is_some_and(|n| n == "set_sysctls.py");
        if !src.is_file() && !standin {
            continue; // packetdrill reports the missing file as the kernel run's failure
        }
        let dst = normalize(&cwd.join(&r));
        if !dst.starts_with(dir) {
            continue;
        }
        if let Some(p) = dst.parent() {
            std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        let body = if src.is_file() {
            std::fs::read(&src).map_err(|e| format!("{}: {e}", src.display()))?
        } else {
            SET_SYSCTLS_STANDIN.as_bytes().to_vec()
        };
        let body = match stored_link_target(&src, &body) {
            Some(target) => {
                std::fs::read(&target).map_err(|e| format!("{}: {e}", target.display()))?
            }
            None => body,
        };
        std::fs::write(&dst, body).map_err(|e| format!("{}: {e}", dst.display()))?;
        let mode = if dst.extension().is_some_and(|e| e == "sh" || e == "py") {
            0o755
        } else {
            0o644
        };
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("{}: {e}", dst.display()))?;
    }
    Ok((cwd, PathBuf::from(name)))
}

/// The file a symbolic link stored as a plain file points to, if `body` is one: a single line
/// naming an existing file relative to `file`'s directory.
fn stored_link_target(file: &Path, body: &[u8]) -> Option<PathBuf> {
    if body.len() > 255 {
        return None;
    }
    let s = std::str::from_utf8(body).ok()?.trim_end_matches('\n');
    if s.is_empty() || s.contains(char::is_whitespace) || s.starts_with('#') {
        return None;
    }
    let target = file.parent()?.join(s);
    target.is_file().then_some(target)
}

/// `a/b/../c` → `a/c`, lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("synack-linux-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_script_keeps_the_addresses_it_names() {
        let text = "// comment\n--local_ip=192.168.0.2\n--remote_ip=10.248.0.2\n\n0 socket(...)\n";
        let kept: Vec<_> = V4_FLAGS.iter().filter(|f| !script_pins(text, f)).collect();
        assert_eq!(
            kept,
            [
                &"--ip_version=ipv4",
                &"--gateway_ip=192.168.0.1",
                &"--netmask_ip=255.255.0.0"
            ]
        );
        // A longer option with the same prefix is another option.
        assert!(!script_pins("--local_ipx=1\n", "--local_ip=192.168.0.1"));
        assert!(V4_FLAGS.iter().all(|f| !script_pins("0 socket(...)\n", f)));
    }

    #[test]
    fn first_error_line_and_its_number() {
        let out = "socket syscall: 1.0\n\
                   x.pkt:20: error handling packet: live packet field tcp_ack_seq: expected: 1 vs actual: 2\n\
                   script packet:  0.100 . 1:1(0) ack 1\n";
        assert_eq!(
            first_error(out, "x.pkt"),
            Some((
                Some(20),
                "error handling packet: live packet field tcp_ack_seq: expected: 1 vs actual: 2"
                    .into()
            ))
        );
        let out = "x.pkt: error executing code: 'python3' returned non-zero status 1\n";
        assert_eq!(
            first_error(out, "x.pkt"),
            Some((
                None,
                "error executing code: 'python3' returned non-zero status 1".into()
            ))
        );
        assert_eq!(first_error("nothing\n", "x.pkt"), None);
    }

    #[test]
    fn tolerance_comment() {
        assert_eq!(script_tolerance("// hello\n0 socket()\n"), Ok(None));
        assert_eq!(
            script_tolerance("// linux-tolerance-usecs: 14000 (HZ=250 ticks)\n"),
            Ok(Some(14000))
        );
        let e = script_tolerance("// linux-tolerance-usecs: 20000\n").unwrap_err();
        assert!(e.contains("more than 14000"), "{e}");
        let e = script_tolerance("// linux-tolerance-usecs: lots\n").unwrap_err();
        assert!(e.contains("needs a number"), "{e}");
    }

    #[test]
    fn staging_copies_referenced_files_and_resolves_stored_links() {
        // The layout of upstream's tree: tcp/close/x.pkt runs `../common/defaults.sh`, and
        // tcp/common/defaults.sh is a link to ../../common/defaults.sh stored as a file.
        let root = scratch("stage-src");
        std::fs::create_dir_all(root.join("net/common")).unwrap();
        std::fs::create_dir_all(root.join("net/tcp/common")).unwrap();
        std::fs::create_dir_all(root.join("net/tcp/close")).unwrap();
        std::fs::write(root.join("net/common/defaults.sh"), "sysctl -q a=1\n").unwrap();
        std::fs::write(
            root.join("net/tcp/common/defaults.sh"),
            "../../common/defaults.sh",
        )
        .unwrap();
        let text = "`../common/defaults.sh`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n";
        let script = root.join("net/tcp/close/x.pkt");
        std::fs::write(&script, text).unwrap();
        let stage = scratch("stage-dst");
        let (cwd, file) = stage_script(&script, text, &stage).unwrap();
        assert_eq!(file, PathBuf::from("x.pkt"));
        assert_eq!(std::fs::read_to_string(cwd.join("x.pkt")).unwrap(), text);
        let d = cwd.join("../common/defaults.sh");
        assert_eq!(std::fs::read_to_string(&d).unwrap(), "sysctl -q a=1\n");
        assert_eq!(d.metadata().unwrap().permissions().mode() & 0o777, 0o755);
        std::fs::remove_dir_all(root).unwrap();
        std::fs::remove_dir_all(stage).unwrap();
    }
}
