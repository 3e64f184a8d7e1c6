//! `synack fuzz`: random cases recorded on synack and replayed on the live kernel. Generating
//! and replaying on synack runs everywhere; the kernel side needs root and a packetdrill binary
//! (skipped with the reason otherwise, failing under CI=true).

mod common;

use std::path::PathBuf;
use std::process::Command;

fn fuzz(args: &[&str]) -> (i32, String) {
    let out = Command::new(common::synack_bin())
        .arg("fuzz")
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn synack_replays_every_case_it_recorded() {
    let (code, text) = fuzz(&["--synack-only", "--cases", "25", "--seed", "100"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("25 cases generated; synack replays every one as recorded"),
        "{text}"
    );
    let (code, text) = fuzz(&["--synack-only", "--cases", "0"]);
    assert_eq!(code, 2, "--cases 0 is refused: {text}");
}

#[test]
fn differences_with_linux_are_shrunk_into_scripts_only_synack_passes() {
    if !common::may_run("fuzz differences_with_linux", &["ip"]) {
        return;
    }
    let pd = match synack_packetdrill::linux::find_packetdrill(None) {
        Ok(p) => p,
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("fuzz test: {why}");
            }
            eprintln!("skipping fuzz differences_with_linux: {why}");
            return;
        }
    };
    let pd = pd.to_str().unwrap();
    let out: PathBuf =
        std::env::temp_dir().join(format!("synack-fuzz-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let (code, text) = fuzz(&[
        "--packetdrill",
        pd,
        "--cases",
        "3",
        "--seed",
        "1",
        "--shrink",
        "1",
        "--shrink-runs",
        "8",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(code == 0 || code == 1, "{text}");
    let summary = text
        .lines()
        .find(|l| l.starts_with("3 cases: "))
        .unwrap_or_else(|| panic!("no summary line in:\n{text}"));
    let per_case = text.lines().filter(|l| l.starts_with("seed ")).count();
    assert_eq!(per_case, 3, "{text}");
    if code == 0 {
        assert!(summary.contains("3 the same on Linux, 0 differ"), "{text}");
        return;
    }
    // Each shrunk script whose difference is not a timing one (those can be noise on a busy
    // machine) passes on synack and fails on Linux when the oracle replays it.
    let mut checked = 0;
    for block in text.split("\ndifference ").skip(1) {
        let Some(path) = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("shrunk to "))
            .and_then(|l| l.split(": ").nth(1))
        else {
            continue;
        };
        if block.contains("timing error") {
            continue;
        }
        let o = Command::new(common::synack_bin())
            .args(["oracle", "--strict-segments", "--packetdrill", pd, path])
            .output()
            .unwrap();
        let o = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.contains("only synack"),
            "{path}:\n{o}\nfuzz said:\n{text}"
        );
        checked += 1;
    }
    eprintln!("fuzz: {summary}; {checked} shrunk scripts replayed by the oracle");
    let _ = std::fs::remove_dir_all(&out);
}
