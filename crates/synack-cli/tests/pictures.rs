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
    let out = Command::new(env!("CARGO_BIN_EXE_synack"))
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

#[test]
fn plot_and_report_draw_a_capture_and_samples() {
    let pcap = tmp("plot.pcap");
    let csv = tmp("plot.csv");
    let (ok, _, err) = synack(&[
        "demo", "--bytes", "100KiB", "--trace", "none", "--pcap", &pcap,
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = synack(&[
        "sim",
        "--bytes",
        "1MiB",
        "--loss",
        "1%",
        "--samples",
        "20ms",
        "--samples-out",
        &csv,
    ]);
    assert!(ok, "{err}");
    let cases: [(&str, &str, &[&str]); 6] = [
        (
            &pcap,
            "time-seq",
            &[
                "time\u{2013}sequence",
                "data segment",
                "cumulative ACK",
                "ACK + receive window",
            ],
        ),
        (
            &pcap,
            "ladder",
            &[
                "[SYN] Seq=0",
                "[SYN, ACK] Seq=0 Ack=1",
                "One-way delays estimated from the handshake",
            ],
        ),
        (
            &pcap,
            "rtt",
            &[
                "RTT at the capture point (ms)",
                "RTT sample (data \u{2192} its ACK)",
            ],
        ),
        (&pcap, "cwnd", &["bytes in flight at the capture point"]),
        (&csv, "cwnd", &["cwnd", "ssthresh", "pipe (RFC 6675)"]),
        (&csv, "rtt", &["SRTT", "RTTVAR", "RTO"]),
    ];
    for (input, kind, wanted) in cases {
        let out_svg = tmp(&format!("plot-{kind}.svg"));
        let (ok, out, err) = synack(&["plot", input, "--kind", kind, "-o", &out_svg]);
        assert!(ok, "plot --kind {kind} {input}: {err}");
        assert!(out.starts_with(&format!("wrote {out_svg} (")), "{out}");
        let svg = std::fs::read_to_string(&out_svg).unwrap();
        let _ = std::fs::remove_file(&out_svg);
        let t: Vec<String> = svg_texts(&svg)
            .iter()
            .map(|s| s.trim().to_string())
            .collect();
        assert_has(&t, wanted);
    }
    // Wrong kind for the input, and a conversation that is not there: one clear line each.
    let (ok, _, err) = synack(&["plot", &csv, "--kind", "ladder", "-o", &tmp("x.svg")]);
    assert!(!ok);
    assert!(
        err.contains("holds samples (cwnd, RTT), not packets"),
        "{err}"
    );
    let (ok, _, err) = synack(&["plot", &pcap, "--flow", "2", "-o", &tmp("x.svg")]);
    assert!(!ok);
    assert!(
        err.contains("no conversation 2; there are:\n  --flow 0: 198.18.0.1:"),
        "{err}"
    );

    // The report of the capture, with the samples: well-formed, with every part.
    let html_path = tmp("report.html");
    let (ok, out, err) = synack(&["report", &pcap, "-o", &html_path, "--samples", &csv]);
    assert!(ok, "{err}");
    assert!(out.contains("HTML report"), "{out}");
    let html = std::fs::read_to_string(&html_path).unwrap();
    for f in [&pcap, &csv, &html_path] {
        let _ = std::fs::remove_file(f);
    }
    for want in [
        "<!DOCTYPE html>",
        "<table class=\"summary\">",
        "<figure id=\"ladder\">",
        "<figure id=\"time-seq\">",
        "<figure id=\"cwnd\">",
        "<figure id=\"rtt-estimates\">",
        "<table id=\"trace-table\">",
        "data-flags=\"SYN\" data-dir=\"c2s\"",
    ] {
        assert!(html.contains(want), "no {want:?} in the report");
    }
    // Self-contained: no external script, stylesheet or image.
    for fetch in ["src=\"http", "href=\"http", "<link", "@import", "url(http"] {
        assert!(
            !html.contains(fetch),
            "the report fetches something: {fetch}"
        );
    }
    // Every inline SVG is well-formed on its own.
    for part in html.split("<svg").skip(1) {
        let svg = format!("<svg{}", &part[..part.find("</svg>").unwrap() + 6]);
        svg_texts(&svg);
    }
}

#[test]
fn plot_reads_pcapng_from_tshark() {
    if !common::have_tool("editcap") {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("plot_reads_pcapng_from_tshark: editcap (tshark) missing under CI=true");
        }
        eprintln!("skipping plot_reads_pcapng_from_tshark: editcap (tshark) is not installed");
        return;
    }
    let pcap = tmp("ng.pcap");
    let ng = tmp("ng.pcapng");
    let (ok, _, err) = synack(&[
        "demo", "--bytes", "20KiB", "--trace", "none", "--pcap", &pcap,
    ]);
    assert!(ok, "{err}");
    let st = Command::new("editcap")
        .args(["-F", "pcapng", &pcap, &ng])
        .status()
        .unwrap();
    assert!(st.success());
    let (a, b) = (tmp("a.svg"), tmp("b.svg"));
    assert!(synack(&["plot", &pcap, "--kind", "ladder", "-o", &a]).0);
    assert!(synack(&["plot", &ng, "--kind", "ladder", "-o", &b]).0);
    let (sa, sb) = (
        std::fs::read_to_string(&a).unwrap(),
        std::fs::read_to_string(&b).unwrap(),
    );
    for f in [&pcap, &ng, &a, &b] {
        let _ = std::fs::remove_file(f);
    }
    // Same packets, same times: the same picture but for the title (the file name).
    let strip = |s: &str| s.replace("ng.pcapng", "F").replace("ng.pcap", "F");
    assert_eq!(strip(&sa), strip(&sb));
}
