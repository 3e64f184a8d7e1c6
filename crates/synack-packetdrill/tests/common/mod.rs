//! What the tests that read the upstream packetdrill suite share: where the suite is.
//!
//! The suite is data from outside this repository (never copied into it): the directory named
//! by `SYNACK_PACKETDRILL_DIR`, else `../shared/packetdrill` beside the checkout. The README
//! says how to fetch it; `google/` in it is google/packetdrill at the pinned commit.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

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
