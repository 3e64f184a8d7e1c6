//! The goodput table of issue 9 (`synack sim --goodput-table`), compared byte for byte with
//! `tests/snapshots/goodput-table.md`: the simulation is deterministic, so any change in loss
//! recovery or congestion control that moves a number shows up here, and in review as a diff
//! of the snapshot.
//!
//! After an intended change, rewrite the snapshot and commit it with the change:
//!
//! ```sh
//! SYNACK_UPDATE_SNAPSHOTS=1 cargo test -p synack --test goodput_table
//! ```

use std::path::Path;

use synack::sim::goodput::{TableSpec, goodput_table, render_markdown};

#[test]
fn goodput_table_matches_snapshot() {
    let spec = TableSpec::full();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = std::time::Instant::now();
    let rows = goodput_table(&spec, threads);
    let table = render_markdown(&spec, &rows);
    eprintln!(
        "{} runs on {threads} threads in {:.1} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    for r in &rows {
        if let Err(e) = &r.result {
            panic!("run {:?} failed: {e}", r.config);
        }
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/goodput-table.md");
    if std::env::var_os("SYNACK_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &table).expect("write the snapshot");
        eprintln!("wrote {}", path.display());
        return;
    }
    let how = "If the change is intended, rewrite it with\n  \
               SYNACK_UPDATE_SNAPSHOTS=1 cargo test -p synack --test goodput_table\n\
               and commit the new snapshot with the change (the diff is the review).";
    let old = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "no snapshot at {} ({e}).\n{how}\n\nthe table now:\n{table}",
            path.display()
        )
    });
    if old == table {
        return;
    }
    let (old_lines, new_lines): (Vec<&str>, Vec<&str>) =
        (old.lines().collect(), table.lines().collect());
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
    panic!(
        "the goodput table differs from {}:\n{diff}\n{how}",
        path.display()
    );
}
