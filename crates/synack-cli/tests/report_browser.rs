//! `synack demo --report` opened as a person opens it: in a real browser (headless Chromium).
//! The DOM after the page's script ran must hold the summary, the pictures and the filtered
//! trace table; a screenshot must have the asked size and not be blank.
//!
//! Skips (saying why) without `chromium`; fails instead under `CI=true`, where `.ci/run`
//! installs it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn browser() -> Option<&'static str> {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| common::have_tool(b))
}

fn chromium(bin: &str, profile: &Path, extra: &[String], url: &str) -> std::process::Output {
    Command::new("timeout")
        .arg("120")
        .arg(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium")
}

#[test]
fn report_renders_in_a_real_browser() {
    let Some(bin) = browser() else {
        let why = "chromium is not installed (apt-get install chromium)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("report_renders_in_a_real_browser: cannot run under CI=true: {why}");
        }
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipping report_renders_in_a_real_browser: {why}"
        );
        return;
    };
    let dir: PathBuf = std::env::temp_dir().join(format!("synack-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("demo.html");
    let out = Command::new(env!("CARGO_BIN_EXE_synack"))
        .args([
            "demo",
            "--bytes",
            "200KiB",
            "--no-pcap",
            "--trace",
            "none",
            "--report",
        ])
        .arg(&html)
        .output()
        .expect("run synack demo");
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = format!("file://{}#flags=SYN,FIN&dir=c2s", html.display());

    // The DOM after the script ran, filtered from the address: the client's SYN and FIN only.
    let dom = chromium(bin, &dir.join("profile-dom"), &["--dump-dom".into()], &url);
    let text = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    for want in [
        "data-ready=\"yes\"",
        "<table class=\"summary\">",
        "<figure id=\"ladder\">",
        "<figure id=\"time-seq\">",
        "<figure id=\"rtt\">",
        "<figure id=\"cwnd\">",
        "<section id=\"counters\">",
        "SYN-SENT",
        "[SYN] Seq=0",
        "time\u{2013}sequence",
        "<caption>server</caption>",
    ] {
        assert!(text.contains(want), "no {want:?} in the DOM");
    }
    let rows: Vec<&str> = text.split("<tr data-flags=").skip(1).collect();
    assert!(rows.len() > 100, "{} trace rows", rows.len());
    let visible: Vec<&&str> = rows
        .iter()
        .filter(|r| !r.split('>').next().unwrap_or("").contains("hidden"))
        .collect();
    assert_eq!(
        visible.len(),
        2,
        "the filter shows the client's SYN and FIN"
    );
    assert!(visible[0].contains("[SYN] Seq=0"));
    assert!(visible[1].contains("FIN"));
    assert!(text.contains(&format!("2 of {} segments shown", rows.len())));

    // A screenshot: the asked size, and a picture rather than a blank page.
    let png = dir.join("shot.png");
    let (w, h) = (1200u32, 1500u32);
    let shot = chromium(
        bin,
        &dir.join("profile-shot"),
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={w},{h}"),
        ],
        &format!("file://{}", html.display()),
    );
    assert!(
        shot.status.success(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (w, h));
    let px = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    let mut colours: Vec<[u8; 3]> = pixels.iter().map(|p| [p[0], p[1], p[2]]).collect();
    let not_white = colours
        .iter()
        .filter(|c| c.iter().any(|&v| v < 240))
        .count();
    colours.sort_unstable();
    colours.dedup();
    assert!(
        colours.len() > 50,
        "{} distinct colours: blank?",
        colours.len()
    );
    let inked = not_white as f64 / pixels.len() as f64;
    assert!(
        inked > 0.05,
        "only {:.1}% of the page is not white",
        inked * 100.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}
