//! `%{ }%` code blocks end to end: a false assert fails the script at the assert's own line
//! with the actual value, after the rest of the script ran (as upstream); a block the runner
//! cannot evaluate makes the script a SKIP, never a silent PASS. The passing case is
//! `tests/packetdrill/tcp-info-code-blocks.pkt`, run by `own.rs`.

mod common;

use common::run_text;
use synack_packetdrill::run::{Outcome, Report};

/// A passive open with MSS 1000, then 10 segments out: cwnd 10, 10 unacknowledged.
const PRELUDE: &str = "\
`sysctl -q net.ipv4.tcp_rmem=\"4096 540000 15728640\"
sysctl -q net.ipv4.tcp_timestamps=0`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 65535 <mss 1000,nop,nop,sackOK,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>
  +.1 < . 1:1(0) ack 1 win 256
   +0 accept(3, ..., ...) = 4
   +0 write(4, ..., 10000) = 10000
   +0 > P. 1:10001(10000) ack 1
";

fn run(rest: &str) -> (Report, String) {
    let text = format!("{PRELUDE}{rest}");
    (run_text(&text), text)
}

fn line_of(text: &str, needle: &str) -> u32 {
    text.lines().position(|l| l.contains(needle)).unwrap() as u32 + 1
}

#[test]
fn true_asserts_pass() {
    let (r, _) = run("   +0 %{ assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd }%\n");
    assert!(r.passed(), "{}", r.render(None));
}

#[test]
fn false_assert_fails_at_its_line_with_the_actual_value() {
    let (r, text) = run("   +0 %{
assert tcpi_unacked == 10, tcpi_unacked
assert tcpi_snd_cwnd == 7, tcpi_snd_cwnd
}%
// The script goes on after the block, like upstream (which runs blocks at the end).
  +.1 < . 1:1(0) ack 10001 win 256
");
    let Outcome::Fail(f) = &r.outcome else {
        panic!("expected a failure:\n{}", r.render(None));
    };
    assert_eq!(f.line, line_of(&text, "tcpi_snd_cwnd == 7"));
    assert_eq!(f.source, "assert tcpi_snd_cwnd == 7, tcpi_snd_cwnd");
    assert!(
        f.message
            .contains("assertion failed: tcpi_snd_cwnd == 7 (actual: tcpi_snd_cwnd = 10)"),
        "{}",
        f.message
    );
    assert!(f.message.contains("AssertionError: 10"), "{}", f.message);
    assert_eq!(f.actual.as_deref(), Some("tcpi_snd_cwnd = 10"));
    // The inbound ACK after the block was still injected.
    assert!(
        r.trace.last().unwrap().contains("ack 10001"),
        "{:?}",
        r.trace
    );
    let rendered = r.render(Some(0));
    assert!(
        rendered.contains(&format!("inline.pkt:{}:1:", f.line)),
        "{rendered}"
    );
}

#[test]
fn first_failure_wins_and_a_packet_failure_takes_precedence() {
    let (r, text) = run("   +0 %{ assert tcpi_unacked == 9, tcpi_unacked }%
   +0 %{ assert tcpi_snd_cwnd == 7, tcpi_snd_cwnd }%
");
    let Outcome::Fail(f) = &r.outcome else {
        panic!("{}", r.render(None))
    };
    assert_eq!(f.line, line_of(&text, "tcpi_unacked == 9"));
    assert!(f.message.contains("tcpi_unacked = 10"), "{}", f.message);

    // A wrong packet later: that is the failure; the block's finding becomes a note.
    let (r, text) = run("   +0 %{ assert tcpi_snd_cwnd == 7, tcpi_snd_cwnd }%
  +.1 < . 1:1(0) ack 10001 win 256
   +0 > . 10001:11001(1000) ack 1
");
    let Outcome::Fail(f) = &r.outcome else {
        panic!("{}", r.render(None))
    };
    assert_eq!(f.line, line_of(&text, "10001:11001"));
    let block = line_of(&text, "tcpi_snd_cwnd == 7");
    assert!(
        r.notes
            .iter()
            .any(|n| n.starts_with(&format!("code block at line {block}: assertion failed"))),
        "{:?}",
        r.notes
    );
}

#[test]
fn blocks_that_cannot_be_evaluated_skip_the_script() {
    for (block, why) in [
        (
            "assert tcpi_pacing_rate > 0, tcpi_pacing_rate",
            "tcpi_pacing_rate: synack does not report this TCP_INFO field",
        ),
        ("print(tcpi_snd_cwnd)", "statement starting with 'print'"),
        ("assert tcpi_snd_cwnd / 2 == 5", "'/'"),
    ] {
        let (r, text) = run(&format!("   +0 %{{ {block} }}%\n"));
        let Outcome::Skip(s) = &r.outcome else {
            panic!("{block}: expected a skip:\n{}", r.render(None));
        };
        let line = line_of(&text, block);
        assert!(
            s.starts_with(&format!("line {line}: code block not evaluated")),
            "{s}"
        );
        assert!(s.contains(why), "{block}: {s}");
    }
}

#[test]
fn errors_in_blocks_fail() {
    // Python would raise NameError / ZeroDivisionError: the script is wrong, not unsupported.
    for (block, what) in [
        (
            "assert tcpi_snd_cwdn == 10",
            "NameError: name 'tcpi_snd_cwdn'",
        ),
        ("assert tcpi_snd_cwnd // 0", "ZeroDivisionError"),
    ] {
        let (r, _) = run(&format!("   +0 %{{ {block} }}%\n"));
        let Outcome::Fail(f) = &r.outcome else {
            panic!("{block}: {}", r.render(None));
        };
        assert!(f.message.contains(what), "{block}: {}", f.message);
    }
}

#[test]
fn the_socket_under_test_is_the_latest_socket() {
    // A second socket() moves the focus of code blocks to the new, unconnected socket:
    // TCP_CLOSE, the fresh socket's MSS (536, RFC 9293 §3.7.1) and the initial window.
    let (r, _) = run("   +0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 5
   +0 %{
assert tcpi_state == TCP_CLOSE, tcpi_state
assert tcpi_snd_mss == 536, tcpi_snd_mss
assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd
assert tcpi_unacked == 0, tcpi_unacked
}%
");
    assert!(r.passed(), "{}", r.render(None));
    // Before accept(), the passive child has no fd: as upstream, that is an error.
    let text = "\
`sysctl -q net.ipv4.tcp_rmem=\"4096 540000 15728640\"`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 65535 <mss 1000,nop,nop,sackOK,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>
   +0 %{ assert tcpi_state == TCP_SYN_RECV }%
";
    let r = run_text(text);
    let Outcome::Fail(f) = &r.outcome else {
        panic!("{}", r.render(None))
    };
    assert!(f.message.contains("has not been accepted"), "{}", f.message);
}
