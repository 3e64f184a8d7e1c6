//! Differential fuzzing: random but valid scenarios, written down as packetdrill scripts of what
//! synack does, to be replayed on the live Linux kernel (`synack fuzz`).
//!
//! A [`Case`] is a passive or an active open ([`Opening`]) followed by random steps: the peer's segments (data in order,
//! out of order or again, ACKs of what synack sent with or without SACK blocks, window changes,
//! FIN, RST) and the application's calls on a non-blocking socket (`write`, `read`,
//! `shutdown`, `close`, `TCP_NODELAY`), at random times. Each step is chosen knowing what synack
//! has sent so far: the case is run in record mode ([`run::record_script`]) after every step,
//! so an ACK acknowledges a segment synack really sent and a SACK block names one.
//!
//! [`Case::script`] then writes the whole case with synack's segments as outbound lines (at the
//! times synack sent them, the window left unchecked) and synack's call results as the expected
//! ones. The script passes on synack by construction; where Linux fails it, Linux and synack
//! differ. [`Case::without`] drops a step, for shrinking a differing case to a minimal one.

use std::fmt::Write as _;

use synack::time::Instant;

use crate::errno::Errno;
use crate::packet::Live;
use crate::run::{self, Outcome, Recording, RunOptions};

/// The sysctls every case sets (as the scripts in `tests/packetdrill` do): the buffer sizes
/// `defaults.sh` uses, no timestamps (their values are the one thing two stacks may choose
/// freely), CUBIC.
const SYSCTLS: &str = "`sysctl -q net.ipv4.tcp_rmem=\"4096 540000 15728640\"
sysctl -q net.ipv4.tcp_timestamps=0
sysctl -q net.ipv4.tcp_congestion_control=cubic`";

/// The longest a case runs (the kernel side runs in real time).
const MAX_DURATION_US: u64 = 6_000_000;

/// A small deterministic generator (SplitMix64): the same seed gives the same case.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// One of `items`, each with its weight.
    pub fn pick<T: Copy>(&mut self, items: &[(u32, T)]) -> T {
        let total: u64 = items.iter().map(|i| u64::from(i.0)).sum();
        let mut x = self.below(total);
        for &(w, t) in items {
            if x < u64::from(w) {
                return t;
            }
            x -= u64::from(w);
        }
        items[items.len() - 1].1
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// How a case's connection opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// The peer's SYN reaches a listener; the accepted socket is fd 4.
    Passive,
    /// A non-blocking connect() from fd 4 (fd 3 is a spare socket); the peer answers the SYN
    /// with a SYN-ACK.
    Active,
    /// Each case one or the other, at random (from its seed).
    Mixed,
}

/// One line of a case: when, and what the peer sends or the application calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Microseconds from the start of the script.
    pub at_us: u64,
    pub action: Action,
    /// Part of the opening (socket, listen, handshake, accept): never dropped when shrinking.
    pub fixed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// An inbound segment in script notation without the `<`: `P. 1:1001(1000) ack 1 win 256`.
    Inbound(String),
    /// A system call without its result: `write(4, ..., 1000)`.
    Call(String),
}

/// A generated scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub seed: u64,
    pub steps: Vec<Step>,
}

/// What the peer has done so far (the generator's side of the conversation).
#[derive(Debug, Clone, Default)]
struct Peer {
    /// Ranges of its data sent so far, relative to its ISN (first byte 1).
    sent: Vec<(u32, u32)>,
    /// Its cumulative ACK (in synack's sequence space, script numbering).
    ack: u32,
    /// Its window field as it sends it.
    win: u32,
    /// The window field it sends normally.
    normal_win: u32,
    sack: bool,
    fin: Option<u32>,
    rst: bool,
    /// The application's socket: closed, written to, shut down for writing.
    closed: bool,
    shut_wr: bool,
    shut_rd: bool,
    nodelay: bool,
    mss: u32,
}

impl Peer {
    /// The first byte not yet sent in order: the left edge of the first gap.
    fn next_in_order(&self) -> u32 {
        let mut ranges = self.sent.clone();
        ranges.sort_unstable();
        let mut next = 1;
        for (s, e) in ranges {
            if s <= next && e > next {
                next = e;
            }
        }
        next
    }

    fn highest(&self) -> u32 {
        self.sent.iter().map(|r| r.1).max().unwrap_or(1)
    }
}

/// What synack has sent, as the recording shows it.
#[derive(Debug, Default)]
struct Sent {
    /// Right edges of its segments that carried data or FIN, in sequence order, deduplicated.
    edges: Vec<u32>,
    /// It sent a RST.
    rst: bool,
}

impl Sent {
    fn of(rec: &Recording) -> Sent {
        let mut edges = Vec::new();
        let mut rst = false;
        for (_, l) in &rec.sent {
            let fin = u32::from(l.bits & synack::wire::tcp::Flags::FIN.0 != 0);
            let syn = l.bits & synack::wire::tcp::Flags::SYN.0 != 0;
            if l.bits & synack::wire::tcp::Flags::RST.0 != 0 {
                rst = true;
            }
            if !syn && (l.len > 0 || fin == 1) {
                edges.push(l.seq.wrapping_add(l.len).wrapping_add(fin));
            }
        }
        edges.sort_unstable();
        edges.dedup();
        Sent { edges, rst }
    }

    /// Highest sequence number synack sent (script space, 1 after the SYN).
    fn max(&self) -> u32 {
        self.edges.last().copied().unwrap_or(1)
    }
}

/// The results of running a case's script: the placeholders' recording.
pub fn record(case: &Case, opts: &RunOptions) -> Result<Recording, String> {
    let text = case.script(None);
    let (report, rec) = run::record_script(&text, opts);
    match report.outcome {
        Outcome::Pass => Ok(rec),
        Outcome::Skip(why) => Err(format!("synack skipped its own case: {why}")),
        Outcome::Fail(f) => Err(format!("line {}: {}", f.line, f.message)),
    }
}

impl Case {
    /// Generates a case of about `steps` random steps from `seed`, each chosen after running
    /// the case so far on synack (`opts` as the run's options).
    pub fn generate(seed: u64, steps: usize, opening: Opening, opts: &RunOptions) -> Case {
        let mut rng = Rng::new(seed);
        // Drawn apart from the case's own sequence, so a passive case of a seed is the same
        // whatever the opening option.
        let active = match opening {
            Opening::Passive => false,
            Opening::Active => true,
            Opening::Mixed => Rng::new(seed ^ 0x5eed_0a11).chance(50),
        };
        let mss = rng.pick(&[(3, 1000u32), (1, 1460), (1, 536)]);
        let wscale = rng.pick(&[(4, Some(7u8)), (1, None)]);
        let sack = rng.chance(75);
        let mut syn_opts = format!("mss {mss}");
        if sack {
            syn_opts.push_str(",nop,nop,sackOK");
        }
        if let Some(w) = wscale {
            let _ = write!(syn_opts, ",nop,wscale {w}");
        }
        let normal_win = if wscale.is_some() { 256 } else { 65535 };
        let mut case = Case {
            seed,
            steps: Vec::new(),
        };
        let fixed = |at_us: u64, action: Action| Step {
            at_us,
            action,
            fixed: true,
        };
        let call = |s: &str| Action::Call(s.to_string());
        if active {
            // synack's SYN and its ACK of the SYN-ACK are recorded, not written here.
            // fd 3 is a spare socket, so that the connection is fd 4 as in a passive case
            // and the last call has an fd to ask whatever the case did with the connection.
            case.steps.extend([
                fixed(0, call("socket(..., SOCK_STREAM, IPPROTO_TCP)")),
                fixed(0, call("socket(..., SOCK_STREAM, IPPROTO_TCP)")),
                fixed(0, call("fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK)")),
                fixed(0, call("connect(4, ..., ...)")),
                fixed(
                    100_000,
                    Action::Inbound(format!("S. 0:0(0) ack 1 win 65535 <{syn_opts}>")),
                ),
            ]);
        } else {
            case.steps.extend([
                fixed(0, call("socket(..., SOCK_STREAM, IPPROTO_TCP)")),
                fixed(0, call("setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4)")),
                fixed(0, call("bind(3, ..., ...)")),
                fixed(0, call("listen(3, 1)")),
                fixed(
                    0,
                    Action::Inbound(format!("S 0:0(0) win 65535 <{syn_opts}>")),
                ),
                fixed(
                    100_000,
                    Action::Inbound(format!(". 1:1(0) ack 1 win {normal_win}")),
                ),
                fixed(100_000, call("accept(3, ..., ...)")),
                fixed(100_000, call("fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK)")),
            ]);
        }
        let mut peer = Peer {
            ack: 1,
            win: normal_win,
            normal_win,
            sack,
            mss,
            ..Peer::default()
        };
        let mut now = 100_000u64;
        for _ in 0..steps {
            let sent = match record(&case, opts) {
                Ok(rec) => Sent::of(&rec),
                Err(_) => break,
            };
            if peer.rst || (sent.rst && rng.chance(50)) {
                break;
            }
            let gap = rng.pick(&[
                (6, 1_000u64),
                (4, 5_000),
                (4, 20_000),
                (3, 60_000),
                (2, 150_000),
                (2, 400_000),
                (1, 1_200_000),
            ]);
            let at = now + gap + rng.below(300);
            if at > MAX_DURATION_US {
                break;
            }
            let Some(action) = next_action(&mut rng, &mut peer, &sent) else {
                continue;
            };
            now = at;
            case.steps.push(Step {
                at_us: now,
                action,
                fixed: false,
            });
        }
        // A last call a while later, so what synack's timers send after the last step is on
        // the record (and checked on Linux).
        // fd 3: the listener, or an active case's spare socket.
        let end = now + 1_000_000;
        case.steps.push(Step {
            at_us: end,
            action: call("getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4])"),
            fixed: true,
        });
        case
    }

    /// The case without step `i` (and, when it is the opening's, unchanged).
    pub fn without(&self, i: usize) -> Case {
        let mut c = self.clone();
        if i < c.steps.len() && !c.steps[i].fixed {
            c.steps.remove(i);
        }
        c
    }

    /// Steps that shrinking may drop.
    pub fn optional_steps(&self) -> usize {
        self.steps.iter().filter(|s| !s.fixed).count()
    }

    /// The script: with `rec`, synack's segments as outbound lines and its results as the
    /// expected ones; without it, placeholders (`= 0`) for recording.
    pub fn script(&self, rec: Option<&Recording>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "// synack fuzz case, seed {}: what synack does, as a script to replay on Linux.",
            self.seed
        );
        let _ = writeln!(out, "// linux-tolerance-usecs: 14000");
        let header_end = out.len();
        let _ = writeln!(out, "{SYSCTLS}");
        let _ = writeln!(out);
        let mut merged_any = false;
        let mut sent = rec
            .map(|r| r.sent.as_slice())
            .unwrap_or(&[])
            .iter()
            .peekable();
        let mut calls = rec.map(|r| r.calls.as_slice()).unwrap_or(&[]).iter();
        let mut next_fd = 3;
        for (i, step) in self.steps.iter().enumerate() {
            match &step.action {
                Action::Inbound(p) => {
                    let _ = writeln!(out, "{} < {p}", secs(step.at_us));
                }
                Action::Call(c) => {
                    // Without a recording, the placeholder: the fd a socket() or accept()
                    // line names is the one the script uses afterwards (3, then 4).
                    let placeholder = if c.starts_with("socket(") || c.starts_with("accept(") {
                        next_fd += 1;
                        next_fd - 1
                    } else {
                        0
                    };
                    let result = match rec {
                        None => placeholder.to_string(),
                        Some(_) => match calls.next() {
                            Some(&(ret, errno)) => result_text(ret, errno),
                            None => placeholder.to_string(),
                        },
                    };
                    let _ = writeln!(out, "{} {c} = {result}", secs(step.at_us));
                }
            }
            // synack's segments sent from this step's time until (not including) the next's.
            let next_at = self.steps.get(i + 1).map(|s| s.at_us);
            let mut last_us = step.at_us;
            while let Some((t, live)) = sent.peek() {
                let t_us = micros(*t);
                if next_at.is_some_and(|n| t_us >= n) {
                    break;
                }
                let slack = timer_slack_us(t_us.saturating_sub(last_us));
                let when = if slack == 0 {
                    secs(t_us)
                } else {
                    format!("{}~{}", secs(t_us), secs(t_us + slack))
                };
                let mut line = live.clone();
                let mut last_len = live.len;
                sent.next();
                // A burst (data segments sent at one instant) is one line: Linux hands it to
                // packetdrill's TUN as TSO packets whose sizes are its own choice.
                while let Some((t2, next)) = sent.peek() {
                    if *t2 != *t || last_len != live.len || !continues_burst(&line, next) {
                        break;
                    }
                    line.bits = next.bits;
                    line.len += next.len;
                    last_len = next.len;
                    merged_any = true;
                    sent.next();
                }
                let _ = writeln!(out, "{when} > {}", outbound_text(&line));
                last_us = t_us;
            }
        }
        if merged_any {
            out.insert_str(
                header_end,
                "// linux-merge-segments: a burst is one line; Linux sends it as TSO packets\n",
            );
        }
        out
    }
}

/// The next step the peer or the application takes, or `None` when the pick does not apply now.
fn next_action(rng: &mut Rng, peer: &mut Peer, sent: &Sent) -> Option<Action> {
    #[derive(Clone, Copy)]
    enum Kind {
        Data,
        Gap,
        Again,
        Ack,
        DupAck,
        Window,
        Fin,
        Rst,
        Write,
        Read,
        ShutWr,
        ShutRd,
        Close,
        NoDelay,
    }
    let kind = rng.pick(&[
        (10, Kind::Data),
        (3, Kind::Gap),
        (2, Kind::Again),
        (10, Kind::Ack),
        (3, Kind::DupAck),
        (2, Kind::Window),
        (2, Kind::Fin),
        (1, Kind::Rst),
        (10, Kind::Write),
        (6, Kind::Read),
        (2, Kind::ShutWr),
        (1, Kind::ShutRd),
        (2, Kind::Close),
        (1, Kind::NoDelay),
    ]);
    let app = !peer.closed;
    let seg = |peer: &Peer, flags: &str, start: u32, len: u32| {
        format!(
            "{flags} {start}:{}({len}) ack {} win {}",
            start + len,
            peer.ack,
            peer.win
        )
    };
    match kind {
        Kind::Data | Kind::Gap => {
            if peer.fin.is_some() {
                return None;
            }
            let len = rng.pick(&[(2, 1u32), (3, 100), (5, peer.mss.min(1000))]);
            let start = match kind {
                Kind::Data => peer.next_in_order(),
                _ => peer.highest() + peer.mss.min(1000) * (1 + rng.below(2) as u32),
            };
            peer.sent.push((start, start + len));
            let flags = if rng.chance(60) { "P." } else { "." };
            Some(Action::Inbound(seg(peer, flags, start, len)))
        }
        Kind::Again => {
            let &(s, e) = peer.sent.get(rng.below(peer.sent.len() as u64) as usize)?;
            Some(Action::Inbound(seg(peer, ".", s, e - s)))
        }
        Kind::Ack | Kind::DupAck => {
            let above: Vec<u32> = sent
                .edges
                .iter()
                .copied()
                .filter(|&e| e > peer.ack)
                .collect();
            let mut sack = String::new();
            if matches!(kind, Kind::Ack) {
                let &target = above.get(rng.below(above.len() as u64) as usize)?;
                peer.ack = target;
            } else if peer.sack && !above.is_empty() {
                // SACK one segment above the cumulative ACK: from an edge below it to it.
                let i = rng.below(above.len() as u64) as usize;
                if i > 0 {
                    sack = format!(" <nop,nop,sack {}:{}>", above[i - 1], above[i]);
                } else if above.len() > 1 {
                    sack = format!(" <nop,nop,sack {}:{}>", above[0], above[1]);
                }
            }
            let seq = peer.fin.map_or(peer.next_in_order(), |f| f + 1);
            Some(Action::Inbound(format!(
                ". {seq}:{seq}(0) ack {} win {}{sack}",
                peer.ack, peer.win
            )))
        }
        Kind::Window => {
            peer.win = if peer.win == 0 {
                peer.normal_win
            } else {
                rng.pick(&[(3, 0u32), (1, peer.normal_win / 32)])
            };
            let seq = peer.fin.map_or(peer.next_in_order(), |f| f + 1);
            Some(Action::Inbound(format!(
                ". {seq}:{seq}(0) ack {} win {}",
                peer.ack, peer.win
            )))
        }
        Kind::Fin => {
            if peer.fin.is_some() {
                return None;
            }
            let at = peer.next_in_order();
            peer.fin = Some(at);
            Some(Action::Inbound(format!(
                "F. {at}:{at}(0) ack {} win {}",
                peer.ack, peer.win
            )))
        }
        Kind::Rst => {
            if sent.max() <= 1 && rng.chance(50) {
                return None;
            }
            peer.rst = true;
            let seq = peer.fin.map_or(peer.next_in_order(), |f| f + 1);
            Some(Action::Inbound(format!(
                "R. {seq}:{seq}(0) ack {} win 0",
                peer.ack
            )))
        }
        Kind::Write if app && !peer.shut_wr => {
            let n = rng.pick(&[(2, 1u32), (3, 100), (3, 1000), (2, 2500), (2, 10_000)]);
            Some(Action::Call(format!("write(4, ..., {n})")))
        }
        Kind::Read if app => {
            let n = rng.pick(&[(1, 1u32), (2, 500), (3, 4000)]);
            Some(Action::Call(format!("read(4, ..., {n})")))
        }
        Kind::ShutWr if app && !peer.shut_wr => {
            peer.shut_wr = true;
            Some(Action::Call("shutdown(4, SHUT_WR)".into()))
        }
        Kind::ShutRd if app && !peer.shut_rd => {
            peer.shut_rd = true;
            Some(Action::Call("shutdown(4, SHUT_RD)".into()))
        }
        Kind::Close if app => {
            peer.closed = true;
            Some(Action::Call("close(4)".into()))
        }
        Kind::NoDelay if app && !peer.nodelay => {
            peer.nodelay = true;
            Some(Action::Call(
                "setsockopt(4, SOL_TCP, TCP_NODELAY, [1], 4)".into(),
            ))
        }
        _ => None,
    }
}

/// Whether `next` extends the burst `acc` as one merged line, under the rules the runner
/// merges live segments by: contiguous data with the same ACK and option length, the same
/// flags but PSH, no FIN (every segment but the last as long as the first: the caller).
fn continues_burst(acc: &Live, next: &Live) -> bool {
    use synack::wire::tcp::Flags;
    let data_only = !(Flags::SYN.0 | Flags::FIN.0 | Flags::RST.0 | Flags::URG.0);
    let mask = !Flags::PSH.0;
    acc.len > 0
        && next.len > 0
        && acc.bits & !data_only == 0
        && next.bits & !data_only == 0
        && (acc.bits & mask) == (next.bits & mask)
        && next.seq == acc.seq.wrapping_add(acc.len)
        && next.ack == acc.ack
        && next.options.len() == acc.options.len()
        && next.win == acc.win
}

/// How late Linux may send a segment that a timer of at least `gap_us` sends: its timer wheel
/// puts a timer due in 0.25 to 2 s into a slot up to 32 ms coarse, 2 to 16 s up to 256 ms
/// (plus a jiffy). A shorter timer lands within the kernel side's tolerance (14 ms). synack
/// sends at the exact time, the window's left edge.
fn timer_slack_us(gap_us: u64) -> u64 {
    match gap_us {
        0..200_000 => 0,
        200_000..2_000_000 => 40_000,
        _ => 300_000,
    }
}

/// `ret` as a script writes it: `1000`, or `-1 EAGAIN (Resource temporarily unavailable)`.
fn result_text(ret: i64, errno: Option<Errno>) -> String {
    match errno {
        Some(e) if ret < 0 => format!("{ret} {} ({})", e.name(), e.message()),
        _ => ret.to_string(),
    }
}

/// An outbound line's packet: synack's segment without its window (left unchecked: the two
/// stacks size their receive windows differently, and every case would differ there first).
fn outbound_text(l: &Live) -> String {
    l.text_with(false)
}

fn micros(t: Instant) -> u64 {
    t.saturating_duration_since(Instant::ZERO).as_micros() as u64
}

/// Microseconds as an absolute script time: `1.250137`.
fn secs(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> RunOptions {
        RunOptions::upstream_ipv4()
    }

    #[test]
    fn the_same_seed_gives_the_same_case_and_others_differ() {
        let a = Case::generate(7, 12, Opening::Mixed, &opts());
        let b = Case::generate(7, 12, Opening::Mixed, &opts());
        let c = Case::generate(8, 12, Opening::Mixed, &opts());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.optional_steps() > 0, "{a:?}");
    }

    #[test]
    fn a_recorded_case_passes_on_synack_as_written() {
        // The writer's fidelity: what synack did, written down, is what synack does again
        // (every outbound line at its time, every result), over many random cases.
        let mut outbound = 0;
        for seed in 0..40 {
            let opening = if seed % 2 == 0 {
                Opening::Passive
            } else {
                Opening::Active
            };
            let case = Case::generate(seed, 14, opening, &opts());
            let rec = record(&case, &opts()).expect("records");
            outbound += rec.sent.len();
            let text = case.script(Some(&rec));
            let dir = std::env::temp_dir().join(format!("synack-fuzz-test-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("case-{seed}.pkt"));
            std::fs::write(&path, &text).unwrap();
            let report = run::run_file(&path, &opts());
            let _ = std::fs::remove_file(&path);
            assert!(
                report.passed(),
                "seed {seed}: {:?}\n{text}\n{}",
                report.outcome,
                report.trace.join("\n")
            );
        }
        assert!(
            outbound > 40 * 2,
            "cases should make synack send ({outbound})"
        );
    }

    #[test]
    fn the_script_interleaves_segments_by_time_and_writes_results() {
        let case = Case {
            seed: 1,
            steps: vec![
                Step {
                    at_us: 0,
                    action: Action::Call("socket(..., SOCK_STREAM, IPPROTO_TCP)".into()),
                    fixed: true,
                },
                Step {
                    at_us: 2000,
                    action: Action::Call("read(4, ..., 10)".into()),
                    fixed: false,
                },
            ],
        };
        let live = Live {
            bits: synack::wire::tcp::Flags::ACK.0,
            ae: false,
            seq: 1,
            len: 0,
            ack: 101,
            win: 500,
            urg: 0,
            options: Vec::new(),
            tos: 0,
            ttl: 64,
        };
        let rec = Recording {
            sent: vec![(
                Instant::ZERO + synack::time::Duration::from_micros(1500),
                live,
            )],
            calls: vec![(3, None), (-1, Some(Errno::from_name("EAGAIN").unwrap()))],
        };
        let text = case.script(Some(&rec));
        let body: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("//"))
            .skip(4)
            .collect();
        assert_eq!(
            body,
            [
                "0.000000 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3",
                "0.001500 > . 1:1(0) ack 101",
                "0.002000 read(4, ..., 10) = -1 EAGAIN (Resource temporarily unavailable)",
            ]
        );
        assert_eq!(case.without(0), case, "the opening stays");
        assert_eq!(case.without(1).steps.len(), 1);
    }
}
