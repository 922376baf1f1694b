//! Builds the plugin libraries the tests and the benchmark load; where the crate is.
//!
//! They are built by a nested `cargo build` into `<target>/plugin-tests`, a target directory
//! of their own (as trybuild does): the outer `cargo test` may still hold the lock on its
//! own target directory, and another build of the workspace may hold it for a long time.
//! The first test to get here builds; the others wait on the `OnceLock`.

#![allow(dead_code)] // The tests and the benchmark each use a different part.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where the libraries of one profile end up.
pub struct Built {
    dir: PathBuf,
}

impl Built {
    /// A library crate's cdylib, e.g. `lib("colour_ball_detector")`.
    pub fn lib(&self, crate_name: &str) -> PathBuf {
        self.dir.join(file_name(crate_name))
    }

    /// A cdylib example of `pitchside-test-plugins`.
    pub fn example(&self, name: &str) -> PathBuf {
        self.dir.join("examples").join(file_name(name))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn file_name(name: &str) -> String {
    format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// Debug builds of the test plugins and the colour detector.
pub fn debug() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| build(false))
}

/// Release builds, for the benchmark.
pub fn release() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| build(true))
}

/// The outer build's target directory: this executable is `<target>/<profile>/deps/<name>`.
pub fn outer_target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .expect("test executables live in <target>/<profile>/deps")
        .to_owned()
}

/// This crate's directory, read at run time: test binaries are reused across checkouts
/// that share a target dir.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
}

pub fn workspace_root() -> PathBuf {
    crate_dir().join("../..")
}

fn build(release: bool) -> Built {
    let target = outer_target_dir().join("plugin-tests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(workspace_root().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .args(["-p", "pitchside-test-plugins", "-p", "colour-ball-detector"])
        .args(["--lib", "--examples"]);
    if release {
        cmd.arg("--release");
    }
    // Inherited from an outer `cargo test`/`bench`, these would redirect or re-flag the
    // nested build.
    cmd.env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    let output = cmd.output().expect("run cargo build for the test plugins");
    assert!(
        output.status.success(),
        "building the test plugins failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Built {
        dir: target.join(if release { "release" } else { "debug" }),
    }
}
