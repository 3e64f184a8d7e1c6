//! The upstream packetdrill scripts in `../shared/packetdrill` (read in place, never copied)
//! against synack, in IPv4, IPv6 and IPv4-mapped-IPv6 runs: prints a table of every script,
//! checks that every script on the expected pass list (`expected-pass.txt` beside this file)
//! still passes in every family, that IPv6 passes as many as IPv4, and that packetdrill's own
//! expected-failure self-tests fail with the error their `// Failure:` comment names.
//!
//! Skipped with a message when the folder is absent, except under CI=true.

use std::path::{Path, PathBuf};

use synack_packetdrill::run::{self, IpVersion, Outcome, RunOptions};

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

/// The `// Failure: ...` text of a self-test and the line number of the event after it.
fn expected_failure(path: &Path) -> Option<(String, u32)> {
    let text = std::fs::read_to_string(path).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let i = lines.iter().position(|l| l.contains("// Failure:"))?;
    let msg = lines[i]
        .split_once("// Failure:")?
        .1
        .trim()
        .replace('\\', "");
    let next = (i + 1..lines.len()).find(|&j| {
        let t = lines[j].trim();
        !t.is_empty() && !t.starts_with("//")
    })?;
    Some((msg, next as u32 + 1))
}

/// What one family's run of the suite found.
#[derive(Default)]
struct Tally {
    pass: usize,
    fail: usize,
    skip: usize,
    /// Scripts pinned to another family with `--ip_version`: not run in this one.
    other_family: usize,
    regressions: Vec<String>,
    newly: Vec<String>,
    skipped: Vec<String>,
    selftest_problems: Vec<String>,
}

fn run_family(dir: &Path, scripts: &[PathBuf], v: IpVersion, expected: &[String]) -> Tally {
    let opts = RunOptions::upstream(v);
    let mut t = Tally::default();
    println!("--- {} ---", v.name());
    println!("{:<6} script", "result");
    for s in scripts {
        let rel = relative(dir, s);
        let r = run::run_file(s, &opts);
        if r.ip_version != v {
            t.other_family += 1;
            continue;
        }
        let selftest = rel.contains("packetdrill/tests/packet-timeout")
            || rel.contains("packetdrill/tests/linux/packetdrill/");
        let verdict = match &r.outcome {
            Outcome::Pass => "PASS",
            Outcome::Fail(_) => "FAIL",
            Outcome::Skip(_) => "SKIP",
        };
        let detail = match &r.outcome {
            Outcome::Fail(f) => format!("  ({}:{} {})", f.line, f.col, f.message),
            Outcome::Skip(why) => format!("  ({why})"),
            Outcome::Pass => String::new(),
        };
        println!("{verdict:<6} {rel}{detail}");
        if selftest {
            // packetdrill's own tests of itself: they must fail, with their stated error.
            match (expected_failure(s), &r.outcome) {
                (Some((msg, line)), Outcome::Fail(f)) => {
                    if !f.message.contains(&msg) || f.line != line {
                        t.selftest_problems.push(format!(
                            "{rel}: expected failure at line {line} \"{msg}\", got line {}: {}",
                            f.line, f.message
                        ));
                    }
                }
                (exp, _) => t.selftest_problems.push(format!(
                    "{rel}: expected the failure {exp:?}, got {verdict}"
                )),
            }
            continue;
        }
        match &r.outcome {
            Outcome::Pass => t.pass += 1,
            Outcome::Fail(_) => t.fail += 1,
            Outcome::Skip(why) => {
                t.skip += 1;
                t.skipped.push(format!("{rel}: {why}"));
            }
        }
        let listed = expected.contains(&rel);
        if listed && !r.passed() {
            t.regressions
                .push(format!("[{}] {}", v.name(), r.render(Some(12))));
        }
        if !listed && r.passed() {
            t.newly.push(rel);
        }
    }
    println!(
        "{}: {} passed, {} failed, {} skipped; {} pinned to another family",
        v.name(),
        t.pass,
        t.fail,
        t.skip,
        t.other_family
    );
    t
}

/// The suite in each family upstream runs it in: IPv4, IPv6, and IPv6 sockets on
/// IPv4-mapped addresses. Every script on the list passes in every family it runs in (the
/// two pinned with `--ip_version` run in theirs only), none is skipped for its family, and
/// IPv6 passes as many as IPv4 does: Linux 6.18 passes the same scripts in both.
#[test]
fn upstream_scripts() {
    let Some(dir) = suite_dir() else { return };
    let scripts = run::collect_scripts(&dir).expect("list scripts");
    let expected = expected_pass();
    for e in &expected {
        assert!(
            dir.join(e).is_file(),
            "expected-pass.txt names a missing script: {e}"
        );
    }
    let tallies: Vec<(IpVersion, Tally)> = IpVersion::ALL
        .iter()
        .map(|&v| (v, run_family(&dir, &scripts, v, &expected)))
        .collect();
    let v4_pass = tallies[0].1.pass;
    for (v, t) in &tallies {
        for n in &t.newly {
            println!(
                "passes in {} but is not on the expected list (add it): {n}",
                v.name()
            );
        }
        assert!(
            t.selftest_problems.is_empty(),
            "self-tests in {}:\n{}",
            v.name(),
            t.selftest_problems.join("\n")
        );
        assert!(
            t.regressions.is_empty(),
            "scripts on the expected pass list failed:\n{}",
            t.regressions.join("\n")
        );
        // Skips are for what synack lacks in every family (TCP Fast Open, in later/), never
        // for the family.
        assert_eq!(
            t.skipped,
            tallies[0].1.skipped,
            "scripts skipped in {} but not in IPv4, or the other way",
            v.name()
        );
    }
    // The pinned scripts: one per family, so IPv4 and IPv6 run as many scripts each.
    let (v6, mapped) = (&tallies[1].1, &tallies[2].1);
    assert_eq!(
        (
            tallies[0].1.other_family,
            v6.other_family,
            mapped.other_family
        ),
        (1, 1, 2),
        "one script pinned to IPv4, one to IPv6"
    );
    assert_eq!(v6.pass, v4_pass, "IPv6 passes as many scripts as IPv4");
    // The IPv4-mapped runs have neither pinned script (both pass where they run).
    assert_eq!(
        mapped.pass,
        v4_pass - 1,
        "IPv4-mapped passes what IPv4 does"
    );
}
