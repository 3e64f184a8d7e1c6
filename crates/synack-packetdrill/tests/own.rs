//! Our own packetdrill scripts (`tests/packetdrill/` at the repository root): the cases the
//! upstream set lacks (handshakes, old duplicate SYN, RST in every state, close and shutdown
//! variants, TIME-WAIT, keepalive, zero window, RFC 5961). Every one must pass.

use std::path::Path;

use synack_packetdrill::run::{self, RunOptions};

#[test]
fn own_scripts_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/packetdrill");
    let scripts = run::collect_scripts(&dir).expect("tests/packetdrill exists");
    assert!(scripts.len() >= 40, "only {} scripts", scripts.len());
    let mut failed = Vec::new();
    for s in &scripts {
        let r = run::run_file(s, &RunOptions::default());
        println!("{}", r.render(Some(0)).lines().next().unwrap_or(""));
        if !r.passed() {
            failed.push(r.render(Some(16)));
        }
    }
    println!("{} scripts, {} failed", scripts.len(), failed.len());
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
