//! Our own packetdrill scripts (`tests/packetdrill/` at the repository root, searched
//! recursively), each validated on the live Linux kernel with `synack oracle`. Every one must
//! pass on synack, in every address family (IPv4, IPv6, IPv6 sockets on IPv4-mapped addresses;
//! a script that pins `--ip_version` runs in that one only), except those
//! `tests/packetdrill/known-divergences.txt` lists (Linux passes them, synack does not yet):
//! those must fail, so the list only ever shrinks.

use std::path::Path;

use synack_packetdrill::divergences::Divergences;
use synack_packetdrill::run::{self, IpVersion, RunOptions};

#[test]
fn own_scripts_pass_except_known_divergences() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/packetdrill");
    let known = Divergences::load(&dir.join("known-divergences.txt")).unwrap();
    let scripts = run::collect_scripts(&dir).expect("tests/packetdrill exists");
    assert!(scripts.len() >= 40, "only {} scripts", scripts.len());
    let mut problems = Vec::new();
    let (mut runs, mut diverging) = (0, 0);
    for v in IpVersion::ALL {
        let opts = RunOptions::upstream(v);
        for s in &scripts {
            let r = run::run_file(s, &opts);
            if r.ip_version != v {
                continue;
            }
            runs += 1;
            println!(
                "[{}] {}",
                v.name(),
                r.render(Some(0)).lines().next().unwrap_or("")
            );
            match (known.reason(s), r.passed()) {
                (None, true) => {}
                (Some(_), false) => diverging += 1,
                (None, false) => problems.push(format!(
                    "[{}] fails and is not in known-divergences.txt:\n{}",
                    v.name(),
                    r.render(Some(16))
                )),
                (Some(why), true) => problems.push(format!(
                    "[{}] {} passes now: remove it from known-divergences.txt (it said: {why})",
                    v.name(),
                    s.display()
                )),
            }
        }
    }
    println!(
        "{} scripts, {runs} runs, {diverging} runs of known divergences, {} problems",
        scripts.len(),
        problems.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
