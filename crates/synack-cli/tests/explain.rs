//! `synack explain` run as a user runs it: the list, a scenario in each language (the same
//! text the library renders), aliases, and the errors.

use std::process::Command;

use synack::sim::explain::{self, Lang};

fn synack(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_synack"))
        .args(args)
        .output()
        .expect("run synack");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn without_a_name_it_lists_every_scenario() {
    let (code, out, err) = synack(&["explain"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, explain::list(Lang::En));
    for s in explain::scenarios() {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{} ", s.name)))
            .unwrap_or_else(|| panic!("{} not listed:\n{out}", s.name));
        assert!(line.contains(s.summary(Lang::En)), "{line}");
    }
    assert!(explain::scenarios().len() >= 10);
    let (code, out, _) = synack(&["explain", "--lang", "zh"]);
    assert_eq!(code, Some(0));
    assert_eq!(out, explain::list(Lang::Zh));
}

#[test]
fn a_scenario_prints_what_the_library_renders() {
    let (code, out, err) = synack(&["explain", "why-third-ack", "--lang", "zh", "--seed", "3"]);
    assert_eq!(code, Some(0), "{err}");
    let e = explain::run("old-duplicate-syn", 3, Lang::Zh).unwrap();
    assert_eq!(out, e.render());
    assert!(
        out.starts_with("synack explain old-duplicate-syn："),
        "{out}"
    );
    assert!(out.contains("SYN-RECEIVED \u{2192} LISTEN"));
    let (code, en, _) = synack(&["explain", "handshake"]);
    assert_eq!(code, Some(0));
    assert_eq!(en, explain::run("handshake", 1, Lang::En).unwrap().render());
}

#[test]
fn bad_names_and_languages_are_errors_that_say_what_exists() {
    let (code, out, err) = synack(&["explain", "three-step"]);
    assert_eq!(code, Some(2));
    assert!(out.is_empty());
    assert!(
        err.starts_with("error: no scenario called \"three-step\"; there are: handshake,"),
        "{err}"
    );
    let (code, _, err) = synack(&["explain", "handshake", "--lang", "fr"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("expected en or zh"), "{err}");
}

#[test]
fn svg_draws_the_scenario_and_prints_the_same_text() {
    let dir = std::env::temp_dir().join(format!("synack-explain-svg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("old-syn.svg");
    let p = path.to_str().unwrap();
    let (code, out, err) = synack(&["explain", "old-duplicate-syn", "--lang", "zh", "--svg", p]);
    assert_eq!(code, Some(0), "{err}");
    // stdout is the explanation, as without --svg; the file note goes to stderr.
    let e = explain::run("old-duplicate-syn", 1, Lang::Zh).unwrap();
    assert_eq!(out, e.render());
    assert_eq!(
        err,
        format!("wrote {p} (ladder diagram; open it in a browser)\n")
    );
    let svg = std::fs::read_to_string(&path).unwrap();
    assert_eq!(svg, e.to_svg());
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("not XML: {e}"));
    let text: String = doc
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    for want in [
        "[RST] Seq=",
        "SYN-RECEIVED",
        "LISTEN",
        "旧的重复 SYN",
        "服务器",
    ] {
        assert!(text.contains(want), "no {want:?}");
    }
    // A file that cannot be written is an error that names it; nothing is half done.
    let bad = dir.join("no-such-dir").join("x.svg");
    let (code, out, err) = synack(&["explain", "handshake", "--svg", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with(&format!("error: cannot write {}: ", bad.display())),
        "{err}"
    );
    // --svg draws a scenario: without a name it is an error, not the list.
    let (code, out, err) = synack(&["explain", "--svg", p]);
    assert_eq!(code, Some(2));
    assert!(out.is_empty());
    assert!(err.contains("--svg draws a scenario"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
