//! `synack serve --queues 2` on a multi-queue TUN device (`IFF_MULTI_QUEUE`), inside a network
//! namespace the test creates (and always deletes): 48 HTTP fetches of a random file on fresh
//! connections, 8 at a time, each compared byte for byte with the file; the interface must have
//! two queues, and the server's `--stats` must show that both queues' stacks accepted
//! connections and that their passive opens add up to the fetches (every connection was
//! served whole by the one stack whose queue the kernel put it on).
//!
//! Needs root, `/dev/net/tun`, `ip` and `curl`. Without them the test prints why and passes;
//! with `CI=true` it fails instead, so CI cannot skip silently.
//!
//! Network safety: the namespace has only `lo` and the TUN device; 198.18.0.0/24 only.

mod common;
use common::*;

use std::time::Duration;

const KERNEL: &str = "198.18.0.1";
const SYNACK: &str = "198.18.0.2";
const TUN: &str = "mq0";
const FETCHES: usize = 48;
const FILE_BYTES: u64 = 300 * 1024;

#[test]
fn two_queues_each_serve_their_share_of_the_connections() {
    if !may_run(
        "two_queues_each_serve_their_share_of_the_connections",
        &["ip", "curl"],
    ) {
        return;
    }
    let dir = Scratch::new("multiqueue");
    let file = dir.random_file("file.bin", FILE_BYTES, 11);
    let want = sha256_file(&file);
    let ns = Netns::new("mq");
    let server = {
        let mut cmd = ns.cmd(synack_bin());
        cmd.args(["serve", "--tun", TUN, "--addr", &format!("{SYNACK}/24")])
            .args(["--kernel-addr", &format!("{KERNEL}/24"), "--port", "80"])
            .args(["--queues", "2", "--stats"])
            .args(["--max-conns", &FETCHES.to_string(), "--http"])
            .arg(dir.root());
        Proc::spawn(cmd, "synack serve --queues 2")
    };
    let line = server.wait_line(false, "listening on", Duration::from_secs(10));
    assert!(line.contains("; 2 queues, one thread each)"), "{line}");
    let link = run(ns.cmd("ip").args(["-d", "link", "show", TUN]));
    assert!(link.contains("multi_queue numqueues 2 "), "{link}");

    // curl -Z: FETCHES transfers, 8 at a time, each on its own connection (no reuse).
    let mut curl = ns.cmd("curl");
    curl.args([
        "-sS",
        "--fail",
        "-Z",
        "--parallel-max",
        "8",
        "--max-time",
        "30",
    ])
    .args(["-H", "Connection: close"]);
    for i in 0..FETCHES {
        curl.arg("-o")
            .arg(dir.path(&format!("got-{i}")))
            .arg(format!("http://{SYNACK}/file.bin?{i}"));
    }
    let started = std::time::Instant::now();
    run(&mut curl);
    let took = started.elapsed();
    for i in 0..FETCHES {
        let got = dir.path(&format!("got-{i}"));
        assert_eq!(sha256_file(&got), want, "fetch {i}");
    }

    // --max-conns: the server exits by itself once the last connection closed.
    let (ok, out, err) = server.finish(Duration::from_secs(20));
    assert!(ok, "synack serve failed: {out}\n{err}");
    let per_queue: Vec<u64> = (0..2)
        .map(|k| {
            let prefix = format!("synack serve: queue {k}: ");
            out.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .and_then(|rest| rest.split(" passive opens").next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no line for queue {k} in {out}"))
        })
        .collect();
    let total: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("PassiveOpens"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no PassiveOpens in {out}"));
    eprintln!(
        "multi-queue TUN: {FETCHES} fetches of {FILE_BYTES} B in {took:.2?}, passive opens per \
         queue {per_queue:?}"
    );
    assert!(
        per_queue.iter().all(|&n| n > 0),
        "a queue served nothing: {per_queue:?}\n{out}"
    );
    assert_eq!(per_queue.iter().sum::<u64>(), total, "{out}");
    assert_eq!(total, FETCHES as u64, "{out}");
    // Every connection ended cleanly on the queue it began on: no resets from a stack that
    // did not know a connection.
    assert!(!out.contains("OutRsts"), "{out}");
    assert_eq!(err.matches(": closed; received").count(), FETCHES, "{err}");
}
