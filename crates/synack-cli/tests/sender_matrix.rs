//! Issue 21's matrix: synack's sender and the Linux kernel's, CUBIC and BBR, each through the
//! identical impairment on the real TUN device, for RTT 0.1 / 1 / 10 / 50 ms × random loss
//! 0 / 1 / 5 % × reordering 0 / 10 % (the 10 and 50 ms rows behind a 100 Mbit/s bottleneck with
//! a drop-tail queue of one bandwidth-delay product). Goodput, retransmitted segments,
//! retransmission timeouts and spurious retransmissions (those the receiver reported twice
//! with a D-SACK) of each sender, and the ratio synack / kernel per cell.
//!
//! ```sh
//! cargo build --release -p synack-cli
//! cargo test --release -p synack-cli --test sender_matrix -- --ignored --nocapture
//! ```
//!
//! The impairment is synack's own model (this kernel has no `sch_netem`), on the data
//! direction only, as netem on the sender's egress would put it; the ACKs are not impaired:
//!
//! * kernel → kernel: two namespaces whose TUN interfaces are joined by `synack relay
//!   --a-to-b SPEC`; the sender's socket picks its congestion control with `TCP_CONGESTION`
//!   (in a namespace the per-namespace default `net.ipv4.tcp_congestion_control` may only be
//!   set to the algorithms `tcp_allowed_congestion_control` lists, which CUBIC is not here);
//! * synack → kernel: `synack connect --impair-out SPEC --cc ALG` on a TUN interface into a
//!   namespace: `Impaired<Tun>`, the same model, code and seeds (the relay's A → B direction
//!   draws from the stream of `Impaired`'s outgoing direction, so both senders meet the same
//!   losses and reorderings at the same packet numbers).
//!
//! Each run sends a fixed number of bytes (by RTT row) and is cut off after a time limit;
//! goodput is what the receiver read, from the accept to its last byte (or the limit). The
//! runs go one at a time, each under `flock /tmp/synack-realtime.lock` (other engineers'
//! timing runs take turns with them), and take about ten minutes in all. Narrow them with
//! `SYNACK_MATRIX_CELLS` (a comma-separated list of substrings of the cell names, e.g.
//! `rtt=0.1ms,loss=5%`: a cell runs if its name contains all of them), `SYNACK_MATRIX_SENDERS`
//! (e.g. `synack-cubic,kernel-cubic`) and `SYNACK_MATRIX_LIMIT` (seconds per run, default 8).
//!
//! One run per sender and cell is a lead, not a verdict: at 50 ms with loss both BBR senders
//! are bimodal (STARTUP either reaches the bottleneck and overflows its queue, or ends near a
//! third of it after the kernel receiver's window held it back for a round or two), so one
//! pair's ratio ranged from 0.46× to 2.0× with the same two binaries. `SYNACK_MATRIX_RUNS=N`
//! runs every cell N times, the senders alternating, and the table gives the median run of
//! each sender (its goodput and counters), the range of goodputs, and the ratio of the
//! medians.
//!
//! `SYNACK_MATRIX_SACK=off` runs every cell without SACK: the receiving namespace's
//! `net.ipv4.tcp_sack=0`, so that neither sender negotiates it (the table says so). Each run
//! then asserts that its sender's SACK counters stayed 0 (`assert_no_sack`); the spurious
//! column is always 0 without SACK, D-SACK being what reports spurious retransmissions.
//!
//! Needs root, `/dev/net/tun`, `ip` and `python3`; without them the test says why and passes
//! (it fails instead under `CI=true`). Addresses: 198.18.0.0/24 (synack's TUN link) and
//! 198.18.2.0/24 (the relayed kernel pair), inside namespaces the test creates and deletes.

use std::fmt::Write as _;
use std::fs::File;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::*;

const MIB: u64 = 1024 * 1024;
/// The bottleneck of the 10 and 50 ms rows.
const RATE_BPS: u64 = 100_000_000;
/// Each run's seed of the impairment model (the same for every sender).
const SEED: u64 = 21;

/// One cell of the matrix.
#[derive(Debug, Clone, Copy)]
struct Cell {
    rtt_us: u64,
    loss_pct: u32,
    reorder_pct: u32,
}

impl Cell {
    fn all() -> Vec<Cell> {
        let mut v = Vec::new();
        for rtt_us in [100, 1_000, 10_000, 50_000] {
            for loss_pct in [0, 1, 5] {
                for reorder_pct in [0, 10] {
                    v.push(Cell {
                        rtt_us,
                        loss_pct,
                        reorder_pct,
                    });
                }
            }
        }
        v
    }

    fn rtt(&self) -> String {
        if self.rtt_us < 1000 {
            format!("{}ms", self.rtt_us as f64 / 1000.0)
        } else {
            format!("{}ms", self.rtt_us / 1000)
        }
    }

    fn name(&self) -> String {
        format!(
            "rtt={} loss={}% reorder={}%",
            self.rtt(),
            self.loss_pct,
            self.reorder_pct
        )
    }

    /// The bottleneck: 100 Mbit/s with a queue of one BDP on the long rows, none below.
    fn bottleneck(&self) -> Option<u64> {
        (self.rtt_us >= 10_000).then(|| RATE_BPS / 8 * self.rtt_us / 1_000_000)
    }

    /// The impairment as `synack relay` / `--impair-out` take it: the whole RTT as one-way
    /// delay on the data direction.
    fn spec(&self) -> String {
        let mut s = format!("delay={}us", self.rtt_us);
        if self.loss_pct > 0 {
            let _ = write!(s, ",loss={}%", self.loss_pct);
        }
        if self.reorder_pct > 0 {
            let _ = write!(s, ",reorder={}%", self.reorder_pct);
        }
        if let Some(queue) = self.bottleneck() {
            let _ = write!(s, ",rate={RATE_BPS}bit,queue={queue}B");
        }
        s
    }

    /// Bytes each run sends: a few seconds at the path's rate when nothing is lost.
    fn bytes(&self) -> u64 {
        match self.rtt_us {
            0..=1_000 => 32 * MIB,
            1_001..=10_000 => 16 * MIB,
            _ => 8 * MIB,
        }
    }
}

/// Who sends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sender {
    Synack(&'static str),
    Kernel(&'static str),
}

impl Sender {
    fn name(&self) -> String {
        match self {
            Sender::Synack(cc) => format!("synack-{cc}"),
            Sender::Kernel(cc) => format!("kernel-{cc}"),
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
struct Run {
    bytes: u64,
    secs: f64,
    /// The run hit the time limit before the last byte.
    capped: bool,
    retrans: u64,
    timeouts: u64,
    /// Retransmitted segments the receiver reported as duplicates (D-SACK).
    spurious: u64,
}

impl Run {
    fn mbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.secs.max(1e-9) / 1e6
    }
}

/// The receiver: accepts one connection, reads until EOF or the limit, prints
/// `rx BYTES SECONDS` (from the accept to the last byte read, or to the limit).
const SINK: &str = r#"
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen(1)
s.settimeout(30)
print("ready", flush=True)
c, _ = s.accept()
t0 = time.monotonic()
end = t0 + limit
n, last, capped = 0, t0, 0
while True:
    left = end - time.monotonic()
    if left <= 0:
        capped = 1
        last = end
        break
    c.settimeout(left)
    try:
        b = c.recv(1 << 20)
    except socket.timeout:
        capped = 1
        last = end
        break
    if not b:
        break
    n += len(b)
    last = time.monotonic()
print("rx", n, last - t0, capped, flush=True)
c.close()
"#;

/// A kernel sender: connects with the given congestion control and sends the file.
const KERNEL_SENDER: &str = r#"
import socket, sys
host, port, path, cc = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = socket.socket()
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
c.settimeout(60)
c.connect((host, port))
used = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).split(b"\0")[0].decode()
print("cc", used, flush=True)
try:
    with open(path, "rb") as f:
        c.sendfile(f)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
except OSError:
    pass
"#;

fn sink(ns: &Netns, port: u16, limit: Duration) -> Proc {
    let mut cmd = ns.cmd("python3");
    cmd.args(["-c", SINK, &port.to_string()])
        .arg(format!("{}", limit.as_secs_f64()));
    let p = Proc::spawn(cmd, "receiver");
    p.wait_line(false, "ready", Duration::from_secs(10));
    p
}

/// Parses the sink's `rx BYTES SECONDS CAPPED`.
fn received(p: Proc, limit: Duration) -> (u64, f64, bool) {
    let (ok, out, err) = p.finish(limit + Duration::from_secs(60));
    assert!(ok, "receiver failed: {out}{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("rx "))
        .unwrap_or_else(|| panic!("no rx line from the receiver: {out}{err}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 4, "bad receiver report {line:?}");
    (
        f[1].parse().expect("bytes"),
        f[2].parse().expect("seconds"),
        f[3] == "1",
    )
}

/// `Name value` lines (nstat style) → the value of `name`, 0 when absent.
fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            (it.next()? == name).then(|| it.next()?.parse().ok())?
        })
        .next()
        .unwrap_or(0)
}

/// The kernel's TCP counters in a namespace, as `Name value` lines (from /proc/net/snmp and
/// /proc/net/netstat: a header line of names, then a line of values, per protocol).
fn kernel_counters(ns: &Netns) -> String {
    let mut out = String::new();
    for file in ["/proc/net/snmp", "/proc/net/netstat"] {
        let text = run(ns.cmd("cat").arg(file));
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.chunks(2) {
            let [names, values] = pair else { continue };
            for (n, v) in names
                .split_whitespace()
                .zip(values.split_whitespace())
                .skip(1)
            {
                let _ = writeln!(out, "{n} {v}");
            }
        }
    }
    out
}

/// Whether `SYNACK_MATRIX_SACK=off` asked for the runs without SACK.
fn sack_off() -> bool {
    std::env::var("SYNACK_MATRIX_SACK").is_ok_and(|v| v == "off" || v == "0")
}

/// The receiver's namespace: without SACK if asked (`net.ipv4.tcp_sack` is per namespace),
/// so that the SYN-ACK does not permit it and neither sender uses it.
fn receiver_netns(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    if sack_off() {
        run(ns.cmd("sysctl").args(["-q", "-w", "net.ipv4.tcp_sack=0"]));
    }
    ns
}

/// Without SACK (`SYNACK_MATRIX_SACK=off`), each run checks that the sender went without it,
/// as far as its counters show: no SACK recovery (`TCPSackRecovery`), no tail loss probe
/// (`TCPLossProbes`: both senders probe only with SACK, Linux `tcp_schedule_loss_probe` and
/// synack's timers alike, and a sender with SACK probes in almost any run with a loss), no
/// D-SACK (`TCPDSACKRecv`, `TCPDSACKRecvSegs`), no invalid SACK blocks (`TCPSACKDiscard`)
/// and, on the kernel, no SACK-driven skb merges (`TCPSackMerged`, `TCPSackShifted`; synack
/// has no such counters, so they read 0 there). A run without any loss shows none of these
/// either way: it cannot tell, and needs none. The spurious column (`TCPDSACKRecvSegs`) is
/// then always 0: only D-SACK reports spurious retransmissions.
fn assert_no_sack(who: &str, counters: &str) {
    if !sack_off() {
        return;
    }
    for name in [
        "TCPSackRecovery",
        "TCPLossProbes",
        "TCPSACKDiscard",
        "TCPSackMerged",
        "TCPSackShifted",
        "TCPDSACKRecv",
        "TCPDSACKRecvSegs",
    ] {
        assert_eq!(
            counter(counters, name),
            0,
            "{who}: {name} with SACK off (SACK was used after all)"
        );
    }
}

fn run_synack(cell: &Cell, cc: &str, data: &std::path::Path, limit: Duration) -> Run {
    let ns = receiver_netns("mx-s");
    let rx = sink(&ns, 9000, limit);
    let mut cmd = Command::new(synack_bin());
    cmd.args(["connect", "--netns", &ns.name, "--tun", "mx0"])
        .args(["--addr", "198.18.0.2/24", "--kernel-addr", "198.18.0.1/24"])
        .args(["198.18.0.1:9000", "--send"])
        .arg(data)
        .args(["--recv", "/dev/null", "--stats", "--cc", cc])
        .args(["--impair-out", &cell.spec(), "--seed", &SEED.to_string()]);
    let sender = Proc::spawn(cmd, "synack connect");
    let (bytes, secs, capped) = received(rx, limit);
    // Cut off, the receiver closed with data unread: the kernel's RST ends synack's connect,
    // which still prints its counters.
    let (_, _, err) = sender.finish(Duration::from_secs(60));
    if !capped {
        assert_eq!(bytes, cell.bytes(), "synack-{cc}: short transfer: {err}");
    }
    assert!(
        err.contains("synack connect: counters"),
        "synack-{cc} printed no counters: {err}"
    );
    assert_no_sack(&format!("synack-{cc}"), &err);
    Run {
        bytes,
        secs,
        capped,
        retrans: counter(&err, "RetransSegs"),
        timeouts: counter(&err, "TCPTimeouts"),
        spurious: counter(&err, "TCPDSACKRecvSegs"),
    }
}

fn run_kernel(cell: &Cell, cc: &str, data: &std::path::Path, limit: Duration) -> Run {
    let left = Netns::new("mx-l");
    let right = receiver_netns("mx-r");
    let mut cmd = Command::new(synack_bin());
    cmd.args(["relay", "--a-netns", &left.name, "--a-tun", "ra"])
        .args(["--a-addr", "198.18.2.1/24"])
        .args(["--b-netns", &right.name, "--b-tun", "rb"])
        .args(["--b-addr", "198.18.2.2/24"])
        .args(["--a-to-b", &cell.spec(), "--seed", &SEED.to_string()])
        .args(["--duration", &format!("{}s", limit.as_secs() + 120)]);
    let mut relay = Proc::spawn(cmd, "synack relay");
    relay.wait_line(false, "relaying", Duration::from_secs(10));
    let rx = sink(&right, 9000, limit);
    let mut cmd = left.cmd("python3");
    cmd.args(["-c", KERNEL_SENDER, "198.18.2.2", "9000"])
        .arg(data)
        .arg(cc);
    let sender = Proc::spawn(cmd, "kernel sender");
    let used = sender.wait_line(false, "cc ", Duration::from_secs(10));
    assert_eq!(
        used.trim(),
        format!("cc {cc}"),
        "the kernel sender's algorithm"
    );
    let (bytes, secs, capped) = received(rx, limit);
    let mut sender = sender;
    if capped {
        sender.terminate();
    }
    let _ = sender.finish(Duration::from_secs(30));
    if !capped {
        assert_eq!(bytes, cell.bytes(), "kernel-{cc}: short transfer");
    }
    let counters = kernel_counters(&left);
    assert_no_sack(&format!("kernel-{cc}"), &counters);
    relay.terminate();
    let _ = relay.finish(Duration::from_secs(10));
    Run {
        bytes,
        secs,
        capped,
        retrans: counter(&counters, "RetransSegs"),
        timeouts: counter(&counters, "TCPTimeouts"),
        spurious: counter(&counters, "TCPDSACKRecvSegs"),
    }
}

fn env_list(name: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The run of median goodput (the lower middle one of an even number), and the lowest and
/// highest goodput; `None` without runs.
fn median(runs: &[Run]) -> Option<(Run, f64, f64)> {
    let mut sorted: Vec<&Run> = runs.iter().collect();
    sorted.sort_by(|a, b| a.mbps().total_cmp(&b.mbps()));
    let mid = sorted.get((sorted.len().max(1) - 1) / 2)?;
    let lo = sorted.first()?.mbps();
    let hi = sorted.last()?.mbps();
    Some(((*mid).clone(), lo, hi))
}

fn fmt_run(r: Option<&(Run, f64, f64)>, runs: usize) -> String {
    match r {
        Some((r, lo, hi)) => {
            let mut s = format!(
                "{:.1}{} ({}/{}/{})",
                r.mbps(),
                if r.capped { "*" } else { "" },
                r.retrans,
                r.timeouts,
                r.spurious
            );
            if runs > 1 {
                let _ = write!(s, " [{lo:.1}–{hi:.1}]");
            }
            s
        }
        None => "-".into(),
    }
}

fn ratio(ours: Option<&(Run, f64, f64)>, theirs: Option<&(Run, f64, f64)>) -> String {
    match (ours, theirs) {
        (Some((a, ..)), Some((b, ..))) if b.mbps() > 0.0 => format!("{:.2}×", a.mbps() / b.mbps()),
        _ => "-".into(),
    }
}

#[test]
#[ignore = "ten minutes on the real TUN device; run with --ignored (see the module docs)"]
fn synack_and_kernel_senders_through_the_same_impairments() {
    if !may_run("the sender matrix", &["ip", "python3"]) {
        return;
    }
    let limit = Duration::from_secs(
        std::env::var("SYNACK_MATRIX_LIMIT")
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&s| s > 0)
            .unwrap_or(8),
    );
    let repeats: usize = std::env::var("SYNACK_MATRIX_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    let filters = env_list("SYNACK_MATRIX_CELLS");
    let cells: Vec<Cell> = Cell::all()
        .into_iter()
        .filter(|c| filters.iter().all(|f| c.name().contains(f.as_str())))
        .collect();
    let all_senders = [
        Sender::Kernel("cubic"),
        Sender::Synack("cubic"),
        Sender::Kernel("bbr"),
        Sender::Synack("bbr"),
    ];
    let wanted = env_list("SYNACK_MATRIX_SENDERS");
    let senders: Vec<Sender> = all_senders
        .into_iter()
        .filter(|s| wanted.is_empty() || wanted.contains(&s.name()))
        .collect();
    let scratch = Scratch::new("matrix");
    let max_bytes = cells.iter().map(Cell::bytes).max().unwrap_or(0);
    let data = scratch.random_file("data.bin", max_bytes, 21);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let started = Instant::now();
    let mut rows = Vec::new();
    for cell in &cells {
        // The file is cut to the cell's size by hard-linking a prefix copy.
        let path = scratch.path(&format!("data-{}.bin", cell.bytes()));
        if !path.exists() {
            let mut f = File::open(&data).expect("data");
            let mut out = File::create(&path).expect("data copy");
            std::io::copy(&mut std::io::Read::take(&mut f, cell.bytes()), &mut out).expect("copy");
        }
        let mut runs: Vec<(Sender, Run)> = Vec::new();
        // Round by round, the senders alternating (in the reverse order every other round:
        // A B, B A, ...), so that a slow minute of the machine falls on both.
        let order = (0..repeats).flat_map(|round| {
            let mut these: Vec<&Sender> = senders.iter().collect();
            if round % 2 == 1 {
                these.reverse();
            }
            these
        });
        for s in order {
            let lock = File::create("/tmp/synack-realtime.lock").expect("lock file");
            lock.lock().expect("flock");
            let r = match s {
                Sender::Synack(cc) => run_synack(cell, cc, &path, limit),
                Sender::Kernel(cc) => run_kernel(cell, cc, &path, limit),
            };
            drop(lock);
            eprintln!(
                "{:32} {:13} {:8.1} Mbit/s{} retrans {} timeouts {} spurious {} ({:.0} s so far)",
                cell.name(),
                s.name(),
                r.mbps(),
                if r.capped { " (cut off)" } else { "" },
                r.retrans,
                r.timeouts,
                r.spurious,
                started.elapsed().as_secs_f64()
            );
            assert!(
                r.bytes > 0,
                "{}: {}: nothing arrived",
                cell.name(),
                s.name()
            );
            runs.push((*s, r));
        }
        rows.push((*cell, runs));
    }
    let get = |runs: &[(Sender, Run)], s: Sender| {
        let of: Vec<Run> = runs
            .iter()
            .filter(|(x, _)| *x == s)
            .map(|(_, r)| r.clone())
            .collect();
        median(&of)
    };
    let mut table = String::new();
    let _ = writeln!(
        table,
        "Goodput in Mbit/s (retransmitted segments / timeouts / spurious retransmissions); \
         * = cut off after {} s. Load average at the start: {}{}",
        limit.as_secs(),
        load.trim(),
        if sack_off() {
            ". SACK off (the receiver's net.ipv4.tcp_sack=0)"
        } else {
            ""
        }
    );
    if repeats > 1 {
        let _ = writeln!(
            table,
            "{repeats} runs of each sender per cell, alternating: the median run, [lowest–highest \
             goodput]; the ratio is of the medians."
        );
    }
    let _ = writeln!(
        table,
        "\n| RTT | loss | reorder | kernel CUBIC | synack CUBIC | ratio | kernel BBR | synack BBR | ratio |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (cell, runs) in &rows {
        let kc = get(runs, Sender::Kernel("cubic"));
        let sc = get(runs, Sender::Synack("cubic"));
        let kb = get(runs, Sender::Kernel("bbr"));
        let sb = get(runs, Sender::Synack("bbr"));
        let _ = writeln!(
            table,
            "| {}{} | {}% | {}% | {} | {} | {} | {} | {} | {} |",
            cell.rtt(),
            if cell.bottleneck().is_some() {
                ", 100 Mbit/s"
            } else {
                ""
            },
            cell.loss_pct,
            cell.reorder_pct,
            fmt_run(kc.as_ref(), repeats),
            fmt_run(sc.as_ref(), repeats),
            ratio(sc.as_ref(), kc.as_ref()),
            fmt_run(kb.as_ref(), repeats),
            fmt_run(sb.as_ref(), repeats),
            ratio(sb.as_ref(), kb.as_ref()),
        );
    }
    eprintln!(
        "\n{table}\n{} runs in {:.0} s",
        rows.iter().map(|(_, r)| r.len()).sum::<usize>(),
        started.elapsed().as_secs_f64()
    );
}
