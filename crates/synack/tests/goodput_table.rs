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

mod common;

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
    let path = common::snapshot_path("goodput-table.md");
    if let Err(e) =
        common::check_snapshot(&path, &table, "cargo test -p synack --test goodput_table")
    {
        panic!("the goodput table: {e}");
    }
}
