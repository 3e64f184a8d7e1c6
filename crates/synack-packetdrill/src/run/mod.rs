//! The runner: one script against a fresh synack [`Stack`] in virtual time (SUBSET.md §2–§9).
//!
//! Inbound lines are injected at their time; outbound lines take the next segment the stack
//! emitted on the connection under test (advancing the clock, and so the stack's timers, until
//! one appears) and compare it field by field; syscall lines call the stack's socket API.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use synack::stack::{Ipv4Cidr, Ipv6Cidr, SocketHandle, Stack, StackConfig};
use synack::tcp::connection::Info;
use synack::tcp::{Config, Connection, Keepalive, Shutdown, State};
use synack::time::{Duration, Instant};
use synack::wire::{IpProtocol, icmpv6, ipv4, ipv6, tcp as wtcp};

use crate::ast::*;
use crate::code::{self, CodeError};
use crate::errno::Errno;
use crate::packet::{self, Live, SeqSpace, Tuple};
use crate::profile;
use crate::shell;

mod syscall;

/// The stack's address in IPv4 runs (upstream's run_all.py and kselftest runner).
pub const LOCAL_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
/// The peer's address in IPv4 runs.
pub const REMOTE_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The stack's address in IPv6 runs, on a /48.
pub const LOCAL_V6: Ipv6Addr = Ipv6Addr::new(0xfd3d, 0x0a0b, 0x17d6, 0, 0, 0, 0, 1);
/// The gateway of IPv6 runs, on the stack's /48.
pub const GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfd3d, 0x0a0b, 0x17d6, 0x8888, 0, 0, 0, 1);
/// The peer's address in IPv6 runs (off-link: through the gateway).
pub const REMOTE_V6: Ipv6Addr = Ipv6Addr::new(0xfd3d, 0xfa7b, 0xd17d, 0, 0, 0, 0, 1);
/// The port scripts bind and connect to.
pub const PORT: u16 = 8080;
/// How long an outbound line waits past its time before "Timed out waiting for packet".
const PACKET_TIMEOUT: Duration = Duration::from_secs(2);
/// How far `*` lines and pending blocking calls may move the clock.
const MAX_WAIT: Duration = Duration::from_secs(600);

/// The address family a script runs in (packetdrill's `--ip_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpVersion {
    /// IPv4 sockets, IPv4 packets.
    #[default]
    Ipv4,
    /// IPv6 sockets, IPv6 packets: local fd3d:a0b:17d6::1, peer fd3d:fa7b:d17d::1, MTU 1520
    /// (so the MSS is 1460 as in IPv4).
    Ipv6,
    /// IPv6 sockets on IPv4-mapped addresses (`::ffff:192.168.0.1`), IPv4 packets: what a
    /// dual-stack socket does with an IPv4 peer.
    Ipv4MappedIpv6,
}

impl IpVersion {
    /// Every family, in the order upstream's `run_all.py` runs them.
    pub const ALL: [IpVersion; 3] = [IpVersion::Ipv4, IpVersion::Ipv6, IpVersion::Ipv4MappedIpv6];

    /// The `--ip_version` value.
    pub fn name(self) -> &'static str {
        match self {
            IpVersion::Ipv4 => "ipv4",
            IpVersion::Ipv6 => "ipv6",
            IpVersion::Ipv4MappedIpv6 => "ipv4-mapped-ipv6",
        }
    }

    /// Parses an `--ip_version` value.
    pub fn parse(s: &str) -> Option<IpVersion> {
        IpVersion::ALL.into_iter().find(|v| v.name() == s)
    }
}

/// How to run scripts.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `-D NAME=VALUE` definitions.
    pub defines: HashMap<String, String>,
    /// `net.ipv4` sysctls (name without the prefix, value) set before the script runs, as
    /// if the machine had them: to run a script written for an older kernel's defaults.
    pub sysctls: Vec<(String, String)>,
    /// The family scripts run in unless they pin one with `--ip_version`.
    pub ip_version: IpVersion,
}

impl RunOptions {
    /// The `-D` symbols upstream's runners pass in IPv4 runs (shared/packetdrill/README.md).
    pub fn upstream_ipv4() -> RunOptions {
        RunOptions::upstream(IpVersion::Ipv4)
    }

    /// Upstream's `-D` symbols for a run in family `v` (shared/packetdrill/README.md; the
    /// TFO cookie depends on the addresses, `CODE` is an IPv4 ICMP code).
    pub fn upstream(v: IpVersion) -> RunOptions {
        let v6 = v == IpVersion::Ipv6;
        let sockets_v6 = v != IpVersion::Ipv4;
        let mut defines = vec![
            (
                "TFO_COOKIE",
                if v6 {
                    "c1d1e9742a47a9bc"
                } else {
                    "3021b9d889017eeb"
                },
            ),
            (
                "CMSG_LEVEL_IP",
                if sockets_v6 { "SOL_IPV6" } else { "SOL_IP" },
            ),
            (
                "CMSG_TYPE_RECVERR",
                if sockets_v6 {
                    "IPV6_RECVERR"
                } else {
                    "IP_RECVERR"
                },
            ),
        ];
        if !v6 {
            defines.push(("CODE", "host_unreachable"));
        }
        RunOptions {
            defines: defines
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            sysctls: Vec::new(),
            ip_version: v,
        }
    }
}

/// How one script ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Pass,
    Fail(Box<Failure>),
    /// The script needs something synack does not have (TCP Fast Open, say); the reason says
    /// what.
    Skip(String),
}

/// Why a script failed, located in the script.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Where in the script, counted from 1; 0 when the failure has no place in it (the file
    /// could not be read, the script is empty).
    pub line: u32,
    pub col: u32,
    /// The script line, as written.
    pub source: String,
    /// What went wrong, in packetdrill's words where it has some ("Timed out waiting for
    /// packet").
    pub message: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
    /// Virtual time of the failure, from the start of the script.
    pub time: Option<Instant>,
}

/// The result of running one script.
#[derive(Debug, Clone)]
pub struct Report {
    pub script: PathBuf,
    /// The family it ran in: the one asked for, or the one the script pins.
    pub ip_version: IpVersion,
    pub outcome: Outcome,
    /// Things the run did not act on (sysctls without an effect here, code blocks that could
    /// not be evaluated), and a failed code block when the script failed earlier anyway.
    pub notes: Vec<String>,
    /// Every packet and syscall in order, as `time dir text` lines.
    pub trace: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        matches!(self.outcome, Outcome::Pass)
    }
}

/// Runs the script at `path`.
pub fn run_file(path: &Path, opts: &RunOptions) -> Report {
    let fail = |message: String, line: u32, col: u32| Report {
        script: path.to_path_buf(),
        ip_version: opts.ip_version,
        outcome: Outcome::Fail(Box::new(Failure {
            line,
            col,
            source: String::new(),
            message,
            expected: None,
            actual: None,
            time: None,
        })),
        notes: Vec::new(),
        trace: Vec::new(),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return fail(format!("cannot read the script: {e}"), 0, 0),
    };
    let name = path.display().to_string();
    let script = match crate::parser::parse(&name, &text, &opts.defines) {
        Ok(s) => s,
        Err(e) => {
            let (line, col) = (e.pos.line, e.pos.col);
            // The report puts the location in front; the message is what went wrong there.
            let mut r = fail(
                format!("expected {}, found {}", e.expected, e.found),
                line,
                col,
            );
            if let Outcome::Fail(f) = &mut r.outcome {
                f.source = text
                    .lines()
                    .nth(line.saturating_sub(1) as usize)
                    .unwrap_or("")
                    .to_string();
            }
            return r;
        }
    };
    if script.events.is_empty() {
        // Nothing would be checked: a PASS would claim what was never tested.
        return fail(
            "the script has no events (no packets, no system calls): an empty script tests \
             nothing"
                .into(),
            0,
            0,
        );
    }
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut cfg = profile::linux();
    for (name, value) in &opts.sysctls {
        if let Err(e) = profile::apply_sysctl(&mut cfg, name, value) {
            return fail(format!("RunOptions: {e}"), 0, 0);
        }
    }
    run_script_with(&script, &text, &dir, path, opts.ip_version, cfg)
}

/// Runs a parsed script in family `ip_version` (unless it pins another). `text` is its
/// source (for messages), `dir` its directory.
pub fn run_script(
    script: &Script,
    text: &str,
    dir: &Path,
    path: &Path,
    ip_version: IpVersion,
) -> Report {
    run_script_with(script, text, dir, path, ip_version, profile::linux())
}

/// Runs `text` in record mode: nothing the stack does is checked against the script (which
/// needs no outbound lines, and whose system call results are placeholders); instead every
/// segment of the connection under test and every call's result is returned, for a script
/// generator to write down what synack did (`crate::fuzz`). Errors that are not about results
/// (a script that cannot be parsed or run) still fail the report.
pub fn record_script(text: &str, opts: &RunOptions) -> (Report, Recording) {
    let path = Path::new("<recorded>");
    let script = match crate::parser::parse("<recorded>", text, &opts.defines) {
        Ok(s) => s,
        Err(e) => {
            let report = Report {
                script: path.to_path_buf(),
                ip_version: opts.ip_version,
                outcome: Outcome::Fail(Box::new(Failure {
                    line: e.pos.line,
                    col: e.pos.col,
                    source: String::new(),
                    message: format!("expected {}, found {}", e.expected, e.found),
                    expected: None,
                    actual: None,
                    time: None,
                })),
                notes: Vec::new(),
                trace: Vec::new(),
            };
            return (report, Recording::default());
        }
    };
    let mut cfg = profile::linux();
    for (name, value) in &opts.sysctls {
        // A sysctl the profile cannot apply fails the run below just as in `run_file`.
        let _ = profile::apply_sysctl(&mut cfg, name, value);
    }
    let mut recording = Recording::default();
    let report = run_script_inner(
        &script,
        text,
        Path::new("."),
        path,
        opts.ip_version,
        cfg,
        Some(&mut recording),
    );
    (report, recording)
}

/// [`run_script`] starting from `cfg` instead of the Linux profile.
fn run_script_with(
    script: &Script,
    text: &str,
    dir: &Path,
    path: &Path,
    ip_version: IpVersion,
    cfg: Config,
) -> Report {
    run_script_inner(script, text, dir, path, ip_version, cfg, None)
}

fn run_script_inner(
    script: &Script,
    text: &str,
    dir: &Path,
    path: &Path,
    ip_version: IpVersion,
    cfg: Config,
    recording: Option<&mut Recording>,
) -> Report {
    let mut r = Runner::new(text, dir, ip_version, cfg);
    if recording.is_some() {
        r.record = Some(Recording::default());
    }
    let outcome = match r.run(script) {
        Ok(()) => Outcome::Pass,
        Err(Stop::Skip(why)) => Outcome::Skip(why),
        Err(Stop::Fail(f)) => Outcome::Fail(f),
    };
    if !matches!(outcome, Outcome::Pass) {
        // Upstream evaluates code blocks only after a script ran to its end; say what a block
        // found anyway, it may explain the failure.
        if let Some(f) = r.code_failure.take() {
            r.notes
                .push(format!("code block at line {}: {}", f.line, f.message));
        }
    }
    if let (Some(out), Some(rec)) = (recording, r.record.take()) {
        *out = rec;
    }
    Report {
        script: path.to_path_buf(),
        ip_version: r.version,
        outcome,
        notes: r.notes,
        trace: r.trace,
    }
}

enum Stop {
    Fail(Box<Failure>),
    Skip(String),
}

/// A failure at `pos` (filled in by the caller).
fn err(msg: impl Into<String>) -> Stop {
    Stop::Fail(Box::new(Failure {
        line: 0,
        col: 0,
        source: String::new(),
        message: msg.into(),
        expected: None,
        actual: None,
        time: None,
    }))
}

fn mismatch(msg: impl Into<String>, expected: String, actual: String) -> Stop {
    let mut s = err(msg);
    if let Stop::Fail(f) = &mut s {
        f.expected = Some(expected);
        f.actual = Some(actual);
    }
    s
}

/// A script fd.
#[derive(Debug, Clone)]
struct Fd {
    kind: FdKind,
    nonblock: bool,
    /// Settings for the connection(s) this socket will make.
    cfg: Config,
    /// Options applied to a connection once it exists.
    nodelay: bool,
    cork: bool,
    user_timeout: Option<Duration>,
    keepalive: bool,
    keepalive_cfg: Keepalive,
    bound: bool,
    /// SO_RCVBUF / SO_SNDBUF were set (Linux locks the size: no autotuning).
    rcvbuf_set: bool,
    sndbuf_set: bool,
    /// SO_LINGER with l_onoff=1, l_linger=0: close() aborts the connection (sends RST).
    linger_abort: bool,
    /// TCP_FASTOPEN set before listen(): the listener's Fast Open queue length.
    fastopen_qlen: Option<usize>,
    /// TCP_FASTOPEN_CONNECT: connect() defers the SYN to the first write (RFC 7413 client).
    fastopen_connect: bool,
    /// connect() returned 0 with the SYN deferred to the first write.
    fastopen_deferred: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum FdKind {
    Fresh,
    Listener(SocketHandle),
    /// connect() was called; the handshake may still be running.
    Connecting(SocketHandle),
    Conn(SocketHandle),
    Closed,
}

/// The socket whose TCP_INFO a code block reads: upstream's `socket_under_test`, which is the
/// socket of the latest socket() call, or the child an inbound SYN opens on a listener (it
/// gets its fd from accept()).
#[derive(Debug, Clone, Copy, PartialEq)]
enum UnderTest {
    None,
    Fd(i64),
    /// A passive child not yet accepted: no fd, so no TCP_INFO (upstream fails too).
    Passive,
}

/// Which connection packet lines refer to (SUBSET.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Focus {
    None,
    /// A listener: the next inbound SYN opens a new child.
    Listener,
    /// connect() called: the first outbound SYN names the connection.
    Connecting,
    Conn(Tuple),
}

/// A syscall blocked in the stack, completed later.
#[derive(Debug, Clone)]
struct Blocked {
    /// The script line that started the call.
    line: u32,
    call: Syscall,
    /// Expected return window, absolute.
    end: Instant,
    tolerance: Duration,
    /// Bytes already written by a blocking write.
    progress: usize,
}

/// What a syscall attempt produced.
enum Attempt {
    Done(i64, Option<Errno>),
    /// Would block; `progress` bytes done so far (writes).
    Blocked(usize),
}

struct Runner {
    lines: Vec<String>,
    dir: PathBuf,
    stack: Stack,
    cfg: Config,
    now: Instant,
    base: Instant,
    tol_usecs: u64,
    tol_percent: f64,
    ts_tick_usecs: Option<u64>,
    ts_ecr_scaled: bool,
    strict_segments: bool,
    /// The current event is followed by a timed outbound line: a segment of the connection
    /// under test left unmatched from before this event's time is an unexpected one.
    strict: bool,
    /// The family of this run.
    version: IpVersion,
    /// The stack's and the peer's addresses on the wire.
    local: IpAddr,
    remote: IpAddr,
    /// `--local_ip` / `--remote_ip`.
    local_override: Option<IpAddr>,
    remote_override: Option<IpAddr>,
    fds: BTreeMap<i64, Fd>,
    focus: Focus,
    next_port: u16,
    /// Script to live sequence numbers on the connection under test.
    seqs: SeqSpace,
    /// (script TS val, live TS val) of matched outbound segments, latest last.
    ts_seen: Vec<(u32, u32)>,
    outq: VecDeque<(Instant, Vec<u8>, usize)>,
    blocked: Option<Blocked>,
    /// A failure found by a blocking call completing in the background, reported at the next
    /// event boundary.
    deferred: Option<Box<Failure>>,
    ip_ident: u16,
    trace: Vec<String>,
    notes: Vec<String>,
    /// The counters as of the last `nstat` reset (nstat reports what grew since).
    nstat_base: synack::tcp::Counters,
    /// The stack's link MTU (`--mtu`; by default 1500, 1520 in IPv6 runs).
    mtu: Option<u16>,
    /// Where the stack writes each packet it sends.
    tx_buf: Vec<u8>,
    under_test: UnderTest,
    /// The script closed the socket under test: its last segments (a FIN) are checked by the
    /// next outbound line only, or not at all once socket() makes another socket the one
    /// under test (packetdrill ignores packets of other sockets).
    focus_closed: bool,
    /// The first code block that failed (a false assert or an error), reported when the
    /// script has otherwise passed, as upstream runs the blocks after the script.
    code_failure: Option<Box<Failure>>,
    /// The first code block that could not be evaluated: the script is skipped if nothing
    /// failed.
    code_unsupported: Option<String>,
    /// Record mode ([`record_script`]): what the stack did, instead of checking it.
    record: Option<Recording>,
}

/// What the stack did in a script run in record mode ([`record_script`]).
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// Every segment of the connection under test, in order, with the time it was sent and
    /// its fields in the script's sequence spaces (our ISN stands for 0).
    pub sent: Vec<(Instant, Live)>,
    /// Every system call's result (return value, errno), in the order the calls ran.
    pub calls: Vec<(i64, Option<Errno>)>,
}

impl Runner {
    fn new(text: &str, dir: &Path, version: IpVersion, cfg: Config) -> Runner {
        Runner {
            lines: text.lines().map(str::to_string).collect(),
            dir: dir.to_path_buf(),
            stack: Stack::new(StackConfig::default(), [7; 32]),
            cfg,
            now: Instant::ZERO,
            base: Instant::ZERO,
            tol_usecs: 4000,
            tol_percent: 12.5,
            ts_tick_usecs: None,
            ts_ecr_scaled: false,
            strict_segments: false,
            strict: false,
            version,
            local: IpAddr::V4(LOCAL_V4),
            remote: IpAddr::V4(REMOTE_V4),
            local_override: None,
            remote_override: None,
            fds: BTreeMap::new(),
            focus: Focus::None,
            next_port: 40000,
            seqs: SeqSpace::default(),
            ts_seen: Vec::new(),
            outq: VecDeque::new(),
            blocked: None,
            deferred: None,
            ip_ident: 1,
            trace: Vec::new(),
            notes: Vec::new(),
            nstat_base: Default::default(),
            mtu: None,
            tx_buf: Vec::new(),
            under_test: UnderTest::None,
            focus_closed: false,
            code_failure: None,
            code_unsupported: None,
            record: None,
        }
    }

    fn locate(&self, mut s: Stop, pos: Pos) -> Stop {
        if let Stop::Fail(f) = &mut s {
            if f.line == 0 {
                f.line = pos.line;
                f.col = pos.col;
                f.source = self
                    .lines
                    .get(pos.line.saturating_sub(1) as usize)
                    .map(|l| l.trim().to_string())
                    .unwrap_or_default();
            }
            if f.time.is_none() {
                f.time = Some(self.now);
            }
        }
        s
    }

    fn run(&mut self, script: &Script) -> Result<(), Stop> {
        for o in &script.options {
            self.option(o).map_err(|s| self.locate(s, o.pos))?;
        }
        if let Some(init) = &script.init {
            self.command(&init.text)
                .map_err(|s| self.locate(s, init.pos))?;
        }
        self.build_stack();
        // For each event: does the next outbound packet line after it have a time? Then a
        // segment sent before this event's time cannot match it, and is reported here, when
        // it was sent, rather than as a timing error there (the strict rule, see `strict`).
        let mut timed_outbound_after = vec![false; script.events.len()];
        let mut next = false;
        for (i, ev) in script.events.iter().enumerate().rev() {
            timed_outbound_after[i] = next;
            if let Action::Packet(p) = &ev.action {
                if p.direction == Direction::Outbound {
                    next = !matches!(ev.time, TimeSpec::Any);
                }
            }
        }
        for (ev, strict) in script.events.iter().zip(timed_outbound_after) {
            if let Some(f) = self.deferred.take() {
                return Err(Stop::Fail(f));
            }
            self.strict = strict;
            self.event(ev).map_err(|s| self.locate(s, ev.pos))?;
        }
        if let Some(f) = self.deferred.take() {
            return Err(Stop::Fail(f));
        }
        if let Some(cleanup) = &script.cleanup {
            self.command(&cleanup.text)
                .map_err(|s| self.locate(s, cleanup.pos))?;
        }
        if let Some(f) = self.code_failure.take() {
            return Err(Stop::Fail(f));
        }
        if let Some(why) = self.code_unsupported.take() {
            return Err(Stop::Skip(why));
        }
        Ok(())
    }

    fn option(&mut self, o: &OptionLine) -> Result<(), Stop> {
        let v = o.value.as_deref().unwrap_or("");
        let num = |v: &str| -> Result<u64, Stop> {
            v.parse()
                .map_err(|_| err(format!("--{} needs a number, got {v:?}", o.name)))
        };
        match o.name.as_str() {
            "tolerance_usecs" => self.tol_usecs = num(v)?,
            "tolerance_percent" => {
                self.tol_percent = v
                    .parse()
                    .map_err(|_| err(format!("--tolerance_percent needs a number, got {v:?}")))?
            }
            "tcp_ts_tick_usecs" => self.ts_tick_usecs = Some(num(v)?).filter(|&t| t > 0),
            "tcp_ts_ecr_scaled" => self.ts_ecr_scaled = true,
            "strict_segments" => self.strict_segments = true,
            // Upstream builds GRO-like super-packets from inbound segments above this size;
            // here inbound segments are injected whole, exactly as written.
            "mss" => {
                num(v)?;
            }
            "mtu" => self.mtu = Some(num(v)?.clamp(576, 65535) as u16),
            "ip_version" => {
                self.version = IpVersion::parse(v)
                    .ok_or_else(|| err(format!("unknown --ip_version {v:?}")))?;
            }
            "local_ip" | "remote_ip" => {
                let a: IpAddr = v
                    .parse()
                    .map_err(|_| err(format!("--{}={v}: not an IP address", o.name)))?;
                // An IPv4 address makes the script an IPv4 one: packetdrill's IPv6
                // configuration cannot take it (`finalize_ipv6_config` parses it as IPv6),
                // so upstream runs it in the IPv4 families only, as this runner does.
                if a.is_ipv4() && self.version == IpVersion::Ipv6 {
                    self.version = IpVersion::Ipv4;
                }
                if o.name == "local_ip" {
                    self.local_override = Some(a);
                } else {
                    self.remote_override = Some(a);
                }
            }
            _ => return Err(err(format!("unknown option --{}", o.name))),
        }
        Ok(())
    }

    /// A back-quoted command: sysctls change the settings for sockets created from now on,
    /// and those Linux reads while a connection runs ([`profile::LIVE_SYSCTLS`]) for the
    /// existing connections too.
    fn command(&mut self, text: &str) -> Result<(), Stop> {
        let mut c = shell::Commands::default();
        shell::interpret(text, &self.dir, &mut c).map_err(err)?;
        for (name, value) in &c.sysctls {
            match profile::apply_sysctl(&mut self.cfg, name, value) {
                Ok(profile::Applied::Set) => {
                    if profile::LIVE_SYSCTLS.contains(&name.as_str()) {
                        for conn in self.stack.connections_mut() {
                            let _ = profile::apply_sysctl(conn.config_mut(), name, value);
                        }
                        for cfg in self.stack.time_wait_configs_mut() {
                            let _ = profile::apply_sysctl(cfg, name, value);
                        }
                    }
                }
                Ok(profile::Applied::NoEffect(why)) => {
                    self.note(format!("sysctl {name}={value}: {why}"));
                }
                Err(e) => return Err(err(e)),
            }
        }
        for i in c.ignored {
            self.note(i);
        }
        for n in c.nstat {
            let now = self.stack.counters().clone();
            match n {
                None => self.nstat_base = now,
                Some(name) => {
                    let grew = now
                        .iter()
                        .zip(self.nstat_base.iter())
                        .find(|((k, _), _)| {
                            name.strip_prefix("TcpExt")
                                .or_else(|| name.strip_prefix("Tcp"))
                                .is_some_and(|n| n == *k)
                        })
                        .map(|((_, v), (_, base))| v > base);
                    match grew {
                        Some(true) => {}
                        Some(false) => {
                            return Err(err(format!("nstat: {name} did not change")));
                        }
                        None => return Err(err(format!("nstat: no counter {name} in synack"))),
                    }
                }
            }
        }
        Ok(())
    }

    fn note(&mut self, n: String) {
        if !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }

    /// The stack of this run's family, with upstream's addresses (SUBSET.md §4.1): the local
    /// address on a /16 (IPv4) or /48 (IPv6) that holds the gateway, the peer off-link.
    fn build_stack(&mut self) {
        let v6 = self.version == IpVersion::Ipv6;
        let default_mtu = if v6 { 1520 } else { 1500 };
        let cfg = StackConfig {
            tcp: Arc::new(self.cfg.clone()),
            mtu: self.mtu.unwrap_or(default_mtu),
            trace: false,
            name: "synack".into(),
            ..StackConfig::default()
        };
        let (local, remote) = if v6 {
            (IpAddr::V6(LOCAL_V6), IpAddr::V6(REMOTE_V6))
        } else {
            (IpAddr::V4(LOCAL_V4), IpAddr::V4(REMOTE_V4))
        };
        self.local = self.local_override.map_or(local, |a| a.to_canonical());
        self.remote = self.remote_override.map_or(remote, |a| a.to_canonical());
        let mut stack = Stack::new(cfg, [7; 32]);
        match self.local {
            IpAddr::V4(a) => {
                stack.add_address(Ipv4Cidr::new(a, 16));
                stack.set_gateway(Some(a));
            }
            IpAddr::V6(a) => {
                stack.add_address(Ipv6Cidr::new(a, 48));
                stack.set_gateway_v6(Some(GATEWAY_V6));
            }
        }
        self.stack = stack;
    }

    /// `ip` as a socket of this run sees it: IPv4-mapped in the IPv4-mapped-IPv6 runs.
    fn sock_ip(&self, ip: IpAddr) -> IpAddr {
        match (self.version, ip) {
            (IpVersion::Ipv4MappedIpv6, IpAddr::V4(a)) => IpAddr::V6(a.to_ipv6_mapped()),
            _ => ip,
        }
    }

    // ----- time -----

    fn resolve(&self, t: Time) -> Instant {
        match t {
            Time::Absolute(us) => Instant::from_micros(us.max(0) as u64),
            Time::Relative(us) => {
                if us >= 0 {
                    self.base + Duration::from_micros(us as u64)
                } else {
                    self.base - Duration::from_micros(us.unsigned_abs())
                }
            }
        }
    }

    /// The blocking end time `E` of `T...E`, measured from the same base as `T`.
    fn resolve_end(&self, start: Time, end: Time) -> Instant {
        let us = match end {
            Time::Absolute(us) | Time::Relative(us) => us.max(0) as u64,
        };
        match start {
            Time::Relative(_) => self.base + Duration::from_micros(us),
            Time::Absolute(_) => Instant::from_micros(us),
        }
    }

    fn tolerance(&self, expected: Instant) -> Duration {
        let span = expected.saturating_duration_since(self.base).as_micros() as f64;
        let pct = (span * self.tol_percent / 100.0) as u64;
        Duration::from_micros(self.tol_usecs.max(pct))
    }

    fn check_time(
        &self,
        what: &str,
        lo: Instant,
        hi: Instant,
        tol: Duration,
        actual: Instant,
    ) -> Result<(), Stop> {
        let lo_ok = lo.saturating_duration_since(Instant::ZERO) <= tol || actual >= lo - tol;
        if lo_ok && actual <= hi + tol {
            return Ok(());
        }
        let expect = if lo == hi {
            secs(lo)
        } else {
            format!("{}~{}", secs(lo), secs(hi))
        };
        Err(err(format!(
            "timing error: expected {what} at {expect} sec but happened at {} sec; tolerance {} sec",
            secs(actual),
            secs(Instant::ZERO + tol)
        )))
    }

    /// Collects what the stack sends now.
    fn pump(&mut self) {
        let mut buf = std::mem::take(&mut self.tx_buf);
        buf.resize(65600, 0);
        while let Some(n) = self.stack.poll_transmit(self.now, &mut buf) {
            let bytes = buf[..n].to_vec();
            if self.record.is_some() {
                self.record_segment(&bytes);
                let line = self.describe_out(&bytes);
                self.trace.push(format!("{} > {}", secs(self.now), line));
                continue;
            }
            let line = self.describe_out(&bytes);
            self.outq.push_back((self.now, bytes, self.trace.len()));
            self.trace.push(format!("{} > {}", secs(self.now), line));
        }
        self.tx_buf = buf;
    }

    /// Record mode: keeps a segment of the connection under test. The first SYN or SYN-ACK
    /// anchors our sequence space (our ISN is 0 in the script), as an outbound SYN line
    /// written `0:0(0)` would.
    fn record_segment(&mut self, bytes: &[u8]) {
        if !self.on_focus(bytes) {
            return;
        }
        let Some((_, raw, _)) = packet::parse_live(bytes, &SeqSpace::default()) else {
            return;
        };
        if !self.seqs.local_known && raw.bits & wtcp::Flags::SYN.0 != 0 {
            self.seqs.local_known = true;
            self.seqs.script_local_isn = 0;
            self.seqs.live_local_isn = raw.seq;
        }
        if let Some((_, live, _)) = packet::parse_live(bytes, &self.seqs) {
            if let Some(r) = &mut self.record {
                r.sent.push((self.now, live));
            }
        }
    }

    /// Runs the stack's timers up to `t` (one timer instant at a time), collecting output and
    /// completing a blocked call as soon as it can.
    fn advance_to(&mut self, t: Instant) {
        self.pump();
        self.poll_blocked();
        loop {
            match self.stack.poll_timeout() {
                Some(d) if d <= t => {
                    self.now = self.now.max(d);
                    self.stack.handle_timeout(self.now);
                    self.pump();
                    self.poll_blocked();
                }
                _ => break,
            }
        }
        self.now = self.now.max(t);
    }

    /// One step of the clock: to the next stack timer if it is due by `limit`. False when
    /// nothing is due.
    fn step(&mut self, limit: Instant) -> bool {
        match self.stack.poll_timeout() {
            Some(d) if d <= limit => {
                self.now = self.now.max(d);
                self.stack.handle_timeout(self.now);
                self.pump();
                self.poll_blocked();
                true
            }
            _ => false,
        }
    }

    // ----- events -----

    fn event(&mut self, ev: &Event) -> Result<(), Stop> {
        match &ev.action {
            Action::Packet(p) => match p.direction {
                Direction::Inbound => {
                    let at = self.when(&ev.time)?;
                    self.advance_to(at);
                    self.no_unexpected_segment(at)?;
                    self.inbound(p)?;
                    self.base = at;
                    Ok(())
                }
                Direction::Outbound => self.outbound(ev, p),
            },
            Action::Syscall(sc) => {
                // Another syscall waits for a blocked one to finish (SUBSET.md §6.3).
                let (start, blocking_end) = match ev.time {
                    TimeSpec::Blocking { start, end } => {
                        (self.resolve(start), Some(self.resolve_end(start, end)))
                    }
                    ref t => (self.when(t)?, None),
                };
                self.wait_for_blocked_call()?;
                self.advance_to(start);
                if sc.name == "socket" {
                    // packetdrill's socket() makes the new socket the one under test
                    // (`socket_under_test`): what the previous connection still sends (a FIN
                    // after close()) is no longer checked.
                    self.forget_focus_segments();
                } else {
                    self.no_unexpected_segment(start)?;
                }
                self.syscall_event(ev.pos.line, sc, blocking_end)?;
                self.base = start;
                Ok(())
            }
            Action::Command(c) => {
                let at = self.when(&ev.time)?;
                self.advance_to(at);
                self.no_unexpected_segment(at)?;
                self.command(&c.text)?;
                self.base = at;
                Ok(())
            }
            Action::Code(text) => {
                let at = self.when(&ev.time)?;
                self.advance_to(at);
                self.no_unexpected_segment(at)?;
                self.code_block(ev.pos, text);
                self.base = at;
                Ok(())
            }
        }
    }

    /// The strict rule: when the next outbound line has a time, a segment of the connection
    /// under test sent more than the tolerance before an event at `at` cannot match that line
    /// (upstream would report it there as a timing error or a mismatch). It fails here, named,
    /// at the time it was sent.
    fn no_unexpected_segment(&self, at: Instant) -> Result<(), Stop> {
        let Focus::Conn(focus) = self.focus else {
            return Ok(());
        };
        if !self.strict || self.focus_closed {
            return Ok(());
        }
        let tol = self.tolerance(at);
        for (t, bytes, _) in &self.outq {
            let mine =
                packet::parse_live(bytes, &SeqSpace::default()).is_some_and(|x| x.0 == focus);
            if mine && *t + tol < at {
                return Err(self.unexpected(*t, bytes, None));
            }
        }
        Ok(())
    }

    /// Drops the queued outbound segments of the connection under test.
    fn forget_focus_segments(&mut self) {
        let Focus::Conn(focus) = self.focus else {
            return;
        };
        self.outq.retain(|(_, bytes, _)| {
            packet::parse_live(bytes, &SeqSpace::default()).is_none_or(|x| x.0 != focus)
        });
    }

    /// The failure for an unexpected outbound segment sent at `t`; `before` is the time the
    /// outbound line being matched expects its segment.
    fn unexpected(&self, t: Instant, bytes: &[u8], before: Option<Instant>) -> Stop {
        let text = self.describe_out(bytes);
        let msg = match before {
            Some(lo) => format!(
                "unexpected outbound segment: {text} at {} sec, before this line's packet is \
                 due at {} sec",
                secs(t),
                secs(lo)
            ),
            None => format!(
                "unexpected outbound segment: {text} at {} sec, not in the script before this \
                 line",
                secs(t)
            ),
        };
        let mut s = err(msg);
        if let Stop::Fail(f) = &mut s {
            f.actual = Some(text);
            f.time = Some(t);
        }
        s
    }

    /// The time an inbound packet, syscall or command happens.
    fn when(&self, t: &TimeSpec) -> Result<Instant, Stop> {
        Ok(match *t {
            TimeSpec::At(t) => self.resolve(t),
            TimeSpec::Window(a, _) => self.resolve(a),
            TimeSpec::Any => self.now,
            TimeSpec::Blocking { start, .. } => self.resolve(start),
        })
    }

    fn wait_for_blocked_call(&mut self) -> Result<(), Stop> {
        if self.blocked.is_none() {
            return Ok(());
        }
        let limit = self.now + MAX_WAIT;
        while self.blocked.is_some() {
            if !self.step(limit) {
                if let Some(b) = self.blocked.take() {
                    return Err(err(format!(
                        "blocking {}() started on line {} never returned",
                        b.call.name, b.line
                    )));
                }
            }
        }
        if let Some(f) = self.deferred.take() {
            return Err(Stop::Fail(f));
        }
        Ok(())
    }

    // ----- code blocks -----

    /// Evaluates a `%{ }%` block against the TCP_INFO of the socket under test, now. A failure
    /// is kept and reported when the script has otherwise passed (upstream runs the blocks
    /// after the script); a block that cannot be evaluated makes the script a SKIP.
    fn code_block(&mut self, pos: Pos, text: &str) {
        let result = code::parse(text).and_then(|block| match self.snapshot() {
            Ok(snap) => block.run(&|name| snap.binding(name)),
            Err(why) => Err(CodeError::Runtime { line: 1, what: why }),
        });
        let summary = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let verdict = match &result {
            Ok(()) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        self.trace
            .push(format!("{} %{{ {summary} }}% {verdict}", secs(self.now)));
        let Err(e) = result else { return };
        let line = pos.line + e.line().saturating_sub(1);
        if e.is_unsupported() {
            let msg = format!("line {line}: {e}");
            self.note(msg.clone());
            self.code_unsupported.get_or_insert(msg);
            return;
        }
        if self.code_failure.is_some() {
            return;
        }
        let (expected, actual) = match &e {
            CodeError::Assert(a) => (
                Some(a.test.clone()),
                Some(
                    a.values
                        .iter()
                        .map(|(n, v)| format!("{n} = {v}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ),
            _ => (None, None),
        };
        self.code_failure = Some(Box::new(Failure {
            line,
            col: if line == pos.line { pos.col } else { 1 },
            source: self
                .lines
                .get(line.saturating_sub(1) as usize)
                .map(|l| l.trim().to_string())
                .unwrap_or_default(),
            message: e.to_string(),
            expected,
            actual,
            time: Some(self.now),
        }));
    }

    /// TCP_INFO of the socket under test (upstream's `socket_under_test`).
    fn snapshot(&self) -> Result<code::Snapshot, String> {
        let n = match self.under_test {
            UnderTest::None => return Err("no socket to use for code".into()),
            UnderTest::Passive => {
                return Err(
                    "the connection under test has not been accepted: no fd to read \
                            TCP_INFO from"
                        .into(),
                );
            }
            UnderTest::Fd(n) => n,
        };
        let fd = self.fds.get(&n).ok_or_else(|| {
            format!("fd {n} (the socket under test) is closed: getsockopt(TCP_INFO) fails")
        })?;
        // A socket without a connection reports what a new connection would start from.
        let fresh = |state: State| {
            let local = SocketAddr::new(self.local, 0);
            let mss = self.stack.mss_for(self.remote);
            let c = Connection::new(Arc::new(fd.cfg.clone()), local, mss, 0);
            code::Snapshot {
                state,
                info: Some(Info {
                    state: Some(state),
                    ..c.info()
                }),
            }
        };
        Ok(match fd.kind {
            FdKind::Fresh => fresh(State::Closed),
            FdKind::Listener(_) => fresh(State::Listen),
            FdKind::Closed => code::Snapshot {
                state: State::Closed,
                info: None,
            },
            FdKind::Connecting(h) | FdKind::Conn(h) => match self.stack.connection(h) {
                Some(c) => code::Snapshot {
                    state: c.state(),
                    info: Some(c.info()),
                },
                None => code::Snapshot {
                    state: State::Closed,
                    info: None,
                },
            },
        })
    }

    // ----- inbound -----

    fn inbound(&mut self, p: &Packet) -> Result<(), Stop> {
        match &p.body {
            PacketBody::Tcp(t) => self.inbound_tcp(&p.ip, t),
            PacketBody::Icmp(i) => self.inbound_icmp(&p.ip, i),
        }
    }

    fn inbound_tcp(&mut self, ip: &IpInfo, t: &TcpPacket) -> Result<(), Stop> {
        let bits = packet::flag_bits(&t.flags);
        let tuple = match self.focus {
            Focus::Conn(tu) => tu,
            _ => {
                // A new peer opens a connection to the listener (or talks to nothing yet).
                if self.focus == Focus::Listener {
                    self.under_test = UnderTest::Passive;
                }
                self.next_port += 1;
                let tu = Tuple {
                    local: self.local,
                    local_port: PORT,
                    remote: self.remote,
                    remote_port: self.next_port,
                };
                self.focus = Focus::Conn(tu);
                self.focus_closed = false;
                // Upstream's new child socket takes the peer's ISN from this packet, SYN or
                // not (handle_listen_for_script_packet).
                self.seqs = SeqSpace {
                    remote_isn: t.seq.start,
                    ..SeqSpace::default()
                };
                self.ts_seen.clear();
                tu
            }
        };
        // An active open learns the peer's ISN from its first SYN-ACK.
        if self.seqs.awaiting_synack && t.flags.syn && t.flags.ack {
            self.seqs.awaiting_synack = false;
            self.seqs.remote_isn = t.seq.start;
        }
        let win = t
            .win
            .ok_or_else(|| err("inbound TCP packets need a window (win N)"))?;
        let syn = t.flags.syn;
        let shift = self.seqs.local(syn);
        let seq = t.seq.start.wrapping_add(self.seqs.remote(syn));
        let ack = t.ack.map_or(0, |a| {
            if t.flags.ack {
                a.wrapping_add(shift)
            } else {
                a
            }
        });
        let opts = match &t.options {
            None => Vec::new(),
            Some(TcpOptions::Any) => return Err(err("<...> is only allowed on outbound packets")),
            Some(TcpOptions::List(l)) => {
                let seen = &self.ts_seen;
                let scaled = self.ts_ecr_scaled;
                let mut ecr = |e: u32| -> Result<u32, String> {
                    // Nothing sent yet (an opening SYN with a made-up ecr): packetdrill has
                    // no offset to apply and sends the value as written.
                    if e == 0 || seen.is_empty() {
                        return Ok(e);
                    }
                    if let Some(&(_, live)) = seen.iter().rev().find(|(s, _)| *s == e) {
                        return Ok(live);
                    }
                    if scaled {
                        if let Some(&(s0, l0)) = seen.first() {
                            return Ok(l0.wrapping_add(e.wrapping_sub(s0)));
                        }
                    }
                    Err(format!(
                        "unable to infer live TS ecr {e}: no outbound TS val {e} seen"
                    ))
                };
                packet::encode_options(l, shift, &mut ecr).map_err(err)?
            }
        };
        let seg = packet::tcp_segment(
            &tuple,
            bits,
            seq,
            ack,
            win.min(65535) as u16,
            t.urg.unwrap_or(0) as u16,
            &opts,
            t.seq.len as usize,
        );
        let bytes = packet::ip_packet(
            tuple.remote,
            tuple.local,
            IpProtocol::Tcp,
            ip,
            self.ip_ident,
            &seg,
        );
        self.ip_ident = self.ip_ident.wrapping_add(1);
        self.trace
            .push(format!("{} < {}", secs(self.now), packet::script_text(t)));
        self.stack.handle_packet(self.now, &bytes);
        self.pump();
        self.poll_blocked();
        Ok(())
    }

    fn inbound_icmp(&mut self, ip: &IpInfo, i: &IcmpPacket) -> Result<(), Stop> {
        let v6 = self.local.is_ipv6();
        let (ty, code) = icmp_type_code(v6, &i.kind, i.code.as_deref()).map_err(err)?;
        // As upstream (icmp_packet.c): the MTU field exists only in an ICMPv4 fragmentation
        // needed and an ICMPv6 packet too big.
        match (v6, i.mtu) {
            (false, Some(_)) if (ty, code) != (3, 4) => {
                return Err(err("ICMPv4 MTU is only valid for unreachable-frag_needed"));
            }
            (false, Some(m)) if m > u32::from(u16::MAX) => {
                return Err(err("ICMPv4 MTU out of 16-bit range"));
            }
            (true, Some(_)) if (ty, code) != (2, 0) => {
                return Err(err("ICMPv6 MTU is only valid for packet_too_big-0"));
            }
            _ => {}
        }
        let Focus::Conn(tu) = self.focus else {
            return Err(err("ICMP error before any connection"));
        };
        // The quoted datagram: our IP header and the first 8 bytes of our TCP header. Its
        // sequence number is the script's (0 when it names none), mapped to ours as upstream's
        // `map_inbound_icmp_tcp_packet` does, so a bare ICMP error quotes our ISS.
        let seq = i
            .quoted
            .map_or(0, |q| q.start)
            .wrapping_add(self.seqs.local(false));
        let mut tcp8 = [0u8; 8];
        tcp8[0..2].copy_from_slice(&tu.local_port.to_be_bytes());
        tcp8[2..4].copy_from_slice(&tu.remote_port.to_be_bytes());
        tcp8[4..8].copy_from_slice(&seq.to_be_bytes());
        // The quoted header states the original length (a 20-byte TCP header and the data),
        // not the 8 bytes quoted.
        let qlen = i.quoted.map_or(0, |q| q.len as usize) + 20;
        let mut quoted = packet::ip_packet(
            tu.local,
            tu.remote,
            IpProtocol::Tcp,
            &IpInfo::default(),
            0,
            &tcp8,
        );
        let mut icmp = vec![ty, code, 0, 0, 0, 0, 0, 0];
        if v6 {
            ipv6::Packet::new_unchecked(&mut quoted[..]).set_payload_len(qlen as u16);
            if let Some(m) = i.mtu {
                icmp[4..8].copy_from_slice(&m.to_be_bytes());
            }
        } else {
            let mut q = ipv4::Packet::new_unchecked(&mut quoted[..]);
            q.set_total_len((ipv4::HEADER_LEN + qlen) as u16);
            q.set_dont_frag(true);
            q.fill_checksum();
            if let Some(m) = i.mtu {
                icmp[6..8].copy_from_slice(&(m as u16).to_be_bytes());
            }
        }
        icmp.extend_from_slice(&quoted);
        let proto = match (tu.remote, tu.local) {
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let mut m = icmpv6::Packet::new_unchecked(&mut icmp[..]);
                m.fill_checksum(src, dst);
                IpProtocol::Icmpv6
            }
            _ => {
                let sum = synack::wire::checksum::checksum(&icmp);
                icmp[2..4].copy_from_slice(&sum.to_be_bytes());
                IpProtocol::Icmp
            }
        };
        let bytes = packet::ip_packet(tu.remote, tu.local, proto, ip, self.ip_ident, &icmp);
        self.ip_ident = self.ip_ident.wrapping_add(1);
        self.trace.push(format!(
            "{} < icmp {} {}{}",
            secs(self.now),
            i.kind,
            i.code.clone().unwrap_or_default(),
            i.mtu.map(|m| format!(" mtu {m}")).unwrap_or_default()
        ));
        self.stack.handle_packet(self.now, &bytes);
        self.pump();
        self.poll_blocked();
        Ok(())
    }

    // ----- outbound -----

    /// Is this emitted packet on the connection under test? Learns the 4-tuple from the
    /// first SYN after connect().
    fn on_focus(&mut self, bytes: &[u8]) -> bool {
        let Some((tu, live, _)) = packet::parse_live(bytes, &SeqSpace::default()) else {
            return false;
        };
        match self.focus {
            Focus::Conn(f) => f == tu,
            Focus::Connecting => {
                let syn = live.bits & wtcp::Flags::SYN.0 != 0;
                if syn && tu.remote == self.remote && tu.remote_port == PORT {
                    self.focus = Focus::Conn(tu);
                    self.focus_closed = false;
                    self.focus_closed = false;
                    self.seqs = SeqSpace {
                        awaiting_synack: true,
                        ..SeqSpace::default()
                    };
                    self.ts_seen.clear();
                    true
                } else {
                    false
                }
            }
            Focus::None | Focus::Listener => false,
        }
    }

    /// The next segment on the connection under test, waiting until `deadline`.
    fn next_out(&mut self, deadline: Instant) -> Option<(Instant, Vec<u8>, usize)> {
        loop {
            while let Some((t, bytes, idx)) = self.outq.pop_front() {
                if self.on_focus(&bytes) {
                    return Some((t, bytes, idx));
                }
                // Segments of other connections are not looked at (SUBSET.md §4.2).
            }
            if !self.step(deadline) {
                self.now = self.now.max(deadline);
                return None;
            }
        }
    }

    fn outbound(&mut self, ev: &Event, p: &Packet) -> Result<(), Stop> {
        let PacketBody::Tcp(t) = &p.body else {
            return Err(err("outbound ICMP lines are not supported"));
        };
        let (lo, hi, any) = match ev.time {
            TimeSpec::At(x) => {
                let a = self.resolve(x);
                (a, a, false)
            }
            TimeSpec::Window(a, b) => (self.resolve(a), self.resolve(b), false),
            TimeSpec::Any => (self.now, self.now, true),
            TimeSpec::Blocking { .. } => {
                return Err(err("a packet line cannot have a blocking time"));
            }
        };
        let tol = self.tolerance(hi);
        let deadline = if any {
            self.now + MAX_WAIT
        } else {
            hi + tol + PACKET_TIMEOUT
        };
        let want = t.seq.len;
        let mut parts: Vec<(Instant, Vec<u8>, usize)> = Vec::new();
        let mut total = 0u32;
        loop {
            let Some(seg) = self.next_out(deadline) else {
                let mut s = err("error handling packet: Timed out waiting for packet");
                if let Stop::Fail(f) = &mut s {
                    f.expected = Some(packet::script_text(t));
                    if !parts.is_empty() {
                        f.actual = Some(format!("only {total} of {want} bytes were sent by then"));
                    }
                }
                return Err(s);
            };
            // Strict: the line's first segment may not come before the line's window.
            if parts.is_empty()
                && !any
                && lo.saturating_duration_since(Instant::ZERO) > tol
                && seg.0 + tol < lo
            {
                return Err(self.unexpected(seg.0, &seg.1, Some(lo)));
            }
            let len = packet::parse_live(&seg.1, &SeqSpace::default()).map_or(0, |x| x.1.len);
            total += len;
            parts.push(seg);
            if self.strict_segments || total >= want {
                break;
            }
        }
        // The connection's first SYN or SYN-ACK line: the stack's ISN stands for the script's.
        let (_, first, _) = packet::parse_live(&parts[0].1, &SeqSpace::default())
            .ok_or_else(|| err("unparsable packet"))?;
        if !self.seqs.local_known && t.flags.syn && first.bits & wtcp::Flags::SYN.0 != 0 {
            self.seqs.local_known = true;
            self.seqs.script_local_isn = t.seq.start;
            self.seqs.live_local_isn = first.seq;
        }
        let seqs = self.seqs;
        let lives: Vec<Live> = parts
            .iter()
            .filter_map(|(_, b, _)| packet::parse_live(b, &seqs).map(|x| x.1))
            .collect();
        // The trace shows these in the script's sequence space now that the ISN is known.
        for ((t, _, idx), live) in parts.iter().zip(&lives) {
            if let Some(line) = self.trace.get_mut(*idx) {
                *line = format!("{} > {}", secs(*t), live.text());
            }
        }
        let at = parts.last().map_or(self.now, |p| p.0);
        let combined = self.combine(&lives)?;
        let exp_text = packet::script_text(t);
        let act_text = combined.text();
        let bad = |what: String| mismatch(what, exp_text.clone(), act_text.clone());

        if total > want {
            return Err(bad(format!(
                "live packet payload: expected {want} bytes vs actual {total} bytes"
            )));
        }
        let want_bits = packet::flag_bits(&t.flags);
        if combined.bits != want_bits || combined.ae != t.flags.ae {
            return Err(bad(format!(
                "live packet field tcp flags: expected: {} vs actual: {}",
                packet::flags_text(want_bits, t.flags.ae),
                packet::flags_text(combined.bits, combined.ae)
            )));
        }
        if combined.seq != t.seq.start {
            return Err(bad(format!(
                "live packet field tcp_seq: expected: {} vs actual: {}",
                t.seq.start, combined.seq
            )));
        }
        let want_ack = t.ack.unwrap_or(0);
        if combined.ack != want_ack {
            return Err(bad(format!(
                "live packet field tcp_ack_seq: expected: {want_ack} vs actual: {}",
                combined.ack
            )));
        }
        if let Some(w) = t.win {
            if u32::from(combined.win) != w {
                return Err(bad(format!(
                    "live packet field tcp_window: expected: {w} vs actual: {}",
                    combined.win
                )));
            }
        }
        let want_urg = t.urg.unwrap_or(0);
        if u32::from(combined.urg) != want_urg {
            return Err(bad(format!(
                "live packet field tcp_urg_ptr: expected: {want_urg} vs actual: {}",
                combined.urg
            )));
        }
        // The IP ECN field, only when the line names it (upstream's verify_outbound_live_ecn):
        // `[ect01]` takes either ECT codepoint.
        if let Some(e) = p.ip.ecn {
            let live = combined.tos & 3;
            let ok = match e {
                Ecn::Ect01 => live == 1 || live == 2,
                _ => live == crate::packet::ecn_bits(e),
            };
            if !ok {
                let want = match e {
                    Ecn::Ect01 => "0x1 or 0x2".to_string(),
                    _ => format!("{:#x}", crate::packet::ecn_bits(e)),
                };
                return Err(bad(format!(
                    "live packet field ip_ecn: expected: {want} vs actual: {live:#x}"
                )));
            }
        }
        if let Some(ttl) = p.ip.ttl {
            if combined.ttl != ttl {
                return Err(bad(format!(
                    "live packet field ip_ttl: expected: {ttl} vs actual: {}",
                    combined.ttl
                )));
            }
        }
        // TS val: checked only with --tcp_ts_tick_usecs (SUBSET.md §5.5).
        let tick = self.ts_tick_usecs;
        let first_ts = self.ts_seen.first().copied();
        let since_start = at.total_micros();
        let tol_us = tol.as_micros() as u64;
        let mut ts_pair = None;
        let mut ts_check = |script: u32, live: u32| -> Result<(), String> {
            ts_pair = Some((script, live));
            let (Some(tick), Some((s0, l0))) = (tick, first_ts) else {
                return Ok(());
            };
            let norm = s0.wrapping_add(live.wrapping_sub(l0));
            let diff = (norm as i64 - script as i64).unsigned_abs();
            let allowed = tol_us.max(since_start / 1000).div_ceil(tick).max(1);
            if diff > allowed {
                return Err(format!(
                    "bad outbound TCP timestamp value: expected {script}, normalised live value \
                     {norm} (allowed difference {allowed} ticks)"
                ));
            }
            Ok(())
        };
        if let Err(e) = packet::compare_options(&t.options, &combined.options, &mut ts_check) {
            return Err(mismatch(
                format!("bad outbound TCP options: {e}"),
                exp_text,
                act_text,
            ));
        }
        if let Some(pair) = ts_pair {
            self.ts_seen.push(pair);
        }
        // Timing last, as packetdrill does: a right packet at the wrong time.
        if !any {
            self.check_time("outbound packet", lo, hi, tol, at)?;
        }
        self.base = at;
        Ok(())
    }

    /// Merges the segments of one TSO-sized line (SUBSET.md §5.6).
    fn combine(&self, parts: &[Live]) -> Result<Live, Stop> {
        let mut it = parts.iter();
        let Some(first) = it.next() else {
            return Err(err("no segment"));
        };
        let mut acc = first.clone();
        let mut prev_len = first.len;
        let mask = !(wtcp::Flags::FIN.0 | wtcp::Flags::PSH.0 | wtcp::Flags::CWR.0);
        for (i, s) in it.enumerate() {
            let last = i + 2 == parts.len();
            let next_seq = acc.seq.wrapping_add(acc.len);
            let shape_ok = s.seq == next_seq
                && s.ack == acc.ack
                && s.win == acc.win
                && s.options.len() == acc.options.len()
                && (s.bits & mask) == (acc.bits & mask)
                && (acc.bits & wtcp::Flags::FIN.0) == 0
                && (last || s.len == prev_len)
                && prev_len == first.len;
            if !shape_ok {
                return Err(mismatch(
                    "outbound segments cannot be merged into one packet line",
                    acc.text(),
                    s.text(),
                ));
            }
            prev_len = s.len;
            let cwr = acc.bits & wtcp::Flags::CWR.0;
            acc.bits = (s.bits & !wtcp::Flags::CWR.0) | cwr;
            acc.len += s.len;
            acc.win = s.win;
            acc.options = s.options.clone();
            acc.urg = s.urg;
        }
        Ok(acc)
    }

    fn describe_out(&self, bytes: &[u8]) -> String {
        match packet::parse_live(bytes, &self.seqs) {
            Some((tu, live, _)) => {
                let here = matches!(self.focus, Focus::Conn(f) if f == tu);
                if here {
                    live.text()
                } else {
                    format!("{} [port {}]", live.text(), tu.remote_port)
                }
            }
            None => format!("{} bytes, not TCP", bytes.len()),
        }
    }
}

/// `1.234567` seconds.
pub fn secs(t: Instant) -> String {
    let us = t.total_micros();
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

impl Report {
    /// The script's verdict and, on failure, where and why, the expected and actual packet
    /// or result, the virtual time and the last `tail` trace lines (all with `tail` = None).
    pub fn render(&self, tail: Option<usize>) -> String {
        let name = self.script.display();
        let mut out = String::new();
        match &self.outcome {
            Outcome::Pass => out.push_str(&format!("PASS {name}\n")),
            Outcome::Skip(why) => out.push_str(&format!("SKIP {name}: {why}\n")),
            Outcome::Fail(f) => {
                out.push_str(&format!("FAIL {name}\n"));
                if f.line == 0 {
                    out.push_str(&format!("  {name}: {}\n", f.message));
                } else {
                    out.push_str(&format!("  {name}:{}:{}: {}\n", f.line, f.col, f.message));
                }
                if !f.source.is_empty() {
                    out.push_str(&format!("  script:   {}\n", f.source));
                }
                if let Some(e) = &f.expected {
                    out.push_str(&format!("  expected: {e}\n"));
                }
                if let Some(a) = &f.actual {
                    out.push_str(&format!("  actual:   {a}\n"));
                }
                if let Some(t) = f.time {
                    out.push_str(&format!("  at virtual time {} s\n", secs(t)));
                }
            }
        }
        let show_trace = tail.is_none() || matches!(self.outcome, Outcome::Fail(_));
        if show_trace && !self.trace.is_empty() {
            let skip = tail.map_or(0, |n| self.trace.len().saturating_sub(n));
            out.push_str(if skip > 0 {
                "  last segments and calls:\n"
            } else {
                "  trace:\n"
            });
            for l in &self.trace[skip..] {
                out.push_str(&format!("    {l}\n"));
            }
        }
        if tail.is_none() {
            for n in &self.notes {
                out.push_str(&format!("  note: {n}\n"));
            }
        }
        out
    }
}

/// The failure an expected-failure test script announces, as upstream's runner self-tests
/// do: the text after `// Failure:` (backslashes dropped) and the number of the first event
/// line after that comment, where the run must fail with a message containing the text.
pub fn expected_failure(text: &str) -> Option<(String, u32)> {
    let lines: Vec<&str> = text.lines().collect();
    let i = lines.iter().position(|l| l.contains("// Failure:"))?;
    let msg = lines[i]
        .split_once("// Failure:")?
        .1
        .trim()
        .replace('\\', "");
    let next = (i + 1..lines.len()).find(|&j| {
        let t = lines[j].trim();
        !t.is_empty() && !t.starts_with("//")
    })?;
    Some((msg, next as u32 + 1))
}

/// Every `.pkt` file under `path` (or `path` itself), sorted. A path that does not exist, and
/// a directory without any script, are errors (`NotFound`): there would be nothing to run.
pub fn collect_scripts(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !path.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file or directory",
        ));
    }
    if path.is_dir() {
        let mut stack = vec![path.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d)? {
                let p = e?.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "pkt") {
                    out.push(p);
                }
            }
        }
        out.sort();
        if out.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no .pkt scripts in this directory or below",
            ));
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(out)
}

/// The ICMP type and code a script names, as upstream packetdrill reads them
/// (icmp_packet.c), ICMPv4 names in an IPv4 run and ICMPv6 ones (RFC 4443) in an IPv6 run: a
/// type by name or `type_N`; a code by name (from the type's table of names, where it has one)
/// or `code_N`; no code means 0.
fn icmp_type_code(v6: bool, kind: &str, code: Option<&str>) -> Result<(u8, u8), String> {
    let numbered =
        |text: &str, prefix: &str| text.strip_prefix(prefix).and_then(|n| n.parse::<u8>().ok());
    let named_type = if v6 {
        match kind {
            "unreachable" => Some(1),
            "packet_too_big" => Some(2),
            "time_exceeded" => Some(3),
            "parameter_problem" => Some(4),
            "echo_request" => Some(128),
            "echo_reply" => Some(129),
            _ => None,
        }
    } else {
        match kind {
            "echo_reply" => Some(0),
            "unreachable" => Some(3),
            "source_quench" => Some(4),
            "redirect" => Some(5),
            "echo_request" => Some(8),
            "time_exceeded" => Some(11),
            "parameter_problem" => Some(12),
            "timestamp_request" => Some(13),
            "timestamp_reply" => Some(14),
            "information_request" => Some(15),
            "information_reply" => Some(16),
            "address_mask_request" => Some(17),
            "address_mask_reply" => Some(18),
            _ => None,
        }
    };
    let ty = match named_type.or_else(|| numbered(kind, "type_")) {
        Some(ty) => ty,
        None if !v6 && kind == "packet_too_big" => {
            return Err(
                "bad ICMP type packet_too_big: it is ICMPv6 and this is an IPv4 run (use \
                 unreachable frag_needed)"
                    .into(),
            );
        }
        None => return Err(format!("bad ICMP type {kind}")),
    };
    let Some(c) = code else {
        return Ok((ty, 0));
    };
    if let Some(n) = numbered(c, "code_") {
        return Ok((ty, n));
    }
    let named = match (v6, ty, c) {
        (false, 3, "net_unreachable") => 0,
        (false, 3, "host_unreachable") => 1,
        (false, 3, "protocol_unreachable") => 2,
        (false, 3, "port_unreachable") => 3,
        (false, 3, "frag_needed") => 4,
        (false, 3, "source_route_failed") => 5,
        (false, 3, "net_unknown") => 6,
        (false, 3, "host_unknown") => 7,
        (false, 3, "source_host_isolated") => 8,
        (false, 3, "net_prohibited") => 9,
        (false, 3, "host_prohibited") => 10,
        (false, 3, "net_unreachable_for_tos") => 11,
        (false, 3, "host_unreachable_for_tos") => 12,
        (false, 3, "packet_filtered") => 13,
        (false, 3, "precedence_violation") => 14,
        (false, 3, "precedence_cutoff") => 15,
        (true, 1, "no_route") => 0,
        (true, 1, "admin_prohibited") => 1,
        (true, 1, "not_neighbour") => 2,
        (true, 1, "address_unreachable") => 3,
        (true, 1, "port_unreachable") => 4,
        (true, 3, "exceeded_hop_limit") => 0,
        (true, 3, "exceeded_frag_time") => 1,
        (true, 4, "header_field") => 0,
        (true, 4, "unknown_next_header") => 1,
        (true, 4, "unknown_option") => 2,
        _ => return Err(format!("bad ICMP code {c}")),
    };
    Ok((ty, named))
}
