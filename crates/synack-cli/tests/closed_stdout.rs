//! A reader that stops early (`synack sim --trace all | head -1`) closes the pipe under a command
//! that still has lines to print. The command ends quietly with status 0, as programs stopped by
//! SIGPIPE do, instead of panicking with "failed printing to stdout".

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Runs synack with `args`, reads its first line of standard output, closes the pipe and
/// returns (exit code, standard error).
fn first_line_then_close(args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_synack"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run synack");
    let mut first = String::new();
    {
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        out.read_line(&mut first).expect("read the first line");
        // `out` is dropped here: the pipe's only reader goes away.
    }
    let out = child.wait_with_output().expect("wait for synack");
    (
        out.status.code(),
        first,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn commands_end_quietly_when_the_reader_closes_stdout() {
    // Each prints far more than a pipe buffer (64 KiB: `sim --trace all` prints ~850 KiB), so it
    // must hit the closed pipe.
    for args in [
        &["sim", "--trace", "all"][..],
        &["sim", "--trace", "all", "--ipv6"][..],
    ] {
        let (code, first, err) = first_line_then_close(args);
        assert!(!first.is_empty(), "synack {args:?} printed nothing");
        assert!(
            !err.contains("panicked"),
            "synack {args:?} panicked:\n{err}"
        );
        assert_eq!(code, Some(0), "synack {args:?}: stderr:\n{err}");
    }
}
