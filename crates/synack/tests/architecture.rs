//! ARCHITECTURE.md stays true to the tree: every source file it names exists, and the README
//! points at it (the repository must explain itself without anything beside the checkout).

use std::path::Path;

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `a/{b,c}.rs` → `a/b.rs`, `a/c.rs`.
fn expand(path: &str) -> Vec<String> {
    match (path.find('{'), path.find('}')) {
        (Some(open), Some(close)) if open < close => path[open + 1..close]
            .split(',')
            .map(|alt| format!("{}{alt}{}", &path[..open], &path[close + 1..]))
            .collect(),
        _ => vec![path.to_string()],
    }
}

#[test]
fn every_file_the_architecture_names_exists() {
    let text = read("ARCHITECTURE.md");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut checked = 0;
    for (i, chunk) in text.split('`').enumerate() {
        // Odd chunks are inside backquotes; file names end in .rs or / (a directory).
        let is_path = i % 2 == 1
            && !chunk.contains(' ')
            && (chunk.ends_with(".rs") || chunk.ends_with('/'))
            && chunk.contains('/');
        if !is_path {
            continue;
        }
        for p in expand(chunk) {
            let found = src.join(&p).exists()
                || root.join(&p).exists()
                || root.join("crates/synack-cli/src").join(&p).exists();
            assert!(found, "ARCHITECTURE.md names {p}, which does not exist");
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} paths found");
}

#[test]
fn the_readme_points_at_the_architecture_and_not_outside_the_checkout() {
    let readme = read("README.md");
    assert!(readme.contains("[ARCHITECTURE.md](ARCHITECTURE.md)"));
    for outside in ["../shared/DESIGN.md", "../shared/rfcs"] {
        assert!(
            !readme.contains(outside),
            "README.md sends readers to {outside}"
        );
    }
}
