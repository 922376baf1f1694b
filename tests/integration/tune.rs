//! `pitchside tune` on the CPU: the shape list (every detector × frame size at the
//! profile's batch), each run once, reported on stdout as JSON. (The kernel cache it fills
//! on GPUs is tested across processes on WGPU: models/tests/models/warm_start.rs.)

use std::process::Command;

use crate::support::root;

#[test]
fn tune_runs_every_detector_at_every_frame_size_once() {
    let out = Command::new(env!("CARGO_BIN_EXE_pitchside"))
        .args(["tune", "--device", "cpu", "--config"])
        .arg(root().join("tests/fixtures/deployments/vtest-320.yaml"))
        .args(["--frame", "64x48", "--frame", "96x64"])
        .env_remove("IMG_SIZE")
        .env_remove("BATCH_SIZE")
        .current_dir(root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["device"], "cpu");
    // The CPU compiles and tunes nothing: no cache.
    assert!(v["kernel_cache"].is_null(), "{v:#}");
    let shapes = v["shapes"].as_array().unwrap();
    let seen: Vec<(String, serde_json::Value, serde_json::Value)> = shapes
        .iter()
        .map(|s| {
            (
                s["role"].as_str().unwrap().to_string(),
                s["frame"].clone(),
                s["input"].clone(),
            )
        })
        .collect();
    // 64x48 at imgsz 320 letterboxes (scaled up, minimal rectangle) to 320x256, 96x64 to
    // 320x224 (213 rows padded to a multiple of 32).
    let want = |role: &str, frame: [u32; 2], input: [u32; 2]| {
        (
            role.to_string(),
            serde_json::json!(frame),
            serde_json::json!(input),
        )
    };
    assert_eq!(
        seen,
        vec![
            want("players", [64, 48], [320, 256]),
            want("players", [96, 64], [320, 224]),
            want("pitch", [64, 48], [320, 256]),
            want("pitch", [96, 64], [320, 224]),
        ],
        "{v:#}"
    );
    for s in shapes {
        assert_eq!(s["batch"], 4);
        assert_eq!(s["precision"], "fp32");
        assert!(s["seconds"].as_f64().unwrap() > 0.0);
    }
    // One line per shape with its time (the bar is hidden without a terminal).
    assert_eq!(stderr.matches(" fp32: ").count(), 4, "{stderr}");
}

#[test]
fn tune_says_what_is_wrong_with_a_frame_size() {
    let out = Command::new(env!("CARGO_BIN_EXE_pitchside"))
        .args(["tune", "--frame", "1920"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`1920` is not WIDTHxHEIGHT"), "{stderr}");
}
