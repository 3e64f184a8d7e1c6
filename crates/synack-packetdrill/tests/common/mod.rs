//! What the runner's integration tests share: where the upstream packetdrill suite is, and
//! running a script given as text.
//!
//! The suite is data from outside this repository (never copied into it): the directory named
//! by `SYNACK_PACKETDRILL_DIR`, else `../shared/packetdrill` beside the checkout. The README
//! says how to fetch it; `google/` in it is google/packetdrill at the pinned commit.
// Each test binary uses part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use synack_packetdrill::run::{IpVersion, Report, run_script};

/// `../shared/packetdrill` beside the repository's root.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/packetdrill")
}

/// The suite's directory, or `None` when it is not there: then `test` is skipped, with the
/// reason on the terminal, or fails under `CI=true` (see `synack::testing::skip`).
pub fn suite_dir(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("SYNACK_PACKETDRILL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(default_dir);
    if dir.is_dir() {
        return Some(dir);
    }
    synack::testing::skip(
        test,
        &format!(
            "the upstream packetdrill suite is not at {} (set SYNACK_PACKETDRILL_DIR, or fetch \
             it with .ci/fetch-packetdrill: see the README)",
            dir.display()
        ),
    );
    None
}

/// The sysctls of our own suite (wscale 8, no timestamps) and socket() = 3.
pub const SOCKET: &str = "\
`sysctl -q net.ipv4.tcp_rmem=\"4096 540000 15728640\"
sysctl -q net.ipv4.tcp_wmem=\"4096 16384 4194304\"
sysctl -q net.ipv4.tcp_timestamps=0`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
";

/// A passive open on fd 3 (peer MSS 1000, wscale 7, no SACK), accepted as fd 4.
pub const PASSIVE_OPEN: &str = "\
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 65535 <mss 1000,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>
  +.1 < . 1:1(0) ack 1 win 256
   +0 accept(3, ..., ...) = 4
";

/// Parses `text` and runs it from this crate's directory, as `inline.pkt`.
pub fn run_text(text: &str) -> Report {
    let script = synack_packetdrill::parse("inline.pkt", text, &HashMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    run_script(&script, text, dir, Path::new("inline.pkt"), IpVersion::Ipv4)
}
