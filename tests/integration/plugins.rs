//! A third-party detector loaded from a shared library, chosen in YAML, running a real clip
//! through the pipeline with the built-in tracker.

use std::path::{Path, PathBuf};
use std::process::Command;

use opencv::prelude::*;
use pitchside_engine::config::{Deployment, EnvOverrides};
use pitchside_engine::device::Backend;
use pitchside_engine::pipeline::{Pipeline, RunOptions};

use crate::support::{plugin_lib, root};

fn colour_plugin() -> PathBuf {
    plugin_lib("colour_ball_detector")
}

/// A real clip: a slow pan across the OpenCV sample football photo (messi5.jpg).
fn panning_clip(dir: &Path, frames: i32) -> PathBuf {
    let src = opencv::imgcodecs::imread(
        &*root().join("assets/messi5.jpg").to_string_lossy(),
        opencv::imgcodecs::IMREAD_COLOR,
    )
    .unwrap();
    assert!(
        !src.empty(),
        "assets/messi5.jpg missing: run scripts/fetch-assets.sh"
    );
    let (w, h) = (src.cols() - frames * 2, src.rows());
    let out = dir.join("pan.avi");
    let fourcc = opencv::videoio::VideoWriter::fourcc('M', 'J', 'P', 'G').unwrap();
    let mut wr = opencv::videoio::VideoWriter::new(
        &*out.to_string_lossy(),
        fourcc,
        25.0,
        opencv::core::Size::new(w, h),
        true,
    )
    .unwrap();
    for i in 0..frames {
        let roi = Mat::roi(&src, opencv::core::Rect::new(i * 2, 0, w, h)).unwrap();
        wr.write(&roi.try_clone().unwrap()).unwrap();
    }
    wr.release().unwrap();
    out
}

fn deployment_yaml(lib: &Path) -> String {
    format!(
        "device: cpu\nmodels: {{}}\npipeline:\n  detectors:\n    - role: players\n      library: {}\n      params: {{ ball_min_area: 12 }}\n  tracker:\n    plugin: bytetrack\nprofiles:\n  cpu:\n    frame_stride: 1\n",
        lib.display()
    )
}

#[test]
fn a_shared_library_detector_runs_a_clip_via_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let clip = panning_clip(dir.path(), 12);
    let cfg = dir.path().join("colour.yaml");
    std::fs::write(&cfg, deployment_yaml(&colour_plugin())).unwrap();
    let d = Deployment::from_file(&cfg).unwrap();
    d.check_files().unwrap();
    let e = d.effective(Backend::Cpu, &EnvOverrides::default()).unwrap();
    let mut p = Pipeline::load(d, e, Backend::Cpu).unwrap();
    let clip = p.admit(&clip).unwrap();
    let (r, _) = p.run(&clip, &RunOptions::default()).unwrap();
    assert!(!r.partial, "{:?}", r.error);
    assert_eq!(r.frames.len(), 12);
    // No pitch model: still 32 keypoint pairs per frame.
    assert!(r.frames.iter().all(|f| f.keypoints.len() == 32));
    // The ball is found and keeps one id while the camera pans.
    let ball_ids: Vec<u64> = r
        .frames
        .iter()
        .skip(1)
        .filter_map(|f| f.objects.iter().find(|o| o.class_id == 0).map(|o| o.id))
        .collect();
    assert!(
        ball_ids.len() >= 10,
        "ball seen on {} frames",
        ball_ids.len()
    );
    assert!(
        ball_ids.windows(2).all(|w| w[0] == w[1]),
        "ball ids {ball_ids:?}"
    );
}

#[test]
fn plugins_list_shows_builtin_and_configured_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("colour.yaml");
    std::fs::write(&cfg, deployment_yaml(&colour_plugin())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pitchside"))
        .args(["plugins", "list", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(
        s.contains("detector") && s.contains("yolo") && s.contains("built-in"),
        "{s}"
    );
    assert!(s.contains("tracker") && s.contains("bytetrack"), "{s}");
    assert!(
        s.contains("colour") && s.contains("libcolour_ball_detector"),
        "{s}"
    );
}

#[test]
fn a_missing_library_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.yaml");
    std::fs::write(&cfg, deployment_yaml(&dir.path().join("libnothere.so"))).unwrap();
    let d = Deployment::from_file(&cfg).unwrap();
    let msg = d.check_files().unwrap_err().to_string();
    assert!(
        msg.contains("libnothere.so") && msg.contains("bad.yaml:"),
        "{msg}"
    );
}
