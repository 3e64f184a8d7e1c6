//! `synack demo` and `synack sim` run as a user runs them.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn synack(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_synack"))
        .args(args)
        .output()
        .expect("run synack");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs synack like [`synack`], but kills it and fails the test if it is still running after
/// `limit` of wall time. Returns (exit code, stdout, stderr, wall time).
fn synack_within(args: &[&str], limit: Duration) -> (Option<i32>, String, String, Duration) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_synack"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run synack");
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = pipe(child.stdout.take().map(|p| Box::new(p) as _));
    let err = pipe(child.stderr.take().map(|p| Box::new(p) as _));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for synack") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "synack {args:?} still running after {limit:?}; stdout so far:\n{}",
                out.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = start.elapsed();
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    (status.code(), out, err, wall)
}

/// Drops what depends on the wall clock (the time column, TSval/TSecr) and the ephemeral port.
fn normalise(line: &str, port: &str) -> String {
    let mut words: Vec<String> = line.split(' ').skip(1).map(|w| w.to_string()).collect();
    for w in words.iter_mut() {
        if w.starts_with("TSval=") {
            *w = "TSval=_".into();
        } else if w.starts_with("TSecr=") {
            *w = "TSecr=_".into();
        } else if w == port {
            *w = "PORT".into();
        }
    }
    words.join(" ")
}

fn tmp(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("synack-test-{}-{name}", std::process::id()))
        .to_string_lossy()
        .into_owned()
}

#[test]
fn demo_handshake_lines_hash_and_close() {
    let pcap = tmp("demo.pcap");
    let (ok, out, err) = synack(&["demo", "--bytes", "50000", "--seed", "1", "--pcap", &pcap]);
    assert!(ok, "demo failed: {err}\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    let syn = lines
        .iter()
        .find(|l| l.contains("[SYN]"))
        .expect("a SYN line");
    let port = syn.split(' ').nth(4).expect("client port").to_string();
    let trace: Vec<String> = lines[1..]
        .iter()
        .take(3)
        .map(|l| normalise(l, &port))
        .collect();
    assert_eq!(
        trace,
        [
            // The runtime's driver runs connect() and sends the SYN in one turn: the state
            // change goes on the SYN's line.
            "client \u{2192} server PORT \u{2192} 80 [SYN] Seq=0 Win=65535 Len=0 MSS=1460 SACK_PERM TSval=_ TSecr=_ WS=128   CLOSED \u{2192} SYN-SENT",
            "server \u{2192} client 80 \u{2192} PORT [SYN, ACK] Seq=0 Ack=1 Win=65535 Len=0 MSS=1460 SACK_PERM TSval=_ TSecr=_ WS=128   LISTEN \u{2192} SYN-RECEIVED",
            "client \u{2192} server PORT \u{2192} 80 [ACK] Seq=1 Ack=1 Win=130048 Len=0 TSval=_ TSecr=_   SYN-SENT \u{2192} ESTABLISHED",
        ],
        "\n{out}"
    );
    // The close, from both sides, in the RFC's states.
    for needle in [
        "ESTABLISHED \u{2192} FIN-WAIT-1",
        "ESTABLISHED \u{2192} CLOSE-WAIT",
        "CLOSE-WAIT \u{2192} LAST-ACK",
        "FIN-WAIT-2 \u{2192} TIME-WAIT",
        "LAST-ACK \u{2192} CLOSED",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
    assert!(
        out.lines().filter(|l| l.contains("[FIN")).count() >= 2,
        "{out}"
    );
    assert!(out.contains("\u{2713} match"), "{out}");
    assert!(out.contains("transfer: 48.8 KiB"), "{out}");
    tshark_checks(&pcap);
    let _ = std::fs::remove_file(&pcap);
}

#[test]
fn demo_under_loss_shows_retransmissions_and_still_matches() {
    let (ok, out, err) = synack(&[
        "demo",
        "--bytes",
        "400KiB",
        "--loss",
        "5%",
        "--seed",
        "3",
        "--no-pcap",
        "--rtt",
        "10ms",
    ]);
    assert!(ok, "demo failed: {err}\n{out}");
    assert!(
        out.contains("NOTE retransmit"),
        "retransmissions must appear in the trace:\n{out}"
    );
    assert!(out.contains("\u{2713} match"), "{out}");
    let retrans: u64 = out
        .lines()
        .find(|l| l.starts_with("transfer:"))
        .and_then(|l| {
            l.split(", ")
                .find(|p| p.ends_with("retransmissions (client"))
                .or_else(|| l.split(", ").nth(2))
        })
        .and_then(|p| p.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(retrans > 0, "{out}");
}

/// A link that loses everything: the client's SYNs go unanswered, and the demo says so and
/// exits within its connect timeout instead of leaving the server blocked in accept().
#[test]
fn demo_with_total_loss_reports_the_connect_error_and_exits() {
    let (code, out, err, wall) = synack_within(
        &["demo", "--loss", "100%", "--no-pcap", "--bytes", "20KiB"],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(2), "{err}\n{out}");
    assert_eq!(
        err,
        "error: the client's connect to 198.18.0.2:80 timed out after 10s: no SYN-ACK came back \
         (the link loses every packet: --loss 100%); --connect-timeout sets the limit (Linux \
         would retry for about 2 minutes)\n"
    );
    assert!(wall < Duration::from_secs(20), "took {wall:?}");
    // The trace shows the SYN and its retransmissions at 1, 2, 3, 4, 5 s (Linux's linear SYN
    // timeouts) and 7 s, then the close.
    let syns = out.lines().filter(|l| l.contains("[SYN] Seq=0")).count();
    assert_eq!(syns, 7, "{out}");
    assert!(
        out.lines().last().is_some_and(
            |l| l.ends_with("client  SYN-SENT \u{2192} CLOSED (close before established)")
        ),
        "{out}"
    );
    assert!(!out.contains("sha256"), "{out}");

    let (code, _, err, wall) = synack_within(
        &[
            "demo",
            "--loss",
            "100%",
            "--no-pcap",
            "--connect-timeout",
            "1500ms",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("timed out after 1.5s"), "{err}");
    assert!(wall < Duration::from_secs(10), "took {wall:?}");
}

/// A transfer of more than a second with standard error redirected (not a terminal): no
/// progress bar, so no carriage returns or escape codes in the log; nothing at all there.
#[test]
fn demo_draws_no_progress_bar_into_a_redirected_log() {
    let (code, out, err, wall) = synack_within(
        &[
            "demo",
            "--bytes",
            "3MiB",
            "--rtt",
            "250ms",
            "--no-pcap",
            "--trace",
            "none",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, Some(0), "{err}\n{out}");
    assert!(
        wall > Duration::from_millis(1500),
        "too quick to show a bar: {wall:?}"
    );
    assert_eq!(err, "", "standard error must stay empty");
    assert!(!out.contains('\r') && !out.contains('\x1b'), "{out:?}");
    assert!(out.contains("\u{2713} match"), "{out}");
}

/// A retransmission note names the segment as its line shows it: the same relative `Seq=` and
/// `Len=`, at the same time, from the same host; and time never goes backwards in the trace,
/// even with no link delay (socket calls of both hosts then share instants).
#[test]
fn notes_and_segments_tell_one_story() {
    for (rtt, loss) in [("10ms", "5%"), ("0", "3%")] {
        let (ok, out, err) = synack(&[
            "demo",
            "--bytes",
            "200KiB",
            "--loss",
            loss,
            "--seed",
            "3",
            "--rtt",
            rtt,
            "--no-pcap",
            "--trace",
            "all",
        ]);
        assert!(ok, "{err}\n{out}");
        let lines: Vec<&str> = out.lines().collect();
        let mut notes = 0;
        for note in lines.iter().filter(|l| l.contains(" NOTE retransmit seq=")) {
            let f: Vec<&str> = note.split(' ').collect();
            let (time, node) = (f[0], f[1]);
            let seq = f[4].strip_prefix("seq=").expect("seq=");
            let len = f[5].strip_prefix("len=").expect("len=");
            let segment = lines.iter().any(|l| {
                l.starts_with(&format!("{time} {node} \u{2192} "))
                    && l.contains(&format!(" Seq={seq} "))
                    && l.contains(&format!(" Len={len}"))
            });
            assert!(segment, "no segment line for {note:?}:\n{out}");
            notes += 1;
        }
        assert!(notes > 0, "no retransmissions at {loss} loss:\n{out}");
        let times: Vec<f64> = lines
            .iter()
            .filter_map(|l| l.split(' ').next()?.parse().ok())
            .collect();
        assert!(times.len() > 100, "{out}");
        for w in times.windows(2) {
            assert!(
                w[0] <= w[1],
                "time went back from {} to {}:\n{out}",
                w[0],
                w[1]
            );
        }
    }
}

/// `--syncookies 2`: the server keeps no state for the SYN; the trace notes the cookie going
/// out and coming back, then the usual state changes, and the transfer still matches.
#[test]
fn demo_with_syn_cookies_notes_them() {
    let (ok, out, err) = synack(&[
        "demo",
        "--bytes",
        "20KiB",
        "--syncookies",
        "2",
        "--no-pcap",
        "--stats",
    ]);
    assert!(ok, "demo failed: {err}\n{out}");
    let syn = out.lines().find(|l| l.contains("[SYN]")).expect("a SYN");
    let port = syn.split(' ').nth(4).expect("client port").to_string();
    let trace: Vec<String> = out
        .lines()
        .skip(1)
        .map(|l| normalise(l, &port).replace(&format!(":{port}"), ":PORT"))
        .collect();
    // In this order (the client's own lines may come in between: its close races the server).
    let expect = [
        "client \u{2192} server PORT \u{2192} 80 [SYN] Seq=0 Win=65535 Len=0 MSS=1460 SACK_PERM TSval=_ TSecr=_ WS=128   CLOSED \u{2192} SYN-SENT",
        "server NOTE SYN cookie sent (syncookies always) to 198.18.0.1:PORT",
        "server \u{2192} client 80 \u{2192} PORT [SYN, ACK] Seq=0 Ack=1 Win=65535 Len=0 MSS=1460 SACK_PERM TSval=_ TSecr=_ WS=128",
        "client \u{2192} server PORT \u{2192} 80 [ACK] Seq=1 Ack=1 Win=130048 Len=0 TSval=_ TSecr=_   SYN-SENT \u{2192} ESTABLISHED",
        "server NOTE SYN cookie accepted from 198.18.0.1:PORT: MSS=1460 WS=128 SACK_PERM TS",
        "server  LISTEN \u{2192} SYN-RECEIVED (SYN cookie)",
        "server  SYN-RECEIVED \u{2192} ESTABLISHED (ACK of SYN-ACK)",
    ];
    let at: Vec<usize> = expect
        .iter()
        .map(|e| {
            trace
                .iter()
                .position(|l| l == e)
                .unwrap_or_else(|| panic!("missing {e:?} in\n{out}"))
        })
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "out of order: {at:?}\n{out}"
    );
    assert!(out.contains("\u{2713} match"), "{out}");
    assert!(out.contains("SyncookiesSent"), "{out}");
    assert!(out.contains("SyncookiesRecv"), "{out}");
    let (ok, _, err) = synack(&["demo", "--syncookies", "3"]);
    assert!(!ok);
    assert!(err.contains("expected 0, 1 or 2"), "{err}");
}

#[test]
fn sim_is_deterministic_and_verifies() {
    let args = [
        "sim",
        "--bytes",
        "2MiB",
        "--rtt",
        "30ms",
        "--loss",
        "2%",
        "--reorder",
        "3%",
        "--seed",
        "9",
    ];
    let (ok1, a, e1) = synack(&args);
    let (ok2, b, _) = synack(&args);
    assert!(ok1 && ok2, "{e1}");
    let strip = |s: &str| {
        s.lines()
            .map(|l| l.split("virtual (").next().unwrap_or(l).to_string())
            .collect::<Vec<_>>()
    };
    // Everything but the wall-clock figure is identical run to run.
    assert_eq!(strip(&a), strip(&b));
    assert!(a.contains("verified: every byte arrived once, in order"));
    assert!(a.contains("RetransSegs"), "{a}");
}

/// `sim --trace LEVEL --pcap FILE`: the same vocabulary as the demo; the capture holds the
/// client's every packet (both directions, as on its interface), readable by tshark.
#[test]
fn sim_traces_at_each_level_and_writes_a_pcap() {
    let pcap = tmp("sim.pcap");
    let run = |level: &str| {
        let (ok, out, err) = synack(&[
            "sim", "--bytes", "100KiB", "--seed", "4", "--trace", level, "--pcap", &pcap,
        ]);
        assert!(ok, "{err}");
        out
    };
    let all = run("all");
    let handshake = run("handshake");
    let none = run("none");
    let segments = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.contains(" \u{2192} ") && l.contains(" Seq="))
            .map(str::to_string)
            .collect()
    };
    let opening_or_closing = |l: &String| ["[SYN", "[FIN", "[RST"].iter().any(|f| l.contains(f));
    let (all, handshake) = (segments(&all), segments(&handshake));
    assert!(all.len() > 70, "{all:#?}");
    // The handshake level keeps every SYN and FIN segment of the full trace, and besides them
    // only pure ACKs (of the SYN-ACK or of a FIN).
    let syn_fin: Vec<&String> = all.iter().filter(|l| opening_or_closing(l)).collect();
    assert!(syn_fin.len() >= 3, "{all:#?}");
    assert!(
        syn_fin.iter().all(|l| handshake.contains(l)),
        "{handshake:#?}"
    );
    for l in &handshake {
        assert!(all.contains(l), "{l}");
        assert!(
            opening_or_closing(l) || l.contains("[ACK] ") && l.contains(" Len=0 "),
            "{l}"
        );
    }
    assert!(handshake.len() < all.len() / 4, "{handshake:#?}");
    assert!(segments(&none).is_empty(), "{none}");
    let written: u64 = none
        .lines()
        .find_map(|l| l.strip_prefix(&format!("wrote {pcap} (")))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `wrote` line:\n{none}"));
    let sent: u64 = none
        .lines()
        .find_map(|l| l.strip_prefix("link: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no link line:\n{none}"));
    // No loss: the client's interface saw every packet of both hosts.
    assert_eq!(written, sent, "{none}");
    let packets = synack::trace::read_pcap(&std::fs::read(&pcap).unwrap()).unwrap();
    assert_eq!(packets.len() as u64, written);
    tshark_checks(&pcap);
    let _ = std::fs::remove_file(&pcap);
    let (ok, _, err) = synack(&["sim", "--trace"]);
    assert!(!ok);
    assert!(
        err.contains("[possible values: none, handshake, all]"),
        "{err}"
    );
}

#[test]
fn sim_shows_per_connection_stats_and_samples() {
    let (ok, out, err) = synack(&[
        "sim",
        "--bytes",
        "1MiB",
        "--loss",
        "1%",
        "--samples",
        "50ms",
        "--seed",
        "3",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("client (sender) every 50.0 ms:"), "{out}");
    let header = out
        .lines()
        .find(|l| l.trim_start().starts_with("time"))
        .unwrap_or_else(|| panic!("no samples header:\n{out}"));
    for col in [
        "cwnd", "ssthresh", "srtt", "rttvar", "rto", "pipe", "sacked", "lost",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let rows = out
        .lines()
        .filter(|l| l.trim_start().starts_with("0."))
        .count();
    assert!(rows >= 2, "{out}");
    for who in [
        "client (sender, at the end):",
        "server (receiver, last byte read):",
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(who))
            .unwrap_or_else(|| panic!("no line for {who}:\n{out}"));
        for field in [
            "cwnd ",
            "ssthresh ",
            "srtt ",
            "rttvar ",
            "rto ",
            "pipe ",
            "sacked ",
            "lost ",
            "retrans ",
        ] {
            assert!(line.contains(field), "{field}: {line}");
        }
    }
}

#[test]
fn sim_goodput_table_quick_is_markdown() {
    let (ok, out, err) = synack(&["sim", "--goodput-table", "--quick"]);
    assert!(ok, "{err}");
    assert!(out.contains("10 Mbit/s bottleneck"), "{out}");
    assert!(
        out.contains("| RTT | loss | reorder | CC | SACK | goodput Mbit/s |"),
        "{out}"
    );
    let rows = out
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(" ms |"))
        .count();
    // 3 RTTs x 4 losses x 2 reorderings x algorithms x SACK on/off.
    assert_eq!(rows % 48, 0, "{out}");
    assert!(rows >= 48, "{out}");
    assert!(err.contains("runs in"), "{err}");
}

#[test]
fn bad_flags_are_clear_errors() {
    let (ok, _, err) = synack(&["demo", "--loss", "150%"]);
    assert!(!ok);
    assert!(err.contains("probability out of range"), "{err}");
    let (ok, _, err) = synack(&["sim", "--bytes", "lots"]);
    assert!(!ok);
    assert!(err.contains("not a size"), "{err}");
    let (ok, _, err) = synack(&["sim", "--quick"]);
    assert!(!ok);
    assert!(err.contains("--goodput-table"), "{err}");
}

/// The capture must read cleanly in tshark: no malformed packets, no bad checksums.
fn tshark_checks(pcap: &str) {
    let has_tshark = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_tshark {
        synack::testing::skip(
            &format!("the tshark check of {pcap}"),
            "tshark is not installed (.ci/run installs it)",
        );
        return;
    }
    let out = Command::new("tshark")
        .args([
            "-r",
            pcap,
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
            // The demo uploads random bytes to port 80: read them as data, or tshark's HTTP
            // dissector calls a segment that happens to start like a request line malformed.
            "-d",
            "tcp.port==80,data",
        ])
        .args([
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "ip.checksum.status",
            "-e",
            "tcp.checksum.status",
            "-e",
            "_ws.malformed",
        ])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut frames = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        frames += 1;
        // Wireshark's checksum status: 1 = Good (0 = Bad, 2 = Unverified).
        assert_eq!(f.get(1), Some(&"1"), "IP checksum not good: {line}");
        assert_eq!(f.get(2), Some(&"1"), "TCP checksum not good: {line}");
        assert!(f.get(3).is_none_or(|m| m.is_empty()), "malformed: {line}");
    }
    assert!(frames > 40, "only {frames} frames in the capture");
}
