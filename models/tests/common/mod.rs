//! Paths shared by the model tests.

use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("..")
}

/// A file fetched by scripts/fetch-assets.sh; fails clearly when it is missing.
pub fn asset(name: &str) -> PathBuf {
    let p = root().join("assets").join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/fetch-assets.sh",
        p.display()
    );
    p
}
