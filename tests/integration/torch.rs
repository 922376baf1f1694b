//! `pitchside run --device torch:cpu` (LibTorch through burn-tch) against the NHWC
//! executor's answer on the same clip and deployment: the same objects and keypoints,
//! within what two f32 implementations of the same network can differ by.

use std::process::Command;

use serde_json::Value;

use crate::support::root;

/// `pitchside run` of vtest on the 320-px test deployment, every 3rd frame, on `device`.
fn run_on(device: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_pitchside"))
        .args([
            "run",
            "--config",
            "tests/fixtures/deployments/vtest-320.yaml",
            "--device",
            device,
            "assets/vtest.avi",
        ])
        .env("FRAME_STRIDE", "3")
        .env_remove("PITCHSIDE_DEVICE")
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "run on {device}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn bbox(o: &Value) -> [f64; 4] {
    let b: Vec<f64> = o["bbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    [b[0], b[1], b[2], b[3]]
}

fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let i = w * h;
    let u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i;
    if u <= 0.0 { 0.0 } else { i / u }
}

#[test]
fn run_on_torch_cpu_gives_the_nhwc_executors_answer() {
    let nhwc = run_on("cpu");
    let torch = run_on("torch:cpu");
    let (a, b) = (
        nhwc["frames"].as_array().unwrap(),
        torch["frames"].as_array().unwrap(),
    );
    assert_eq!(a.len(), 795, "an entry per source frame");
    assert_eq!(a.len(), b.len());

    // Objects: matched frame by frame by class and IoU; the tracker ids of matched objects
    // must map one to one (the same tracks, whatever their numbers).
    let (mut objects, mut matched, mut worst_iou) = (0usize, 0usize, 1f64);
    let mut ids = std::collections::BTreeMap::new();
    // Keypoints: the same ones seen (non-zero) and, where both see one, the same place.
    let (mut kpts, mut kpt_agree, mut worst_px) = (0usize, 0usize, 0f64);
    for (fa, fb) in a.iter().zip(b) {
        assert_eq!(fa["frame_number"], fb["frame_number"]);
        let ob = fb["objects"].as_array().unwrap();
        let mut used = vec![false; ob.len()];
        for o in fa["objects"].as_array().unwrap() {
            objects += 1;
            let best = ob
                .iter()
                .enumerate()
                .filter(|(j, p)| !used[*j] && p["class_id"] == o["class_id"])
                .map(|(j, p)| (j, iou(&bbox(o), &bbox(p))))
                .max_by(|x, y| x.1.total_cmp(&y.1));
            if let Some((j, v)) = best.filter(|(_, v)| *v >= 0.95) {
                used[j] = true;
                matched += 1;
                worst_iou = worst_iou.min(v);
                let (ia, ib) = (o["id"].as_u64().unwrap(), ob[j]["id"].as_u64().unwrap());
                assert_eq!(
                    *ids.entry(ia).or_insert(ib),
                    ib,
                    "frame {}: track {ia} on cpu is another track on torch:cpu",
                    fa["frame_number"]
                );
            }
        }
        let (ka, kb) = (
            fa["keypoints"].as_array().unwrap(),
            fb["keypoints"].as_array().unwrap(),
        );
        assert_eq!(ka.len(), kb.len());
        for (p, q) in ka.iter().zip(kb) {
            let p: Vec<f64> = p
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let q: Vec<f64> = q
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let (seen_p, seen_q) = (p != [0.0, 0.0], q != [0.0, 0.0]);
            kpts += usize::from(seen_p || seen_q);
            if seen_p && seen_q {
                kpt_agree += 1;
                worst_px = worst_px.max((p[0] - q[0]).abs().max((p[1] - q[1]).abs()));
            }
        }
    }
    eprintln!(
        "torch:cpu vs cpu: {matched}/{objects} objects matched (worst IoU {worst_iou:.4}), \
         {kpt_agree}/{kpts} keypoints seen by both (worst {worst_px:.3} px)"
    );
    assert!(objects > 500, "vtest has people in most frames ({objects})");
    assert!(
        matched as f64 >= 0.995 * objects as f64,
        "{matched} of {objects} objects matched at IoU >= 0.95"
    );
    assert!(worst_iou >= 0.99, "worst IoU {worst_iou}");
    assert!(kpts > 0, "the pose model sees keypoints on vtest");
    assert!(
        kpt_agree as f64 >= 0.99 * kpts as f64,
        "{kpt_agree} of {kpts} keypoints seen by both"
    );
    assert!(worst_px <= 1.0, "a keypoint moved {worst_px} px");
}

#[test]
fn devices_lists_libtorch() {
    let out = Command::new(env!("CARGO_BIN_EXE_pitchside"))
        .arg("devices")
        .env_remove("PITCHSIDE_DEVICE")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("torch:cpu"), "{text}");
    assert!(text.contains("torch:cpu  torch:cpu (LibTorch"), "{text}");
    // No GPU here: LibTorch says so instead of failing.
    if !text.contains("torch:cuda:0") {
        assert!(text.contains("sees no CUDA device"), "{text}");
    }
    // `auto` keeps the NHWC executor on the CPU.
    assert!(
        text.contains("-> cpu") || text.contains("-> torch:cuda"),
        "{text}"
    );
}

#[test]
fn an_unavailable_torch_device_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_pitchside"))
        .args([
            "run",
            "--config",
            "tests/fixtures/deployments/vtest-320.yaml",
            "--device",
            "torch:mps",
            "assets/vtest.avi",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("torch:mps") && err.contains("MPS"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A pool of torch:cpu pipelines shares the cores as the NHWC executor's pipelines do:
/// LibTorch's CPU threads (one OpenMP pool for the process, which a slot's rayon pool does
/// not bound) are set to a slot's share, so two pipelines on two cores use one each.
#[test]
fn a_torch_cpu_pool_sets_libtorchs_threads_to_a_slots_share() {
    use pitchside_engine::load::{Slots, resolve};
    use pitchside_engine::{Backend, DeviceRequest};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pool.yaml");
    let text = std::fs::read_to_string(root().join("tests/fixtures/deployments/vtest-320.yaml"))
        .unwrap()
        .replace(
            "../../../assets/",
            &format!("{}/", root().join("assets").display()),
        )
        .replace(
            "    frame_stride: 1",
            "    frame_stride: 1\n    pipelines_per_device: 2\n    cpu_threads: 2",
        );
    std::fs::write(&config, text).unwrap();
    let resolved = resolve(
        Some(&config),
        Some(DeviceRequest::Backend(Backend::TorchCpu)),
    )
    .unwrap();
    let pool = resolved.load(Slots::Deployment).unwrap();
    assert_eq!(pool.len(), 2);
    assert_eq!(pitchside_models::torch::cpu_threads(), 1);
}
