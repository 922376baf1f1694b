//! What the engine's unit tests share: where the checkout is, and a watchdog.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// The repository root, read at run time: test binaries are reused across checkouts that
/// share a target dir.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("..")
}

/// The real test clip (scripts/fetch-assets.sh): 768x576, 795 frames, XVID AVI.
pub fn vtest() -> PathBuf {
    let p = workspace_root().join("assets/vtest.avi");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/fetch-assets.sh",
        p.display()
    );
    p
}

/// Runs `f` on its own thread and fails if it has not returned within `limit`, so that a
/// deadlock fails the test instead of hanging the run (the stuck thread is left behind;
/// the test process still exits).
pub fn within(limit: Duration, what: &str, f: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => {}
        Err(RecvTimeoutError::Timeout) => panic!("{what}: still running after {limit:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}
