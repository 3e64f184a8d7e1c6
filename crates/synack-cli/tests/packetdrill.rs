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
    assert!(text.contains(":2:"), "line 2 named:\n{text}");
    assert!(text.contains("expected"), "{text}");
    let _ = std::fs::remove_file(p);
}
