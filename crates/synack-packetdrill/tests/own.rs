//! Our own packetdrill scripts (`tests/packetdrill/` at the repository root): the cases the
//! upstream set lacks (handshakes, old duplicate SYN, RST in every state, close and shutdown
//! variants, TIME-WAIT, keepalive, zero window, RFC 5961, IPv6). Every one must pass, in
//! every address family.

use std::path::Path;

use synack_packetdrill::run::{self, IpVersion, RunOptions};

#[test]
fn own_scripts_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/packetdrill");
    let scripts = run::collect_scripts(&dir).expect("tests/packetdrill exists");
    assert!(scripts.len() >= 40, "only {} scripts", scripts.len());
    let mut failed = Vec::new();
    // In every family: IPv4, IPv6, IPv6 sockets on IPv4-mapped addresses (a script that
    // pins --ip_version runs in that one only).
    let mut runs = 0;
    for v in IpVersion::ALL {
        let opts = RunOptions {
            ip_version: v,
            ..RunOptions::default()
        };
        for s in &scripts {
            let r = run::run_file(s, &opts);
            if r.ip_version != v {
                continue;
            }
            runs += 1;
            let verdict = r.render(Some(0));
            println!("[{}] {}", v.name(), verdict.lines().next().unwrap_or(""));
            if !r.passed() {
                failed.push(format!("[{}] {}", v.name(), r.render(Some(16))));
            }
        }
    }
    println!(
        "{} scripts, {runs} runs, {} failed",
        scripts.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
