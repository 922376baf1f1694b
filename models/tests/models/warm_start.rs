//! The kernel cache across processes, on WGPU (Mesa's lavapipe in CI: the same cubecl
//! autotune cache as on a GPU): a first process compiles and tunes a tiny random-weight
//! YOLOv8n into a fresh cache directory, a second process runs the same shape and tunes
//! nothing. Asserted on the cache's entries, not on time.
//!
//! The processes are this test binary run again with `CHILD` set: each pins the cache (as
//! `pitchside` does before the first device use) and runs one forward pass.

#![cfg(feature = "wgpu")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use pitchside_models::kernel_cache;
use pitchside_models::synthetic::{load_arch_yaml, synthetic_checkpoint};
use pitchside_models::{ModelDevice, YoloModel};

use crate::support::root;

const CHILD: &str = "PITCHSIDE_WARM_START_CACHE";
const TEST: &str = "warm_start::wgpu_a_second_process_tunes_nothing";

/// Every file under `dir` with its contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(p: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.is_dir() {
        walk(dir, &mut out);
    }
    out
}

/// The child: pin the cache under `root`, run a batch of 2 at 64×64, print the cache dir.
fn child(cache_root: &Path) {
    let cache = kernel_cache::pin(Some(cache_root), ModelDevice::Wgpu)
        .unwrap()
        .expect("WGPU has a kernel cache");
    let mut arch = load_arch_yaml(root().join("models/archs/yolov8n.yaml")).unwrap();
    arch["nc"] = 2.into();
    let model = YoloModel::from_checkpoint(
        synthetic_checkpoint(arch, None, 3).unwrap(),
        ModelDevice::Wgpu,
    )
    .unwrap();
    let (_, dims) = model
        .forward(vec![0.5; 2 * 3 * 64 * 64], [2, 3, 64, 64])
        .unwrap();
    assert_eq!(dims, [2, 6, 84]);
    println!("CACHE_DIR={}", cache.dir.display());
    println!("GPU={}", cache.gpu);
}

/// Runs the child in `work` (cwd) with the cache under `root`; returns its cache dir.
fn run_child(work: &Path, root: &Path) -> PathBuf {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, root)
        // lavapipe is slow: few candidates per key (scripts/test.sh sets it too).
        .env("CUBECL_AUTOTUNE_LEVEL", "minimal")
        .current_dir(work)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The harness prints "test NAME ... " on the line the child's output starts.
    let dir = stdout
        .lines()
        .find_map(|l| l.split_once("CACHE_DIR=").map(|(_, d)| d.trim()))
        .unwrap_or_else(|| panic!("no CACHE_DIR line:\n{stdout}"));
    PathBuf::from(dir)
}

#[test]
fn wgpu_a_second_process_tunes_nothing() {
    if let Some(cache_root) = std::env::var_os(CHILD) {
        child(Path::new(&cache_root));
        return;
    }
    let work = std::env::temp_dir().join(format!("pitchside-warm-start-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let root = work.join("kernels");
    // A cubecl.toml where cubecl would look (walking up from the working directory) must
    // not move the caches: Pitchside sets cubecl's configuration itself.
    let stray = work.join("stray");
    std::fs::write(
        work.join("cubecl.toml"),
        format!(
            "[autotune]\ncache = {{ file = \"{0}\" }}\n[compilation]\ncache = {{ file = \"{0}\" }}\n",
            stray.display()
        ),
    )
    .unwrap();

    let dir = run_child(&work, &root);
    // <root>/<gpu name>/autotune/<cubecl version>/<device>/<tuner>.json.log
    assert_eq!(dir.parent(), Some(root.as_path()));
    let tuned = kernel_cache::autotune_entries(&dir);
    assert!(
        tuned > 0,
        "the first process tuned nothing into {}",
        dir.display()
    );
    let cached = snapshot(&dir);
    assert!(
        cached
            .keys()
            .all(|p| p.starts_with(dir.join("autotune"))
                && p.to_string_lossy().ends_with(".json.log")),
        "{:#?}",
        cached.keys()
    );
    assert!(!stray.exists(), "a cubecl.toml moved the cache");

    assert_eq!(run_child(&work, &root), dir);
    // Not a key added, not a byte changed: nothing was tuned again.
    assert_eq!(kernel_cache::autotune_entries(&dir), tuned);
    assert_eq!(snapshot(&dir), cached);
    std::fs::remove_dir_all(&work).unwrap();
}
