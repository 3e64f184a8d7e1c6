//! `synack packetdrill`: verdicts, failure details and the summary line.

use std::process::Command;

fn write_script(name: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("synack-pd-{}-{name}.pkt", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

const HANDSHAKE: &str = "\
`sysctl -q net.ipv4.tcp_rmem=\"4096 540000 15728640\"`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 1000 <mss 1000,nop,wscale 2>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>
  +.1 < . 1:1(0) ack 1 win 500
   +0 accept(3, ..., ...) = 4
   +0 < P. 1:101(100) ack 1 win 500
";

#[test]
fn passing_and_failing_scripts() {
    let good = write_script("good", &format!("{HANDSHAKE}   +0 > . 1:1(0) ack 101\n"));
    // The ACK of 100 bytes is 101, not 100: this line must fail with both segments shown.
    let bad = write_script("bad", &format!("{HANDSHAKE}   +0 > . 1:1(0) ack 100\n"));
    let out = Command::new(env!("CARGO_BIN_EXE_synack"))
        .args(["packetdrill"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "a failing script fails the run:\n{text}"
    );
    assert!(text.contains(&format!("PASS {}", good.display())), "{text}");
    assert!(text.contains(&format!("FAIL {}", bad.display())), "{text}");
    assert!(
        text.contains(":10:4: live packet field tcp_ack_seq: expected: 100 vs actual: 101"),
        "{text}"
    );
    assert!(text.contains("expected: . 1:1(0) ack 100"), "{text}");
    assert!(text.contains("actual:   . 1:1(0) ack 101"), "{text}");
    assert!(text.contains("at virtual time 0.100000 s"), "{text}");
    assert!(
        text.contains("< P. 1:101(100) ack 1 win 500"),
        "trace of the last segments:\n{text}"
    );
    assert!(text.trim_end().ends_with("1 passed, 1 failed"), "{text}");

    let out = Command::new(env!("CARGO_BIN_EXE_synack"))
        .args(["packetdrill", "--verbose"])
        .arg(&good)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("trace:") && text.contains("> S. 0:0(0) ack 1"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("1 passed, 0 failed"), "{text}");
    let _ = std::fs::remove_file(good);
    let _ = std::fs::remove_file(bad);
}

#[test]
fn parse_errors_point_at_the_line_and_column() {
    let p = write_script(
        "parse",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:5(3) win 1\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_synack"))
        .args(["packetdrill"])
        .arg(&p)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    // The location once, then what was wrong there.
    let name = p.display().to_string();
    let line = text
        .lines()
        .find(|l| l.contains(&format!("{name}:2:")))
        .unwrap_or_else(|| panic!("line 2 named:\n{text}"));
    assert_eq!(line.matches(&name).count(), 1, "{line}");
    assert!(
        line.starts_with(&format!("  {name}:2:")) && line.contains(": expected "),
        "{line}"
    );
    let _ = std::fs::remove_file(p);
}

fn packetdrill(paths: &[&std::path::Path]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_synack"))
        .arg("packetdrill")
        .args(paths)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A script with no events tests nothing: it fails, it does not pass.
#[test]
fn an_empty_script_fails() {
    for (tag, text) in [("empty", ""), ("comments", "// nothing here\n\n")] {
        let p = write_script(tag, text);
        let (code, out, _) = packetdrill(&[&p]);
        let name = p.display();
        assert_eq!(code, Some(1), "{out}");
        assert_eq!(
            out,
            format!(
                "FAIL {name}\n  {name}: the script has no events (no packets, no system calls): \
                 an empty script tests nothing\n0 passed, 1 failed\n"
            )
        );
        let _ = std::fs::remove_file(p);
    }
}

/// Nothing to run is an error: a directory without scripts, a path that does not exist.
#[test]
fn nothing_to_run_is_an_error() {
    let dir = std::env::temp_dir().join(format!("synack-pd-{}-emptydir", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (code, out, err) = packetdrill(&[&dir]);
    assert_eq!(code, Some(2), "{out}");
    assert_eq!(
        err,
        format!(
            "error: {}: no .pkt scripts in this directory or below\n",
            dir.display()
        )
    );
    assert_eq!(out, "");
    let missing = dir.join("missing.pkt");
    let (code, out, err) = packetdrill(&[&missing]);
    assert_eq!(code, Some(2), "{out}");
    assert_eq!(
        err,
        format!("error: {}: no such file or directory\n", missing.display())
    );
    assert!(!err.contains(":0:0:"));
    std::fs::remove_dir_all(&dir).unwrap();
}
