use std::path::PathBuf;

use super::*;
use crate::config::{ConfigSource, EnvOverrides};

/// The checkout's `assets/` (scripts/fetch-assets.sh).
fn assets() -> PathBuf {
    let p = crate::test_support::workspace_root().join("assets");
    assert!(
        p.join("yolo11n-pose.pt").is_file(),
        "assets missing: run scripts/fetch-assets.sh"
    );
    p
}

/// A deployment over the demo weights whose `players` model is `players`.
fn deployment(players: &str, detectors: &str) -> Deployment {
    let yaml = format!(
        "models:\n  players:\n{players}\n  pitch:\n    path: yolo11n-pose.pt\n    task: pose\npipeline:\n  detectors:\n{detectors}\n  tracker:\n    plugin: bytetrack\nprofiles:\n  cpu:\n    imgsz: {{ players: 64, pitch: 64, ball: 64 }}\n"
    );
    Deployment::parse(&yaml, ConfigSource::File("t.yaml".into()), assets()).unwrap()
}

const BOTH: &str = "    - { role: players, plugin: yolo }\n    - { role: pitch, plugin: yolo }";

fn build(d: &Deployment) -> Result<Vec<DetectorSlot>, HostError> {
    let e = d.effective(Backend::Cpu, &EnvOverrides::default()).unwrap();
    build_detectors(d, &e, Backend::Cpu)
}

fn build_err(d: &Deployment) -> String {
    match build(d) {
        Ok(_) => panic!("the detectors were built"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn builtin_detectors_come_from_the_registry_with_their_params() {
    let d = deployment("    path: yolov8n-railway.pt\n    task: detect", BOTH);
    let slots = build(&d).unwrap();
    assert_eq!(
        slots
            .iter()
            .map(|s| (s.role, s.detector.info().name))
            .collect::<Vec<_>>(),
        vec![(Role::Players, "yolo".into()), (Role::Pitch, "yolo".into())]
    );
    assert_eq!(slots[1].detector.num_keypoints(), 17);

    let bad = deployment(
        "    path: yolov8n-railway.pt\n    task: detect",
        "    - { role: players, plugin: yolo, params: { conf: 0.5 } }",
    );
    let msg = build_err(&bad);
    assert!(
        msg.starts_with("detector for role players: model `players`: ")
            && msg.contains("unknown field `conf`"),
        "{msg}"
    );
}

#[test]
fn a_pose_checkpoint_declared_detect_is_an_error_naming_model_and_role() {
    // Not the pitch role: nothing else would catch it.
    let d = deployment("    path: yolo11n-pose.pt\n    task: detect", BOTH);
    let msg = build_err(&d);
    assert!(
        msg.starts_with("detector for role players: model `players`: ")
            && msg.contains("yolo11n-pose.pt is a pose checkpoint (17 keypoints), but the deployment declares `task: detect`"),
        "{msg}"
    );
    let d = deployment(
        "    path: yolo11n-pose.pt\n    task: detect",
        "    - { role: ball, model: players, plugin: yolo }",
    );
    let msg = build_err(&d);
    assert!(
        msg.starts_with("detector for role ball: model `players`: "),
        "{msg}"
    );
}

#[test]
fn declared_class_names_must_be_the_checkpoints() {
    let d = deployment(
        "    path: yolov8n-railway.pt\n    task: detect\n    names: { 0: ball, 1: goalkeeper, 2: player, 3: referee }",
        BOTH,
    );
    let msg = build_err(&d);
    assert!(
        msg.starts_with("detector for role players: model `players`: ")
            && msg.contains("class 0 `ball`, but the checkpoint calls it `Animal`"),
        "{msg}"
    );
    let d = deployment(
        "    path: yolov8n-railway.pt\n    task: detect\n    names: { 2: Person }",
        BOTH,
    );
    build(&d).unwrap();
}

#[test]
fn the_pitch_role_needs_keypoints_whichever_model_it_runs() {
    let d = deployment(
        "    path: yolov8n-railway.pt\n    task: detect",
        "    - { role: pitch, model: players, plugin: yolo }",
    );
    let msg = build_err(&d);
    assert!(
        msg.contains("role pitch") && msg.contains("has no keypoints"),
        "{msg}"
    );
}

#[test]
fn builtin_trackers_come_from_the_registry() {
    let d = deployment("    path: yolov8n-railway.pt\n    task: detect", BOTH);
    let t = build_tracker(&d, &d.file.pipeline.tracker, 25.0).unwrap();
    assert_eq!(t.info().name, "bytetrack");
    let yaml = d.text.replace(
        "plugin: bytetrack",
        "plugin: bytetrack\n    params: { lost_track_buffer: -1 }",
    );
    let d = Deployment::parse(&yaml, ConfigSource::File("t.yaml".into()), assets()).unwrap();
    let msg = build_tracker(&d, &d.file.pipeline.tracker, 25.0)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.starts_with("tracker bytetrack: "), "{msg}");
}

#[test]
fn plugins_list_comes_from_the_registry() {
    let rows = list_plugins(None);
    assert_eq!(rows.len(), registry::BUILTINS.len());
    let table = plugins_table(None);
    for b in registry::BUILTINS {
        let line = table
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(b.name()))
            .unwrap_or_else(|| panic!("{} missing from\n{table}", b.name()));
        assert!(line.starts_with(&b.kind().to_string()), "{line}");
        assert!(
            line.contains("built-in") && line.contains(b.description()),
            "{line}"
        );
    }
}
