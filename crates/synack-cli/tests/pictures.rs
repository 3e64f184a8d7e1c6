//! The pictures the commands draw: `--svg` ladders, `synack plot`, `synack report`. Each SVG
//! must be well-formed XML carrying the labels a reader looks for.

mod common;

use std::process::Command;

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

fn tmp(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("synack-test-{}-{name}", std::process::id()))
        .to_string_lossy()
        .into_owned()
}

/// Every `<text>` of an SVG, its tspans joined by newlines; panics if it is not XML.
fn svg_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            n.descendants()
                .filter(|c| c.is_text())
                .filter_map(|c| c.text())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

fn assert_has(texts: &[String], wanted: &[&str]) {
    for w in wanted {
        assert!(
            texts.iter().any(|t| t.contains(w)),
            "no text {w:?} in {texts:#?}"
        );
    }
}

/// Arrows drawn (the legend's samples not counted).
fn arrows(svg: &str) -> usize {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.attribute("class").is_some_and(|c| c.starts_with("seg ")))
        .filter(|n| {
            n.ancestors()
                .all(|a| a.attribute("class") != Some("legend"))
        })
        .count()
}

#[test]
fn demo_svg_draws_the_handshake_the_fold_and_the_close() {
    let svg_path = tmp("demo.svg");
    let (ok, out, err) = synack(&[
        "demo",
        "--bytes",
        "300KiB",
        "--no-pcap",
        "--trace",
        "none",
        "--svg",
        &svg_path,
    ]);
    assert!(ok, "demo failed: {err}\n{out}");
    assert!(
        out.contains(&format!("wrote {svg_path} (ladder diagram")),
        "{out}"
    );
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let _ = std::fs::remove_file(&svg_path);
    let t = svg_texts(&svg);
    assert_has(
        &t,
        &[
            "synack demo: 300.0 KiB over a 20ms round trip",
            "client",
            "198.18.0.2:80",
            "[SYN] Seq=0",
            "Win=65535 Len=0 MSS=1460 SACK_PERM",
            "[SYN, ACK] Seq=0 Ack=1",
            "[ACK] Seq=1 Ack=1",
            "Ack=307202",
            "CLOSED",
            "LISTEN",
            "SYN-SENT",
            "SYN-RECEIVED",
            "ESTABLISHED",
            "FIN-WAIT-1",
            "FIN-WAIT-2",
            "TIME-WAIT",
            "CLOSE-WAIT",
            "LAST-ACK",
            "data segments \u{2192}",
        ],
    );
    // 7 arrows before the fold, 6 after; nothing lost on a clean link.
    assert_eq!(arrows(&svg), 13);
    assert!(!svg.contains(" lost\""));
}

#[test]
fn sim_svg_marks_losses_and_samples_out_writes_the_csv() {
    let svg_path = tmp("sim.svg");
    let csv_path = tmp("sim.csv");
    let (ok, out, err) = synack(&[
        "sim",
        "--bytes",
        "1MiB",
        "--rtt",
        "50ms",
        "--loss",
        "2%",
        "--seed",
        "3",
        "--svg",
        &svg_path,
        "--samples",
        "50ms",
        "--samples-out",
        &csv_path,
    ]);
    assert!(ok, "sim failed: {err}\n{out}");
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let _ = (
        std::fs::remove_file(&svg_path),
        std::fs::remove_file(&csv_path),
    );
    let t = svg_texts(&svg);
    assert_has(
        &t,
        &[
            "synack sim: 1.0 MiB over a 50ms round trip, 2% loss",
            "[SYN] Seq=0",
            "SYN-SENT",
            "FIN-WAIT-1",
            "lost",
            "retransmission",
            "retransmitted",
        ],
    );
    // Both taps: arrows with a lost segment (drawn with the cross) are in the SVG.
    assert!(svg.contains(" lost\""), "no lost arrow");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "time_s,cwnd,ssthresh,srtt_ms,rttvar_ms,rto_ms,pipe,in_flight,lost,retransmits,ca_state,mss"
        )
    );
    let rows: Vec<&str> = lines.collect();
    let n = out
        .lines()
        .find_map(|l| l.strip_prefix(&format!("wrote {csv_path} (")))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .expect("the sim says how many samples it wrote");
    assert_eq!(rows.len(), n);
    assert!(rows.len() > 10);
    assert!(rows[1].starts_with("0.050000,"), "{}", rows[1]);
    // Loss: the last samples have a finite ssthresh.
    assert!(!rows.last().unwrap().split(',').nth(2).unwrap().is_empty());
}

#[test]
fn lab_svg_draws_the_kernel_lane() {
    if !common::may_run("lab_svg_draws_the_kernel_lane", &["ip", "curl"]) {
        return;
    }
    let svg_path = tmp("lab.svg");
    let out = Command::new("flock")
        .args(["/tmp/synack-realtime.lock", env!("CARGO_BIN_EXE_synack")])
        .args(["lab", "--bytes", "100KiB", "--svg", &svg_path])
        .output()
        .expect("run synack lab");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "lab failed: {err}");
    assert!(
        err.contains(&format!("wrote {svg_path} (ladder diagram")),
        "{err}"
    );
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let _ = std::fs::remove_file(&svg_path);
    let t = svg_texts(&svg);
    assert_has(
        &t,
        &[
            "kernel",
            "synack",
            "198.18.0.2:80",
            "[SYN] Seq=0",
            "[SYN, ACK] Seq=0 Ack=1",
            "LISTEN",
            "SYN-RECEIVED",
            "ESTABLISHED",
            "CLOSED",
            "One-way delays estimated from the handshake",
        ],
    );
}
