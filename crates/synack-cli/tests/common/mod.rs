//! Helpers the kernel interop tests share (`interop_tun.rs`, `interop_flood.rs`,
//! `interop_loss.rs`): running
//! commands, network namespaces and child processes that clean up after themselves, scratch
//! directories, and the precondition check that skips a test, or fails it under `CI=true`.
//!
//! Each test binary compiles this module and uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// Why a kernel interop test cannot run here, if it cannot: not root, no `/dev/net/tun`, or
/// one of `tools` missing from PATH.
pub fn missing_precondition_of(tools: &[&str]) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("?");
    if euid != "0" {
        return Some("not root (network namespaces and TUN devices need CAP_NET_ADMIN)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    for tool in tools {
        if !have_tool(tool) {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

/// Whether `tool` is on PATH.
pub fn have_tool(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True if `test` may run; false (after saying why, where `cargo test` shows it) if it must be
/// skipped. Under `CI=true` a missing precondition is a failure, so CI cannot skip silently
/// (see [`synack::testing::skip`]).
pub fn may_run(test: &str, tools: &[&str]) -> bool {
    let Some(why) = missing_precondition_of(tools) else {
        return true;
    };
    synack::testing::skip(test, &format!("a kernel interop test, and {why}"));
    false
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace that exists for the life of the value (deleted on drop, panics
/// included).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("synack-{}-{tag}", std::process::id());
        // A namespace left by an earlier run of this very process id cannot exist, but one
        // from a crashed run with a recycled pid might: start clean.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        run(ns.cmd("ip").args(["link", "set", "lo", "up"]));
        ns
    }

    /// `cmd` run inside the namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // A process still inside (a daemon's forked children: `Proc` kills only the pid it
        // started) would keep the namespace alive after `ip netns del`.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).output();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// The `Ip:` counters of `/proc/net/snmp` inside `ns` (`InAddrErrors`, `ForwDatagrams`, ...).
pub fn ip_counters_in(ns: &Netns) -> std::collections::HashMap<String, u64> {
    let snmp = run(ns.cmd("cat").arg("/proc/net/snmp"));
    let mut ip = snmp.lines().filter(|l| l.starts_with("Ip:"));
    let (names, values) = (ip.next().unwrap_or(""), ip.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .filter_map(|(n, v)| Some((n.to_string(), v.parse().ok()?)))
        .collect()
}

/// A child process killed (by its pid) when dropped, with its output lines on channels.
pub struct Proc {
    child: Child,
    what: String,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Proc {
    pub fn spawn(cmd: Command, what: &str) -> Proc {
        Proc::start(cmd, what, false)
    }

    /// Like [`Proc::spawn`], with a pipe to the child's stdin.
    pub fn spawn_with_stdin(cmd: Command, what: &str) -> (Proc, ChildStdin) {
        let mut p = Proc::start(cmd, what, true);
        let stdin = p.child.stdin.take().expect("piped stdin");
        (p, stdin)
    }

    fn start(mut cmd: Command, what: &str, stdin: bool) -> Proc {
        cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
        let lines = |r: Box<dyn Read + Send>| {
            let (tx, rx) = channel();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let stdout = lines(Box::new(child.stdout.take().expect("piped")));
        let stderr = lines(Box::new(child.stderr.take().expect("piped")));
        Proc {
            child,
            what: what.to_string(),
            stdout,
            stderr,
        }
    }

    /// The first stdout (or, with `err`, stderr) line containing `needle`, within `limit`.
    pub fn wait_line(&self, err: bool, needle: &str, limit: Duration) -> String {
        let rx = if err { &self.stderr } else { &self.stdout };
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(l) => seen.push(l),
                Err(_) => panic!(
                    "{}: no line with {needle:?} within {limit:?}; saw {seen:?}",
                    self.what
                ),
            }
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (a name such as `INT`) to this child's pid only.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .output();
    }

    /// Sends SIGTERM (to this child's pid only) and waits, bounded, for it to exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .output();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits, bounded, for the exit; returns (success, remaining stdout, remaining stderr).
    pub fn finish(mut self, limit: Duration) -> (bool, String, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("{}: still running after {limit:?}", self.what);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // The reader threads end with the pipes.
        let collect = |rx: &Receiver<String>| {
            let mut s = String::new();
            while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
                s.push_str(&l);
                s.push('\n');
            }
            s
        };
        let out = collect(&self.stdout);
        let err = collect(&self.stderr);
        (status.success(), out, err)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A scratch directory, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("synack-interop-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.0
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// A file of `len` pseudo-random bytes from `seed`.
    pub fn random_file(&self, name: &str, len: u64, seed: u64) -> PathBuf {
        let p = self.path(name);
        let mut rng = synack::device::SimRng::new(seed);
        let mut data = vec![0u8; len as usize];
        rng.fill_bytes(&mut data);
        std::fs::write(&p, &data).expect("write test file");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn synack_bin() -> &'static str {
    env!("CARGO_BIN_EXE_synack")
}

/// The SHA-256 of a file, in hex: what a transfer test compares between the sent and the
/// received copy.
pub fn sha256_file(p: &Path) -> String {
    use sha2::{Digest, Sha256};
    let data = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
