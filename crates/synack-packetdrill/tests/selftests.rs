//! The runner's own expected-failure scripts (`selftests/` beside this file), the way
//! upstream tests packetdrill: each must fail at the line after its `// Failure:` comment, with
//! a message containing the comment's text.

use std::path::Path;

use synack_packetdrill::run::{self, Outcome, RunOptions};

#[test]
fn selftests_fail_as_announced() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/selftests");
    let scripts = run::collect_scripts(&dir).expect("tests/selftests exists");
    assert!(scripts.len() >= 2, "only {} self-tests", scripts.len());
    for s in &scripts {
        let text = std::fs::read_to_string(s).unwrap();
        let (msg, line) = run::expected_failure(&text)
            .unwrap_or_else(|| panic!("{}: no // Failure: comment", s.display()));
        let r = run::run_file(s, &RunOptions::default());
        let Outcome::Fail(f) = &r.outcome else {
            panic!("{} must fail:\n{}", s.display(), r.render(None));
        };
        assert!(
            f.line == line && f.message.contains(&msg),
            "{}: expected a failure at line {line} containing {msg:?}:\n{}",
            s.display(),
            r.render(None)
        );
    }
}

/// The strict rule names the extra segment and the time it was sent.
#[test]
fn extra_segments_fail_when_sent() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/selftests");
    for (name, tail) in [
        (
            "extra-segment-before-call.pkt",
            " at 0.010000 sec, not in the script before this line",
        ),
        (
            "extra-segment-before-packet.pkt",
            " at 0.010000 sec, before this line's packet is due at 0.060000 sec",
        ),
    ] {
        let r = run::run_file(&dir.join(name), &RunOptions::default());
        let Outcome::Fail(f) = &r.outcome else {
            panic!("{name} must fail");
        };
        assert!(f.message.ends_with(tail), "{name}: {}", f.message);
        assert_eq!(f.time.map(|t| t.total_micros()), Some(10_000), "{name}");
    }
}

/// A segment the script never mentions, with no outbound line after it, is not an error:
/// upstream packetdrill passes such scripts (most end with an unlisted FIN or ACK).
#[test]
fn unlisted_segment_at_the_end_passes() {
    let p = std::env::temp_dir().join(format!("synack-selftest-{}.pkt", std::process::id()));
    std::fs::write(
        &p,
        "`sysctl -q net.ipv4.tcp_rmem=\"4096 540000 15728640\"\nsysctl -q net.ipv4.tcp_timestamps=0`\n\
         0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
         +0 bind(3, ..., ...) = 0\n\
         +0 listen(3, 1) = 0\n\
         +0 < S 0:0(0) win 65535 <mss 1000,nop,nop,sackOK,nop,wscale 7>\n\
         +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>\n\
         +.01 < . 1:1(0) ack 1 win 256\n\
         +0 accept(3, ..., ...) = 4\n\
         +0 write(4, ..., 100) = 100\n\
         +.1 close(4) = 0\n",
    )
    .unwrap();
    let r = run::run_file(&p, &RunOptions::default());
    let _ = std::fs::remove_file(&p);
    assert!(r.passed(), "{}", r.render(None));
}
