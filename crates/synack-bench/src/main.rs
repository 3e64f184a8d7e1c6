//! Side-by-side benchmarks: synack vs smoltcp vs the Linux kernel.
//!
//! `cargo run --release -p synack-bench -- [all|bulk|cps|conns|rtt|flood|insns|conc]... [--runs N]
//! [--bytes SIZE] [--quick]` prints one markdown table and writes `target/bench/<figure>.json`.
//! See the crate README for what each figure measures and the callgrind recipe.

mod bulk;
mod conc;
mod conns;
mod cps;
mod flood;
mod insns;
mod kernel;
mod link;
mod pair;
mod report;
mod rtt;
mod sizes;
mod smol_pair;
mod synack_pair;

use std::time::Duration;

use pair::Pair;
use report::{Row, percentile};
use smol_pair::SmolPair;
use synack_pair::{LITE_NOTE, LITE_ROW, SynackPair, Variant};

const FIGURES: [&str; 7] = ["bulk", "cps", "conns", "rtt", "flood", "insns", "conc"];

struct Opts {
    figures: Vec<String>,
    runs: usize,
    bytes: u64,
    quick: bool,
}

const USAGE: &str = "usage: synack-bench [all|bulk|cps|conns|rtt|flood|insns|conc]... [--runs N] [--bytes SIZE] [--quick]\n\
     \n  all    every figure (insns only when valgrind is installed)\
     \n  --runs N      rounds per bulk figure, peers interleaved round by round (default 5)\
     \n  --bytes SIZE  bytes per bulk transfer, with units as in `synack`: 1GiB, 256MiB, 100MB,\
     \n                1048576 (default 1GiB)\
     \n  --quick       small sizes, to check that everything runs (figures not meaningful)";

/// Reads the command line; a bad one is one line saying what is wrong.
fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        figures: Vec::new(),
        runs: 5,
        bytes: 1 << 30,
        quick: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value (see --help)"))
        };
        match a.as_str() {
            "all" => o.figures.extend(FIGURES.iter().map(|s| s.to_string())),
            f if FIGURES.contains(&f) => o.figures.push(f.to_string()),
            "--runs" => {
                let v = value("--runs")?;
                o.runs =
                    v.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                        format!("--runs: expected a count of at least 1, got {v:?}")
                    })?;
            }
            "--bytes" => {
                let v = value("--bytes")?;
                o.bytes = synack::units::size(v).map_err(|e| format!("--bytes: {e}"))?;
            }
            "--quick" => o.quick = true,
            other => {
                return Err(format!(
                    "unknown argument {other:?} (figures: all, {}; see --help)",
                    FIGURES.join(", ")
                ));
            }
        }
    }
    if o.figures.is_empty() {
        o.figures.extend(FIGURES.iter().map(|s| s.to_string()));
    }
    if o.quick {
        o.runs = o.runs.min(2);
        o.bytes = o.bytes.min(32 << 20);
    }
    o.figures.dedup();
    Ok(o)
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default();
    format!("{cpus} CPUs ({model}), Linux {}", kernel.trim())
}

fn bulk_notes() -> Vec<String> {
    vec![
        "synack and smoltcp: two stacks in one process and one thread, joined by an in-memory link (one FIFO of IP packets per direction, buffers recycled, no delay model), driven in one loop: the client application writes what its send buffer takes, the client transmits, the server processes and the application reads, the server transmits ACKs, the client processes them; one clock read per round".into(),
        "same MTU and the same send/receive buffer sizes on both userspace stacks; IPv4 and TCP checksums computed on send and verified on receive on both (smoltcp ChecksumCapabilities all Both); TCP timestamps on synack (its default) and off on smoltcp (smoltcp 0.12 with timestamps sizes full segments without room for the option and sends nothing), so synack's MSS is 12 bytes smaller (1448 vs 1460 at MTU 1500: its full data segments carry 1448 payload bytes against smoltcp's 1460); otherwise each stack's defaults (synack: Linux-like delayed ACK, SACK, CUBIC; smoltcp: Nagle, 10 ms delayed ACK, no congestion control)".into(),
        "kernel: std::net on 127.0.0.1 between two threads (crosses system calls and threads; loopback GSO/GRO means the kernel moves up to 64 KiB per skb whatever the MSS); SO_SNDBUF/SO_RCVBUF set to the buffer size (the kernel doubles it) and TCP_MAXSEG to MTU-40".into(),
        "Gbps = payload bytes x 8 / wall time of the transfer (handshake excluded); median of the runs; each round runs synack, synack-lite, smoltcp, kernel in turn".into(),
    ]
}

fn run_rtt(quick: bool) -> (Vec<Row>, Vec<String>) {
    let (n, warm) = if quick {
        (2_000, 100)
    } else {
        (200_000, 10_000)
    };
    let kn = if quick { 1_000 } else { 50_000 };
    let mut s = SynackPair::connected(1500, 64 * 1024);
    let s = rtt::pingpong(&mut s, n, warm);
    let mut l = SynackPair::connected_as(Variant::Lite, 1500, 64 * 1024);
    let l = rtt::pingpong(&mut l, n, warm);
    let mut m = SmolPair::connected(1500, 64 * 1024);
    let m = rtt::pingpong(&mut m, n, warm);
    let k = kernel::rtt(kn, kn / 10);
    let us = |v: &[f64], p: f64| percentile(v, p) / 1000.0;
    let mut rows = vec![
        Row::lower(
            "rtt 1-byte ping-pong, median",
            "µs",
            Some(us(&s, 50.0)),
            Some(us(&m, 50.0)),
            Some(us(&k, 50.0)),
        )
        .note(format!("{n} round trips in-process ({kn} for the kernel)")),
        Row::lower(
            "rtt 1-byte ping-pong, p99",
            "µs",
            Some(us(&s, 99.0)),
            Some(us(&m, 99.0)),
            Some(us(&k, 99.0)),
        ),
    ];
    rows.extend([50.0, 99.0].map(|q| {
        Row::lower(
            &format!("rtt 1-byte ping-pong, p{q}, {LITE_ROW}"),
            "µs",
            Some(us(&l, q)),
            Some(us(&m, q)),
            None,
        )
        .note(format!(
            "synack-lite in the synack column, run between synack and smoltcp; {LITE_NOTE}"
        ))
    }));
    let notes = vec![
        "userspace: client writes 1 byte, the link carries it, the server reads and writes it back, the client reads it; both stacks in one thread over the in-memory link (MTU 1500, 64 KiB buffers); each round trip timed with std::time::Instant".into(),
        "kernel: the same over 127.0.0.1 between two threads with TCP_NODELAY (two system calls and a thread wake-up each way)".into(),
    ];
    (rows, notes)
}

fn run_cps(quick: bool) -> (Vec<Row>, Vec<String>) {
    let budget = Duration::from_millis(if quick { 200 } else { 2_000 });
    let s = cps::synack(Variant::Default, budget, u64::MAX);
    let l = cps::synack(Variant::Lite, budget, u64::MAX);
    let m = cps::smoltcp(budget, u64::MAX);
    let (kn, k) = kernel::cps(budget, u64::MAX);
    let rows = vec![
        Row::higher(
            "cps: connect+accept+1 B each way+close, one at a time",
            "cycles/s",
            Some(s.per_sec),
            Some(m.per_sec),
            Some(k),
        )
        .note(format!(
            "cycles in {budget:?}: synack {}, smoltcp {}, kernel {kn}",
            s.cycles, m.cycles
        )),
        Row::higher(
            &format!("cps, {LITE_ROW}"),
            "cycles/s",
            Some(l.per_sec),
            Some(m.per_sec),
            None,
        )
        .note(format!(
            "synack-lite in the synack column, {} cycles in {budget:?}, run between synack and smoltcp; {LITE_NOTE}",
            l.cycles
        )),
    ];
    let notes = vec![
        "cycle: client connects; SYN, SYN-ACK; client writes 1 byte with the final ACK; server accepts, reads it, writes 1 byte and closes; client reads it and the end of stream and closes; FIN, ACK. The server closes first and holds TIME-WAIT".into(),
        format!("synack: {}", s.note),
        format!("smoltcp: {}", m.note),
        format!("kernel: {kn} cycles over 127.0.0.1 in one thread with blocking calls (connect returns once the kernel finished the handshake; accept then finds it); tcp_tw_reuse lets the server's TIME-WAIT be reused"),
    ];
    (rows, notes)
}

fn run_conns(quick: bool) -> (Vec<Row>, Vec<String>) {
    let counts: &[usize] = if quick {
        &[10_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    let conn = std::mem::size_of::<synack::tcp::Connection>();
    let smol_socket = std::mem::size_of::<smoltcp::socket::tcp::Socket>();
    let mut rows = Vec::new();
    for &n in counts {
        for touch in [false, true] {
            if touch && n > 100_000 {
                continue;
            }
            let Some(r) = conns::in_child(n, touch) else {
                rows.push(Row::lower(
                    &format!("conns {n}: could not run"),
                    "B/conn",
                    None,
                    None,
                    None,
                ));
                continue;
            };
            let per_end = r.rss_delta as f64 / (2 * n) as f64;
            let what = if touch {
                "after 1 B each way"
            } else {
                "idle after handshake"
            };
            rows.push(
                Row::lower(
                    &format!("conns {n}, {what}: RSS per connection end"),
                    "bytes",
                    Some(per_end),
                    None,
                    None,
                )
                .note(format!(
                    "RSS +{} MiB for {n} connections (2 x {n} ends) in {:.2} s",
                    r.rss_delta >> 20,
                    r.secs
                )),
            );
        }
    }
    rows.push(Row::lower("size_of connection struct", "bytes", Some(conn as f64), Some(smol_socket as f64), None)
        .note(format!("synack: size_of::<tcp::Connection>() (plus the bookkeeping of the slot it lives in); smoltcp: size_of::<tcp::Socket>() = {smol_socket} B, plus its buffers, which the caller allocates up front")));
    rows.push(Row::lower("idle connection incl. buffers, 64 KiB buffers", "bytes", None, Some((smol_socket + 2 * 64 * 1024) as f64), None)
        .note("smoltcp: size_of socket + rx and tx buffers of 64 KiB each, allocated up front (a working socket needs at least an MSS of receive buffer)"));
    let notes = vec![
        "synack: both ends of every connection in one process (client 198.18.0.1 with ephemeral ports 1024-65535, server 198.18.0.2 listening on ports 10000.. as needed, 64,512 connections per port), established and accepted, then idle; RSS delta (VmRSS) measured in a fresh child process, divided by 2n ends; it includes the demux hash table, the slot table (connections live in it), the congestion-control allocations, and the handle vectors the benchmark keeps (16 B per connection)".into(),
        "'after 1 B each way': each connection then carries one byte each way and both are read, so any buffer allocated on first use is counted".into(),
    ];
    (rows, notes)
}

fn run_conc(quick: bool) -> (Vec<Row>, Vec<String>) {
    let (n, rounds, threads, trounds) = conc::sizes(quick);
    let s = conc::synack_async(n, rounds);
    let sp = conc::synack_async_pair(n, rounds);
    let k = conc::kernel_async(n, rounds);
    let b = conc::synack_blocking(threads, trounds);
    let kv = |f: &dyn Fn(&conc::Conc) -> f64| k.as_ref().map(f);
    let p = |c: &conc::Conc, q: f64| percentile(&c.latencies, q);
    let per_req = |c: &conc::Conc| c.wakeups.unwrap_or(0) as f64 / c.requests as f64;
    // The rows of one synack variant against the kernel: `tag` names the variant.
    let variant = |c: &conc::Conc, tag: &str, what: &str| {
        let latency = [50.0, 99.0].map(|q| {
            Row::lower(
                &format!("conc tokio, {tag}: latency p{q}"),
                "µs",
                Some(p(c, q)),
                None,
                kv(&|c| p(c, q)),
            )
        });
        let mut rows = vec![
            Row::higher(
                &format!("conc {n} conns x 1 KiB req/resp, tokio, {tag}"),
                "req/s",
                Some(c.per_sec()),
                None,
                kv(&|c| c.per_sec()),
            )
            .note(format!(
                "{what}; {} requests: synack {:.2} s, kernel {}{}",
                c.requests,
                c.secs,
                k.as_ref()
                    .map_or("did not run".into(), |c| format!("{:.2} s", c.secs)),
                c.drops.map_or(String::new(), |d| format!(
                    "; {d} packets dropped on a full pair queue"
                ))
            )),
        ];
        rows.extend(latency);
        rows.extend([
            Row::lower(
                &format!("conc tokio, {tag}: wake-ups per request"),
                "wakes",
                Some(per_req(c)),
                None,
                None,
            )
            .note("tasks woken by synack's driver(s), per request/response (a request: one read readiness on the server, one on the client; writes never blocked)"),
            Row::lower(
                &format!("conc tokio, {tag}: packets per request"),
                "packets",
                c.packets.map(|p| p as f64 / c.requests as f64),
                None,
                None,
            )
            .note("IP packets between synack's two hosts per request/response: 2 when every ACK rides on the answer or the next request"),
        ]);
        rows
    };
    let mut rows = variant(
        &s,
        "synack 1 runtime",
        "synack: both hosts in one runtime on SimNet, one driver task does both ends' TCP work",
    );
    rows.extend(variant(
        &sp,
        "synack runtime per host",
        "synack: one runtime per host, joined by an in-memory device pair; two driver tasks, one per end",
    ));
    rows.push(
        Row::higher(
            &format!("conc blocking, {threads} threads x 1 KiB req/resp"),
            "req/s",
            Some(b.per_sec()),
            None,
            None,
        )
        .note(format!(
            "{} requests in {:.2} s; p50 {:.0} µs, p99 {:.0} µs; {:.2} wake-ups per request",
            b.requests,
            b.secs,
            p(&b, 50.0),
            p(&b, 99.0),
            per_req(&b)
        )),
    );
    let notes = vec![
        format!("tokio multi-threaded runtime (one worker per CPU); {n} connections opened first, then each runs {rounds} sequential 1 KiB requests, all connections at once; every response checked; TCP_NODELAY on both sides"),
        "synack 1 runtime: client and server hosts in one synack runtime on an in-memory link (SimNet, no delay), its one driver a task on the same tokio runtime (Runtime::builder().host(..).host(..).build_tokio()): one task does both hosts' TCP work, on one core at a time".into(),
        format!("synack runtime per host: the client host and the server host each in its own synack runtime, joined by an in-memory device pair (device::pair, veth-like, {} packets per queue; Runtime::builder().device(end).build_tokio() for each), so two driver tasks on the same tokio runtime do one host's TCP work each, on two cores at once", conc::PAIR_QUEUE),
        "kernel: tokio::net over 127.0.0.1, the server in a child process (20,000 descriptors do not fit one process's limit here), the same client code; its TCP work runs in the system calls of both processes' tokio workers".into(),
        format!("blocking: synack::net with {threads} client threads and {threads} server threads, {trounds} requests each, on a runtime thread"),
    ];
    (rows, notes)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("conns-child") => return conns::child(&args[1..]),
        Some("conc-server") => return conc::server_child(),
        Some("cg-conc") => return conc::cg_child(&args[1..]),
        Some("cg-bulk") => return insns::child(&args[1..]),
        Some("cg-cps") => return insns::cps_child(&args[1..]),
        Some("cg-rtt") => return insns::rtt_child(&args[1..]),
        Some("sizes") => {
            for (part, bytes) in sizes::parts() {
                if bytes == 0 {
                    println!("{part}"); // a heading
                } else {
                    println!("{bytes:>6}  {part}");
                }
            }
            return;
        }
        _ => {}
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    let o = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let _ = std::fs::create_dir_all(report::out_dir());
    let out_dir = report::out_dir();
    println!("# synack-bench\n\nmachine: {}\n", machine());
    let mut all_rows = Vec::new();
    for f in &o.figures {
        eprintln!("running {f} ...");
        let (rows, notes): (Vec<Row>, Vec<String>) = match f.as_str() {
            "bulk" => (bulk::run(o.bytes, o.runs), bulk_notes()),
            "cps" => run_cps(o.quick),
            "conns" => run_conns(o.quick),
            "conc" => run_conc(o.quick),
            "rtt" => run_rtt(o.quick),
            "flood" => (
                flood::run(Duration::from_millis(if o.quick { 100 } else { 500 })),
                vec!["synack only: spoofed SYNs into Stack::handle_packet, every SYN-ACK written by poll_transmit; virtual time 1 µs per SYN".into()],
            ),
            "insns" => {
                if !insns::valgrind_available() {
                    eprintln!("insns: valgrind not found (apt-get install valgrind); skipped");
                    continue;
                }
                (
                    insns::run(&out_dir),
                    vec![
                        "callgrind --toggle-collect='*measured_bulk_*': instructions of the bulk loop only (both sides, link, application copies), divided by data segments; see the crate README".into(),
                        "callgrind --toggle-collect='*measured_cps_*': instructions of the cps loop (both ends, link, stacks set up and dropped), divided by cycles: the handshake path".into(),
                        "callgrind --toggle-collect='*measured_rtt_*': instructions of the rtt ping-pong (both ends, link, connecting first), divided by round trips".into(),
                    ],
                )
            }
            _ => unreachable!(),
        };
        println!("## {f}\n");
        for n in &notes {
            println!("- {n}");
        }
        println!();
        print!("{}", report::table(&rows));
        for r in rows.iter().filter(|r| !r.note.is_empty()) {
            println!("\n  {}: {}", r.figure, r.note);
        }
        println!();
        let path = out_dir.join(format!("{f}.json"));
        if let Err(e) = std::fs::write(&path, report::json(f, &notes, &rows)) {
            eprintln!("could not write {}: {e}", path.display());
        }
        all_rows.extend(rows);
    }
    if o.figures.len() > 1 {
        println!("## all figures\n\n{}", report::table(&all_rows));
    }
    println!(
        "ratios: how many times better synack is (>1: synack better; higher-is-better figures divide synack by the peer, times and bytes the peer by synack). JSON in {}",
        out_dir.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sizes_take_the_same_units_as_the_synack_command() {
        let o = parse(&args(&["bulk", "--bytes", "1GiB", "--runs", "3"])).unwrap();
        assert_eq!(
            (o.figures, o.bytes, o.runs),
            (vec!["bulk".to_string()], 1 << 30, 3)
        );
        assert_eq!(
            parse(&args(&["--bytes", "256MiB"])).unwrap().bytes,
            256 << 20
        );
        assert_eq!(
            parse(&args(&["--bytes", "100MB"])).unwrap().bytes,
            100_000_000
        );
        assert_eq!(parse(&args(&["--bytes", "4096"])).unwrap().bytes, 4096);
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        let err = |a: &[&str]| parse(&args(a)).err().unwrap();
        assert_eq!(
            err(&["--bytes", "lots"]),
            "--bytes: not a size: \"lots\" (try 1MiB, 64KiB, 100000)"
        );
        assert_eq!(err(&["--bytes"]), "--bytes needs a value (see --help)");
        assert_eq!(
            err(&["--runs", "0"]),
            "--runs: expected a count of at least 1, got \"0\""
        );
        assert_eq!(
            err(&["bluk"]),
            "unknown argument \"bluk\" (figures: all, bulk, cps, conns, rtt, flood, insns, conc; see --help)"
        );
    }
}
