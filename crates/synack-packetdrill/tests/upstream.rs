//! The upstream packetdrill scripts (`SYNACK_PACKETDRILL_DIR`, else `../shared/packetdrill`;
//! read in place, never copied)
//! against synack: prints a table of every script, checks that every script on the expected
//! pass list (`expected-pass.txt` beside this file) still passes, and that packetdrill's own
//! expected-failure self-tests fail with the error their `// Failure:` comment names.
//!
//! Skipped with a visible message when the folder is absent, and failed instead under CI=true.

use std::path::Path;

use synack_packetdrill::run::{self, Outcome, RunOptions};

mod common;

fn relative(dir: &Path, p: &Path) -> String {
    p.strip_prefix(dir).unwrap_or(p).display().to_string()
}

fn expected_pass() -> Vec<String> {
    include_str!("expected-pass.txt")
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn upstream_scripts() {
    let Some(dir) = common::suite_dir("upstream_scripts") else {
        return;
    };
    let scripts = run::collect_scripts(&dir).expect("list scripts");
    let opts = RunOptions::upstream_ipv4();
    let expected = expected_pass();
    let mut regressions = Vec::new();
    let mut newly = Vec::new();
    let mut selftest_problems = Vec::new();
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    println!("{:<6} script", "result");
    // packet-timeout.pkt waits for a third SYN at 3 s that a kernel before 6.17 never sent;
    // Linux 6.18 sends it at 2 s (tcp_syn_linear_timeouts), so the runner's timeout is tested
    // with that older default.
    let mut older = opts.clone();
    older
        .sysctls
        .push(("tcp_syn_linear_timeouts".into(), "0".into()));
    for s in &scripts {
        let rel = relative(&dir, s);
        let timeout_test = rel.contains("packetdrill/tests/packet-timeout");
        let r = run::run_file(s, if timeout_test { &older } else { &opts });
        let selftest = timeout_test || rel.contains("packetdrill/tests/linux/packetdrill/");
        let verdict = match &r.outcome {
            Outcome::Pass => {
                pass += 1;
                "PASS"
            }
            Outcome::Fail(_) => {
                fail += 1;
                "FAIL"
            }
            Outcome::Skip(_) => {
                skip += 1;
                "SKIP"
            }
        };
        let detail = match &r.outcome {
            Outcome::Fail(f) => format!("  ({}:{} {})", f.line, f.col, f.message),
            Outcome::Skip(why) => format!("  ({why})"),
            Outcome::Pass => String::new(),
        };
        println!("{verdict:<6} {rel}{detail}");
        if selftest {
            // packetdrill's own tests of itself: they must fail, with their stated error.
            let text = std::fs::read_to_string(s).unwrap_or_default();
            match (run::expected_failure(&text), &r.outcome) {
                (Some((msg, line)), Outcome::Fail(f)) => {
                    if !f.message.contains(&msg) || f.line != line {
                        selftest_problems.push(format!(
                            "{rel}: expected failure at line {line} \"{msg}\", got line {}: {}",
                            f.line, f.message
                        ));
                    }
                }
                (exp, _) => selftest_problems.push(format!(
                    "{rel}: expected the failure {exp:?}, got {verdict}"
                )),
            }
            continue;
        }
        let listed = expected.contains(&rel);
        if listed && !r.passed() {
            regressions.push(r.render(Some(12)));
        }
        if !listed && r.passed() {
            newly.push(rel);
        }
    }
    println!(
        "{pass} passed, {fail} failed, {skip} skipped of {}",
        scripts.len()
    );
    for n in &newly {
        println!("passes but is not on the expected list (add it): {n}");
    }
    // A suite fetched with .ci/fetch-packetdrill has google/ and later/google/, not the Linux
    // kernel's copies in linux-selftests/: their entries cannot be checked then, which is said
    // (and fails under CI=true). A missing script in a folder that is there is a failure.
    let mut absent_sources: Vec<&str> = Vec::new();
    for e in &expected {
        let source = e.split('/').next().unwrap_or(e);
        if !dir.join(source).is_dir() {
            absent_sources.push(source);
            continue;
        }
        assert!(
            dir.join(e).is_file(),
            "expected-pass.txt names a missing script: {e}"
        );
    }
    absent_sources.dedup();
    for source in absent_sources {
        let n = expected
            .iter()
            .filter(|e| e.starts_with(&format!("{source}/")))
            .count();
        synack::testing::skip(
            &format!("upstream_scripts, for the {n} expected passes under {source}/"),
            &format!("{} has no {source}/ folder", dir.display()),
        );
    }
    assert!(
        selftest_problems.is_empty(),
        "self-tests:\n{}",
        selftest_problems.join("\n")
    );
    assert!(
        regressions.is_empty(),
        "scripts on the expected pass list failed:\n{}",
        regressions.join("\n")
    );
}

/// `.ci/fetch-packetdrill` fetches every upstream script the expected-pass list names under
/// `google/`, from the commit the suite was taken at: a fetched suite can check them all.
#[test]
fn the_fetch_script_pins_every_expected_google_script() {
    let script = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/fetch-packetdrill"),
    )
    .expect("read .ci/fetch-packetdrill");
    assert!(script.contains("commit=2c4001c4d6fc04a3bbd01d4b92be62717a37648a"));
    let list = |name: &str| -> Vec<String> {
        let start = script
            .find(&format!("\n{name}=(\n"))
            .unwrap_or_else(|| panic!("no {name}=( list"));
        let body = &script[start + name.len() + 4..];
        body[..body.find("\n)").expect("end of list")]
            .lines()
            .map(|l| l.trim().to_string())
            .collect()
    };
    let scripts = list("scripts");
    let expected = expected_pass();
    let google: Vec<&String> = expected
        .iter()
        .filter(|e| e.starts_with("google/"))
        .collect();
    assert!(google.len() >= 20, "{google:?}");
    for e in google {
        let path = e.strip_prefix("google/").unwrap_or(e);
        assert!(
            scripts.iter().any(|s| s == path),
            "{e} is expected to pass but .ci/fetch-packetdrill does not fetch it"
        );
    }
    assert!(list("later").len() >= 30);
}
