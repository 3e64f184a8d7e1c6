//! The TUN figures of issue 20 against the Linux kernel in the same run (a measurement, not a
//! check: `#[ignore]`, run by hand, as root, with the realtime lock):
//!
//! ```sh
//! flock /tmp/synack-realtime.lock \
//!   cargo test --release -p synack-cli --test tun_rates -- --ignored --nocapture
//! ```
//!
//! * SYN flood: `FLOODS` `hping3 --flood -S` (1 and 4 by default; `SYNACK_FLOODS=1,4`) from
//!   spoofed sources 198.19.0.k at a listener, and meanwhile 20 `curl` fetches of a 16 KiB file,
//!   each on a fresh connection with a 3 s limit. The listener is `synack serve --http` on a TUN
//!   device (1 queue, and `--queues 2`), then the kernel's own (`python3 -m http.server`) in a
//!   namespace joined to the flooding one by a veth pair. SYN-ACKs/s: the SYN-ACKs to spoofed
//!   sources the flooding namespace's kernel dropped (`Ip InAddrErrors`: it owns no such
//!   address and forwards nothing) over the fetches' window, which starts 1 s into the flood.
//! * Single-stream goodput over 4 s (after 1 s of warm-up), from the interface's byte counters:
//!   kernel→synack (`socat` from /dev/zero to `synack serve --discard`), synack→kernel (`synack
//!   serve --chargen` to `socat` into /dev/null) and kernel→kernel over the veth pair (`socat`
//!   both ends). Offloads on (synack's default; the veth's GSO/GRO are on by default too).
//!   Each synack round also gives its hand-offs: how many times per MB (10^6 bytes) the
//!   serve process's threads slept (the sum of their `voluntary_ctxt_switches`: an
//!   application thread waiting for the driver, the driver waiting in `poll(2)`), a figure
//!   that depends far less on the machine's load than the goodput does.
//!
//! Goodput alone, two builds side by side: `SYNACK_FLOODS=none` skips the SYN floods;
//! `SYNACK_SERVE_BINS=/path/before,/path/after` runs the goodput rounds with each of these
//! `synack` binaries in turn (default: this build's), and `SYNACK_GOODPUT_ROUNDS=3` repeats
//! the rounds (1 to 10; each round: every binary both ways, then kernel→kernel), so that
//! the builds alternate and a slow moment of the machine falls on all of them:
//!
//! ```sh
//! SYNACK_FLOODS=none SYNACK_GOODPUT_ROUNDS=3 SYNACK_SERVE_BINS=/tmp/before,/tmp/after \
//!   flock /tmp/synack-realtime.lock \
//!   cargo test --release -p synack-cli --test tun_rates -- --ignored --nocapture
//! ```
//!
//! Network safety: two namespaces the test creates and deletes, 198.18.0.0/24 and
//! 198.18.1.0/24, spoofed sources in 198.19.0.0/24; forwarding off and checked; every flood
//! under `timeout`, every fetch under `--max-time`, every process killed and reaped on drop.

mod common;
use common::*;

use std::time::{Duration, Instant};

const TOOLS: [&str; 6] = ["ip", "curl", "hping3", "socat", "python3", "timeout"];
const FETCHES: usize = 20;
/// The kernel's server side of the veth pair, and the flooding side.
const VETH_SERVER: &str = "198.18.1.2";
const VETH_CLIENT: &str = "198.18.1.1";
const TUN_SYNACK: &str = "198.18.0.2";

/// `Ip InAddrErrors` of a namespace.
fn in_addr_errors(ns: &Netns) -> u64 {
    ip_counters_in(ns)["InAddrErrors"]
}

/// An interface statistic (`rx_bytes`, `tx_dropped`, ...) in a namespace.
fn stat(ns: &Netns, dev: &str, name: &str) -> u64 {
    run(ns
        .cmd("cat")
        .arg(format!("/sys/class/net/{dev}/statistics/{name}")))
    .trim()
    .parse()
    .expect("a number")
}

fn set_no_forwarding(ns: &Netns) {
    run(ns
        .cmd("sh")
        .args(["-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"]));
}

/// What one flood round measured.
struct FloodFigures {
    synacks_per_s: f64,
    fetches_ok: usize,
    dropped_at_queue: Option<u64>,
}

/// Floods `target`:80 from `ns` with `floods` hping3 while fetching 20 times; `dev` is the
/// interface whose tx_dropped tells how many packets the kernel dropped before the server
/// (the TUN device; None for the veth).
fn flood_round(
    ns: &Netns,
    target: &str,
    floods: u8,
    page: &[u8],
    dir: &Scratch,
    dev: Option<&str>,
) -> FloodFigures {
    let hping = Stopping(
        (1..=floods)
            .map(|k| {
                let mut c = ns.cmd("timeout");
                c.args(["120", "hping3", "-q", "-S", "-p", "80", "--flood", "-a"])
                    .arg(format!("198.19.0.{k}"))
                    .arg(target);
                Proc::spawn(c, "hping3 --flood")
            })
            .collect(),
    );
    std::thread::sleep(Duration::from_secs(1));
    let (e0, d0, t0) = (
        in_addr_errors(ns),
        dev.map(|d| stat(ns, d, "tx_dropped")),
        Instant::now(),
    );
    let mut ok = 0;
    for i in 0..FETCHES {
        let out = dir.path(&format!("got-{i}"));
        let fetched = ns
            .cmd("curl")
            .args(["-s", "--max-time", "3", "-o"])
            .arg(&out)
            .arg(format!("http://{target}/page.bin"))
            .status()
            .is_ok_and(|s| s.success());
        if fetched && std::fs::read(&out).is_ok_and(|g| g == page) {
            ok += 1;
        }
        let _ = std::fs::remove_file(&out);
    }
    let secs = t0.elapsed().as_secs_f64();
    let synacks = in_addr_errors(ns) - e0;
    let dropped = dev.map(|d| stat(ns, d, "tx_dropped") - d0.unwrap_or(0));
    drop(hping);
    FloodFigures {
        synacks_per_s: synacks as f64 / secs,
        fetches_ok: ok,
        dropped_at_queue: dropped,
    }
}

/// Processes started under `timeout`, ended when dropped, also when the test panics: SIGTERM,
/// which `timeout` passes on to its command, and a kill only after a bounded wait. (A plain
/// kill would end `timeout` alone and leave its command, a flood say, running.)
struct Stopping(Vec<Proc>);

impl Drop for Stopping {
    fn drop(&mut self) {
        for p in &mut self.0 {
            p.terminate();
        }
    }
}

/// Bytes per second through a counter over 4 s, after 1 s of warm-up.
fn rate(read: impl Fn() -> u64) -> f64 {
    rate_and_sleeps(read, None).0
}

/// The times the threads of process `pid` slept (waited for something: a hand-off between
/// the application's thread and the driver, or the driver's poll) so far: the sum of their
/// `voluntary_ctxt_switches`.
fn sleeps(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .filter_map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .sum()
}

/// [`rate`], and how many times per MB (10^6 bytes) the threads of process `pid` slept over
/// the same 4 s (see [`sleeps`]).
fn rate_and_sleeps(read: impl Fn() -> u64, pid: Option<u32>) -> (f64, f64) {
    std::thread::sleep(Duration::from_secs(1));
    let (b0, s0, t0) = (read(), pid.map_or(0, sleeps), Instant::now());
    std::thread::sleep(Duration::from_secs(4));
    let (b1, s1) = (read(), pid.map_or(0, sleeps));
    let bytes = (b1 - b0) as f64;
    let per_mb = (s1 - s0) as f64 / (bytes / 1e6).max(1e-9);
    (bytes / t0.elapsed().as_secs_f64(), per_mb)
}

fn gbit(bytes_per_s: f64) -> String {
    format!("{:.2} Gbit/s", bytes_per_s * 8.0 / 1e9)
}

/// `synack serve` on a TUN device in `ns`, with extra arguments; waits for it to listen.
fn serve(ns: &Netns, port: &str, extra: &[&str]) -> Proc {
    serve_with(synack_bin(), ns, port, extra)
}

/// [`serve`] with the `synack` binary `bin`.
fn serve_with(bin: &str, ns: &Netns, port: &str, extra: &[&str]) -> Proc {
    let mut cmd = ns.cmd(bin);
    cmd.args(["serve", "--tun", "sk0", "--addr", "198.18.0.2/24"])
        .args(["--kernel-addr", "198.18.0.1/24", "--port", port])
        .args(extra);
    let p = Proc::spawn(cmd, "synack serve");
    p.wait_line(false, "listening on", Duration::from_secs(10));
    p
}

#[test]
#[ignore = "a measurement (a minute or more, as root): run with --ignored (see the module docs)"]
fn tun_figures_against_the_kernel() {
    if !may_run("tun_figures_against_the_kernel", &TOOLS) {
        return;
    }
    let floods: Vec<u8> = std::env::var("SYNACK_FLOODS")
        .unwrap_or_else(|_| "1,4".into())
        .split(',')
        .filter_map(|f| f.trim().parse().ok())
        .filter(|&f| (1..=8).contains(&f))
        .collect();
    let dir = Scratch::new("rates");
    let page = {
        let p = dir.random_file("page.bin", 16 * 1024, 3);
        std::fs::read(p).expect("page")
    };
    let uptime = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut table = vec![format!("load before: {}", uptime.trim())];

    // The kernel's listener: namespace `srv` behind a veth pair from namespace `cli`.
    let cli = Netns::new("rate-cli");
    let srv = Netns::new("rate-srv");
    set_no_forwarding(&cli);
    set_no_forwarding(&srv);
    run(cli.cmd("ip").args([
        "link", "add", "vc", "type", "veth", "peer", "name", "vs", "netns", &srv.name,
    ]));
    run(cli
        .cmd("ip")
        .args(["addr", "add", &format!("{VETH_CLIENT}/24"), "dev", "vc"]));
    run(srv
        .cmd("ip")
        .args(["addr", "add", &format!("{VETH_SERVER}/24"), "dev", "vs"]));
    run(cli.cmd("ip").args(["link", "set", "vc", "up"]));
    run(srv.cmd("ip").args(["link", "set", "vs", "up"]));
    // SYN-ACKs to the spoofed sources go to the flooding namespace, which drops them.
    run(srv
        .cmd("ip")
        .args(["route", "add", "198.19.0.0/24", "via", VETH_CLIENT]));

    // SYN floods.
    for &f in &floods {
        for queues in ["1", "2"] {
            let mut server = serve(
                &cli,
                "80",
                &[
                    "--queues",
                    queues,
                    "--http",
                    &dir.root().display().to_string(),
                ],
            );
            let r = flood_round(&cli, TUN_SYNACK, f, &page, &dir, Some("sk0"));
            server.terminate();
            table.push(format!(
                "SYN flood x{f}, synack over TUN, {queues} queue(s): {:.0} SYN-ACKs/s, {}/{FETCHES} \
                 fetches, {} packets dropped at the TUN queue",
                r.synacks_per_s,
                r.fetches_ok,
                r.dropped_at_queue.unwrap_or(0)
            ));
        }
        let mut web = {
            let mut c = srv.cmd("python3");
            c.args([
                "-m",
                "http.server",
                "80",
                "--bind",
                VETH_SERVER,
                "--directory",
            ])
            .arg(dir.root());
            Proc::spawn(c, "python3 -m http.server")
        };
        // Bounded wait for the listener.
        let up = Instant::now();
        while up.elapsed() < Duration::from_secs(10)
            && !run(srv.cmd("ss").args(["-ltn"])).contains(&format!("{VETH_SERVER}:80"))
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let r = flood_round(&cli, VETH_SERVER, f, &page, &dir, None);
        web.terminate();
        table.push(format!(
            "SYN flood x{f}, kernel over veth: {:.0} SYN-ACKs/s, {}/{FETCHES} fetches",
            r.synacks_per_s, r.fetches_ok
        ));
    }

    // Goodput, one stream each way.
    let socat = |ns: &Netns, args: &[&str]| {
        let mut c = ns.cmd("timeout");
        c.args(["8", "socat", "-u", "-b", "262144"]).args(args);
        Proc::spawn(c, "socat")
    };
    let bins: Vec<String> = std::env::var("SYNACK_SERVE_BINS")
        .ok()
        .map(|b| {
            b.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .filter(|b: &Vec<String>| !b.is_empty())
        .unwrap_or_else(|| vec![synack_bin().to_string()]);
    let rounds: usize = std::env::var("SYNACK_GOODPUT_ROUNDS")
        .ok()
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(1)
        .clamp(1, 10);
    for round in 1..=rounds {
        for bin in &bins {
            let label = if bins.len() > 1 {
                format!(" [{bin}]")
            } else {
                String::new()
            };
            let to_synack = format!("TCP:{TUN_SYNACK}:9");
            let from_synack = format!("TCP:{TUN_SYNACK}:19");
            // (direction, serve's port and mode, socat's addresses, the TUN counter)
            let ways = [
                (
                    "kernel→synack",
                    "9",
                    "--discard",
                    ["/dev/zero", &to_synack],
                    "tx_bytes",
                ),
                (
                    "synack→kernel",
                    "19",
                    "--chargen",
                    [&from_synack, "/dev/null"],
                    "rx_bytes",
                ),
            ];
            for (way, port, mode, addrs, counter) in ways {
                let mut server = serve_with(bin, &cli, port, &[mode]);
                let s = Stopping(vec![socat(&cli, &addrs)]);
                let (r, per_mb) =
                    rate_and_sleeps(|| stat(&cli, "sk0", counter), Some(server.pid()));
                drop(s);
                server.terminate();
                table.push(format!(
                    "round {round}: goodput {way} over TUN{label}: {} ({per_mb:.1} thread \
                     sleeps per MB)",
                    gbit(r)
                ));
            }
        }
        let sink = Stopping(vec![socat(&srv, &["TCP-LISTEN:9,reuseaddr", "/dev/null"])]);
        std::thread::sleep(Duration::from_millis(300));
        let s = Stopping(vec![socat(
            &cli,
            &["/dev/zero", &format!("TCP:{VETH_SERVER}:9")],
        )]);
        let r = rate(|| stat(&srv, "vs", "rx_bytes"));
        drop((s, sink));
        table.push(format!(
            "round {round}: goodput kernel→kernel over veth: {}",
            gbit(r)
        ));
    }
    let uptime = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    table.push(format!("load after: {}", uptime.trim()));
    for l in &table {
        eprintln!("{l}");
    }
}
