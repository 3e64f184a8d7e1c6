//! Snapshot files shared by the integration tests: output compared byte for byte with a file
//! under `tests/snapshots/`, rewritten instead when `SYNACK_UPDATE_SNAPSHOTS=1`, so that a
//! change of behaviour shows up in review as a diff of the snapshot.

use std::path::{Path, PathBuf};

/// `tests/snapshots/<name>` of this crate.
pub fn snapshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name)
}

/// Compares `actual` with the snapshot at `path` (or writes it when
/// `SYNACK_UPDATE_SNAPSHOTS=1`). The error says what differs, line by line, and `rerun`
/// (the command that rewrites the snapshot).
pub fn check_snapshot(path: &Path, actual: &str, rerun: &str) -> Result<(), String> {
    if std::env::var_os("SYNACK_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, actual).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
        return Ok(());
    }
    let how = format!(
        "If the change is intended, rewrite it with\n  SYNACK_UPDATE_SNAPSHOTS=1 {rerun}\n\
         and commit the new snapshot with the change (the diff is the review)."
    );
    let old = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "no snapshot at {} ({e}).\n{how}\n\nthe output now:\n{actual}",
            path.display()
        )
    })?;
    if old == actual {
        return Ok(());
    }
    let (old_lines, new_lines): (Vec<&str>, Vec<&str>) =
        (old.lines().collect(), actual.lines().collect());
    let mut diff = String::new();
    for i in 0..old_lines.len().max(new_lines.len()) {
        let (a, b) = (old_lines.get(i), new_lines.get(i));
        if a != b {
            if let Some(a) = a {
                diff.push_str(&format!("- {a}\n"));
            }
            if let Some(b) = b {
                diff.push_str(&format!("+ {b}\n"));
            }
        }
    }
    Err(format!("{} differs:\n{diff}\n{how}", path.display()))
}
