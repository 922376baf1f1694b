//! Test support for the service's tests (one test binary, tests/service.rs): a stand-in
//! analyzer, a loopback video server with misbehaving modes, and validator request signing.

pub mod analyzer;
pub mod hostile;
pub mod signing;
pub mod video_server;

use std::path::PathBuf;

/// The repository root (this crate's parent), read at run time (test binaries are reused
/// across checkouts that share a target dir).
pub fn root() -> PathBuf {
    PathBuf::from(
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("..")
}

/// The real test clip (scripts/fetch-assets.sh): 768x576, 795 frames, XVID AVI.
pub fn vtest_path() -> PathBuf {
    root().join("assets/vtest.avi")
}

pub const VTEST_FRAMES: usize = 795;
