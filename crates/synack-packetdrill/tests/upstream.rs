//! The upstream packetdrill scripts in `../shared/packetdrill` (read in place, never copied)
//! against synack: prints a table of every script, checks that every script on the expected
//! pass list (`expected-pass.txt` beside this file) still passes, and that packetdrill's own
//! expected-failure self-tests fail with the error their `// Failure:` comment names.
//!
//! Skipped with a message when the folder is absent, except under CI=true.

use std::path::{Path, PathBuf};

use synack_packetdrill::run::{self, Outcome, RunOptions};

fn suite_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SYNACK_PACKETDRILL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/packetdrill")
        });
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!(
        "packetdrill suite not found at {} (set SYNACK_PACKETDRILL_DIR)",
        dir.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}; under CI=true it must be present");
    }
    eprintln!("skipping: {msg}");
    None
}

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
    let Some(dir) = suite_dir() else { return };
    let scripts = run::collect_scripts(&dir).expect("list scripts");
    let opts = RunOptions::upstream_ipv4();
    let expected = expected_pass();
    let mut regressions = Vec::new();
    let mut newly = Vec::new();
    let mut selftest_problems = Vec::new();
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    println!("{:<6} script", "result");
    for s in &scripts {
        let rel = relative(&dir, s);
        let r = run::run_file(s, &opts);
        let selftest = rel.contains("packetdrill/tests/packet-timeout")
            || rel.contains("packetdrill/tests/linux/packetdrill/");
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
    for e in &expected {
        assert!(
            dir.join(e).is_file(),
            "expected-pass.txt names a missing script: {e}"
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
