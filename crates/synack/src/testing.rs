//! Helpers for the tests of synack and of the crates built on it (the `testing` feature; the
//! workspace's own tests turn it on as a dev-dependency feature).

use std::io::Write;

/// Whether this run is CI's: `CI=true` in the environment (`.ci/run` sets it).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Says that `test` cannot run here and why (no root, a missing tool, no upstream suite), where
/// a person running plain `cargo test` sees it; under `CI=true` fails the test instead, so CI
/// cannot pass by skipping. The caller returns right after.
///
/// The harness captures what `println!` and `eprintln!` print during a test and shows it only
/// when the test fails, so a skip reason printed with them vanishes from a passing run. This
/// writes to the process's standard error handle directly, which the capture does not cover:
/// `SKIPPED test: why` appears among the test results, with or without `-q`.
///
/// ```
/// # fn tool_installed(_: &str) -> bool { true }
/// if !tool_installed("tshark") {
///     synack::testing::skip("capture_reads_in_tshark", "tshark is not installed");
///     return;
/// }
/// ```
///
/// # Panics
///
/// Under `CI=true`, with the test's name and the reason.
pub fn skip(test: &str, why: &str) {
    if under_ci() {
        panic!("{test} cannot run, and CI=true requires it to: {why}");
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "SKIPPED {test}: {why}");
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const CHILD: &str = "SYNACK_TESTING_SKIP_CHILD";

    /// Runs this very test again in a child test process, as `cargo test` would run it: with the
    /// harness capturing output. The child skips; its reason must reach the terminal (the child's
    /// standard error) all the same, and under `CI=true` the child must fail instead.
    #[test]
    fn a_skip_is_seen_despite_the_capture_and_fails_under_ci() {
        if std::env::var_os(CHILD).is_some() {
            println!("CAPTURED-PRINTLN");
            eprintln!("CAPTURED-EPRINTLN");
            skip("the child", "a reason");
            return;
        }
        let child = |ci: Option<&str>| {
            let mut c = Command::new(std::env::current_exe().expect("test binary"));
            c.args([
                "--exact",
                "testing::tests::a_skip_is_seen_despite_the_capture_and_fails_under_ci",
            ])
            .env(CHILD, "1")
            .env_remove("CI");
            if let Some(v) = ci {
                c.env("CI", v);
            }
            let out = c.output().expect("run the test binary");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let (ok, out, err) = child(None);
        assert!(ok, "{out}{err}");
        assert!(err.contains("SKIPPED the child: a reason\n"), "{err}");
        // What println!/eprintln! printed was captured: a passing test shows none of it.
        assert!(
            !out.contains("CAPTURED") && !err.contains("CAPTURED"),
            "{out}{err}"
        );
        let (ok, out, err) = child(Some("true"));
        assert!(!ok, "{out}{err}");
        assert!(
            out.contains("the child cannot run, and CI=true requires it to: a reason"),
            "{out}{err}"
        );
        assert!(!err.contains("SKIPPED"), "{err}");
    }
}
