//! The host loader against libraries that misbehave in every way the ABI allows: each must
//! give a clear error naming the library, and the process must carry on.

use std::path::PathBuf;

use pitchside_plugin::host::{self, LoadError, SanitizeReport, SharedDetector, SharedTracker};
use pitchside_plugin::serde_json::{Value, json};
use pitchside_plugin::{
    Detection, Detector, FrameRef, PixelFormat, PluginError, PluginKind, Tracker, abi,
};

use crate::support;

const W: u32 = 64;
const H: u32 = 48;

fn misbehaving() -> PathBuf {
    support::debug().lib("pitchside_test_plugins")
}

fn example(name: &str) -> PathBuf {
    support::debug().example(name)
}

fn pixels() -> Vec<u8> {
    vec![128; (W * H * 3) as usize]
}

fn frame(data: &[u8], frame_number: u64) -> FrameRef<'_> {
    FrameRef {
        data,
        width: W,
        height: H,
        row_stride: (W * 3) as usize,
        format: PixelFormat::Bgr8,
        frame_number,
    }
}

fn detector(mode: &str) -> SharedDetector {
    SharedDetector::load(misbehaving(), &json!({ "mode": mode })).unwrap()
}

fn load_err(path: PathBuf, params: Value) -> LoadError {
    match host::load_detector(path, &params) {
        Ok(_) => panic!("loading should fail"),
        Err(e) => e,
    }
}

/// After every failure: the same library still loads and works, so the process (and the
/// plugin) survived.
fn assert_alive() {
    let data = pixels();
    let mut d = host::load_detector(misbehaving(), &json!({})).unwrap();
    let out = d.detect(&[frame(&data, 0)]).unwrap();
    assert_eq!(out[0][0].bbox, [16.0, 12.0, 48.0, 36.0]);
}

#[test]
fn a_well_behaved_plugin_works_like_a_trait_object() {
    let data = pixels();
    let mut d = host::load_detector(misbehaving(), &json!({})).unwrap();
    let info = d.info();
    assert_eq!(info.name, "misbehaving-detector");
    assert_eq!(info.kind, PluginKind::Detector);
    assert_eq!(d.num_keypoints(), 0);
    let out = d.detect(&[frame(&data, 0), frame(&data, 1)]).unwrap();
    let expected = Detection {
        bbox: [16.0, 12.0, 48.0, 36.0],
        score: 0.9,
        class_id: 0,
        keypoints: vec![],
    };
    assert_eq!(out, vec![vec![expected.clone()], vec![expected]]);
    assert!(d.detect(&[]).unwrap().is_empty());
}

#[test]
fn missing_file() {
    let path = support::debug().dir().join("no-such-plugin.so");
    let err = load_err(path.clone(), json!({}));
    assert!(matches!(err, LoadError::NotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("not found"),
        "{msg}"
    );
}

#[test]
fn a_file_that_is_not_a_shared_library() {
    let path = support::debug().dir().join("not-a-library.so");
    std::fs::write(&path, b"just text").unwrap();
    let err = load_err(path.clone(), json!({}));
    assert!(matches!(err, LoadError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_alive();
}

#[test]
fn a_library_without_the_entry_symbol() {
    let path = example("not_a_plugin");
    let err = load_err(path.clone(), json!({}));
    assert!(matches!(err, LoadError::NotAPlugin { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains("is not a Pitchside plugin") && msg.contains(abi::ENTRY_SYMBOL),
        "{msg}"
    );
    assert!(matches!(
        host::inspect(&path),
        Err(LoadError::NotAPlugin { .. })
    ));
    assert_alive();
}

#[test]
fn an_abi_version_mismatch_names_both_versions() {
    let path = example("abi_mismatch");
    let err = load_err(path.clone(), json!({}));
    assert!(
        matches!(
            err,
            LoadError::AbiVersionMismatch {
                found: 999,
                expected: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("ABI version 999") && msg.contains("ABI version 1"),
        "{msg}"
    );
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert_alive();
}

#[test]
fn a_descriptor_smaller_than_the_abi_is_refused() {
    let err = load_err(example("wrong_struct_size"), json!({}));
    assert!(
        matches!(
            err,
            LoadError::WrongStructSize {
                found: 40,
                expected: abi::DESCRIPTOR_SIZE,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("struct_size is 40 bytes"), "{err}");
    assert_alive();
}

#[test]
fn a_descriptor_with_appended_fields_is_accepted() {
    let path = example("grown_descriptor");
    let desc = host::inspect(&path).unwrap();
    assert_eq!(desc.struct_size, abi::DESCRIPTOR_SIZE + 8);
    assert_eq!(desc.abi_version, abi::ABI_VERSION);
    let data = pixels();
    let mut d = host::load_detector(&path, &json!({})).unwrap();
    assert_eq!(
        d.detect(&[frame(&data, 0)]).unwrap()[0][0].bbox,
        [0.0, 0.0, 64.0, 48.0]
    );
}

#[test]
fn inspect_describes_without_creating() {
    // Reads the descriptor only; no instance is created.
    let desc = host::inspect(misbehaving()).unwrap();
    assert_eq!(desc.info.name, "misbehaving-detector");
    assert_eq!(desc.info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(desc.info.kind, PluginKind::Detector);
    assert_eq!(desc.abi_version, 1);
    assert_eq!(desc.struct_size, abi::DESCRIPTOR_SIZE);
    let tracker = host::inspect(example("echo_tracker")).unwrap();
    assert_eq!(tracker.info.kind, PluginKind::Tracker);
    assert_eq!(tracker.info.name, "echo-tracker");
}

#[test]
fn the_wrong_kind_is_refused() {
    let err = load_err(example("echo_tracker"), json!({}));
    assert!(
        matches!(
            err,
            LoadError::WrongKind {
                found: PluginKind::Tracker,
                expected: PluginKind::Detector,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("is a tracker, not a detector"),
        "{err}"
    );
    let err = host::load_tracker(misbehaving(), &json!({})).err().unwrap();
    assert!(matches!(err, LoadError::WrongKind { .. }), "{err:?}");
}

#[test]
fn a_create_error_carries_the_plugin_message() {
    let err = load_err(misbehaving(), json!({ "mode": "error_in_create" }));
    assert!(matches!(err, LoadError::CreateFailed { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("create failed: asked to fail in create"),
        "{msg}"
    );
    assert!(
        msg.contains("misbehaving-detector") && msg.contains("pitchside_test_plugins"),
        "{msg}"
    );
    assert_alive();
}

#[test]
fn invalid_params_say_so() {
    let err = load_err(misbehaving(), json!({ "mode": "dance" }));
    assert!(
        err.to_string()
            .contains("create failed: invalid parameters: unknown mode `dance`"),
        "{err}"
    );
}

#[test]
fn a_panic_in_create_is_contained() {
    let err = load_err(misbehaving(), json!({ "mode": "panic_in_create" }));
    assert!(matches!(err, LoadError::CreatePanicked { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("panicked in create: asked to panic in create"),
        "{err}"
    );
    assert_alive();
}

#[test]
fn a_process_error_leaves_the_handle_usable() {
    let data = pixels();
    let mut d =
        SharedDetector::load(misbehaving(), &json!({"mode": "error", "fail_on_frame": 1})).unwrap();
    let err = d.detect(&[frame(&data, 1)]).unwrap_err();
    assert!(matches!(err, PluginError::Failed(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("asked to fail on frame 1") && msg.contains("misbehaving-detector"),
        "{msg}"
    );
    assert!(msg.contains("pitchside_test_plugins"), "{msg}");
    // An error is not a panic: the next frame goes through.
    assert_eq!(d.detect(&[frame(&data, 2)]).unwrap()[0].len(), 1);
}

#[test]
fn a_panic_in_process_is_contained_and_poisons_the_handle() {
    let data = pixels();
    let mut d =
        SharedDetector::load(misbehaving(), &json!({"mode": "panic", "fail_on_frame": 3})).unwrap();
    assert_eq!(d.detect(&[frame(&data, 2)]).unwrap()[0].len(), 1);
    let err = d.detect(&[frame(&data, 3)]).unwrap_err();
    assert!(matches!(err, PluginError::Panicked(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("plugin panicked: plugin `misbehaving-detector`"),
        "{err}"
    );
    assert!(
        err.to_string().contains("asked to panic on frame 3"),
        "{err}"
    );
    // The plugin's state is unknown after a panic: the adapter does not call it again.
    let again = d.detect(&[frame(&data, 4)]).unwrap_err();
    assert!(matches!(again, PluginError::Panicked(_)), "{again:?}");
    assert!(again.to_string().contains("panicked earlier"), "{again}");
    drop(d);
    assert_alive();
}

#[test]
fn a_panic_on_another_thread_is_contained_too() {
    let handle = std::thread::spawn(|| {
        let data = pixels();
        let mut d = detector("panic");
        d.detect(&[frame(&data, 0)]).unwrap_err().to_string()
    });
    let msg = handle.join().expect("the thread itself did not panic");
    assert!(msg.contains("asked to panic on frame 0"), "{msg}");
}

#[test]
fn boxes_outside_the_frame_are_clipped_or_dropped() {
    let data = pixels();
    let mut d = detector("out_of_frame");
    let out = d.detect(&[frame(&data, 0)]).unwrap();
    let boxes: Vec<_> = out[0].iter().map(|d| (d.bbox, d.score)).collect();
    // Sorted by score; the wholly outside and the inverted boxes are gone.
    assert_eq!(
        boxes,
        vec![
            ([1.0, 2.0, 3.0, 4.0], 0.9),
            ([54.0, 38.0, 64.0, 48.0], 0.8),
            ([0.0, 0.0, 10.0, 10.0], 0.5),
        ]
    );
    assert_eq!(
        d.report(),
        SanitizeReport {
            clipped: 2,
            dropped_empty: 2,
            dropped_non_finite: 0
        }
    );
}

#[test]
fn nan_and_infinite_values_are_rejected() {
    let data = pixels();
    let mut d =
        SharedDetector::load(misbehaving(), &json!({"mode": "nan", "num_keypoints": 2})).unwrap();
    let out = d.detect(&[frame(&data, 0), frame(&data, 1)]).unwrap();
    for list in &out {
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0].score, 0.25);
        assert!(list[0].keypoints.iter().flatten().all(|v| v.is_finite()));
    }
    // NaN score, infinite box, NaN keypoint, per frame.
    assert_eq!(d.report().dropped_non_finite, 6);
}

#[test]
fn keypoints_cross_the_boundary() {
    let data = pixels();
    let mut d = host::load_detector(misbehaving(), &json!({"num_keypoints": 3})).unwrap();
    assert_eq!(d.num_keypoints(), 3);
    let out = d.detect(&[frame(&data, 0)]).unwrap();
    assert_eq!(
        out[0][0].keypoints,
        vec![[32.0, 24.0, 1.0], [32.0, 25.0, 1.0], [32.0, 26.0, 1.0]]
    );
}

#[test]
fn a_keypoint_count_mismatch_is_an_error() {
    let data = pixels();
    let mut d = host::load_detector(
        misbehaving(),
        &json!({"mode": "bad_keypoints", "num_keypoints": 2}),
    )
    .unwrap();
    let err = d.detect(&[frame(&data, 0)]).unwrap_err();
    assert!(
        err.to_string()
            .contains("has 1 keypoints but the detector declares 2"),
        "{err}"
    );
}

#[test]
fn malformed_output_from_a_raw_abi_plugin_is_rejected() {
    let data = pixels();
    let frames = [frame(&data, 0), frame(&data, 1)];
    let path = example("raw_abi");
    let mut ok = host::load_detector(&path, &json!({})).unwrap();
    let out = ok.detect(&frames).unwrap();
    assert_eq!(out[1][0].class_id, 7);
    for (mode, expected) in [
        ("wrong_frame_count", "3 detection lists for 2 frames"),
        (
            "bad_counts",
            "frame_counts add up to 2, num_detections is 0",
        ),
        ("null_detections", "detections is null but its length is 2"),
    ] {
        let mut d = host::load_detector(&path, &json!({ "mode": mode })).unwrap();
        let err = d.detect(&frames).unwrap_err();
        assert!(matches!(err, PluginError::Failed(_)), "{mode}: {err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("malformed output") && msg.contains(expected),
            "{mode}: {msg}"
        );
        assert!(msg.contains("raw_abi"), "{msg}");
    }
}

#[test]
fn unknown_status_codes_read_as_failures() {
    let data = pixels();
    let mut d = host::load_detector(example("raw_abi"), &json!({"mode": "weird_status"})).unwrap();
    let err = d.detect(&[frame(&data, 0)]).unwrap_err();
    assert!(matches!(err, PluginError::Failed(_)), "{err:?}");
    assert!(
        err.to_string().contains("status 77 is not in the ABI"),
        "{err}"
    );
}

#[test]
fn success_without_a_handle_is_a_create_failure() {
    let err = load_err(example("raw_abi"), json!({"mode": "no_handle"}));
    assert!(
        err.to_string()
            .contains("create reported success but returned no handle"),
        "{err}"
    );
}

#[test]
fn invalid_frames_are_rejected_before_the_plugin() {
    let data = pixels();
    let mut d = detector("ok");
    let short = FrameRef {
        data: &data[..100],
        ..frame(&data, 0)
    };
    let err = d.detect(&[short]).unwrap_err();
    assert!(matches!(err, PluginError::InvalidInput(_)), "{err:?}");
}

#[test]
fn handles_run_concurrently_on_different_threads() {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            // The adapter is Send: created here, used there.
            let mut d = host::load_detector(misbehaving(), &json!({})).unwrap();
            std::thread::spawn(move || {
                let data = pixels();
                for n in 0..200 {
                    let out = d.detect(&[frame(&data, t * 1000 + n)]).unwrap();
                    assert_eq!(out[0].len(), 1);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn the_same_library_loads_once() {
    // A second path to the same file (`dir/./lib`) reuses the library loaded for the first.
    let a = host::inspect(misbehaving()).unwrap();
    let dotted = support::debug()
        .dir()
        .join(".")
        .join(misbehaving().file_name().unwrap());
    let b = host::inspect(&dotted).unwrap();
    assert_eq!(a.info, b.info);
}

fn det(bbox: [f32; 4], keypoints: usize) -> Detection {
    Detection {
        bbox,
        score: 0.5,
        class_id: 2,
        keypoints: vec![[1.0, 2.0, 3.0]; keypoints],
    }
}

#[test]
fn a_tracker_round_trips_and_fails_cleanly() {
    let path = example("echo_tracker");
    let mut t = host::load_tracker(&path, &json!({})).unwrap();
    assert_eq!(t.info().name, "echo-tracker");
    let objects = t
        .update(
            5,
            &[det([1.0, 2.0, 3.0, 4.0], 0), det([5.0, 6.0, 7.0, 8.0], 0)],
        )
        .unwrap();
    assert_eq!(objects.len(), 2);
    assert_eq!((objects[1].id, objects[1].bbox), (2, [5.0, 6.0, 7.0, 8.0]));
    // Keypoints are flattened and rebuilt: the echo tracker puts their count in the id.
    assert_eq!(
        t.update(6, &[det([1.0, 2.0, 3.0, 4.0], 17)]).unwrap()[0].id,
        1701
    );
    t.reset();
    assert_eq!(
        t.update(7, &[det([1.0, 2.0, 3.0, 4.0], 0)]).unwrap()[0].id,
        1001
    );
    let mixed = t.update(
        8,
        &[det([1.0, 2.0, 3.0, 4.0], 1), det([1.0, 2.0, 3.0, 4.0], 0)],
    );
    assert!(
        matches!(mixed, Err(PluginError::InvalidInput(_))),
        "{mixed:?}"
    );

    let mut failing = host::load_tracker(&path, &json!({"mode": "error"})).unwrap();
    let err = failing.update(3, &[]).unwrap_err();
    assert!(err.to_string().contains("no tracks on frame 3"), "{err}");

    let mut nan = SharedTracker::load(&path, &json!({"mode": "nan"})).unwrap();
    assert_eq!(
        nan.update(1, &[det([1.0, 2.0, 3.0, 4.0], 0)])
            .unwrap()
            .len(),
        1
    );
    assert_eq!(nan.report().dropped_non_finite, 1);

    let mut panicking = host::load_tracker(&path, &json!({"mode": "panic"})).unwrap();
    let err = panicking.update(9, &[]).unwrap_err();
    assert!(matches!(err, PluginError::Panicked(_)), "{err:?}");
    assert!(
        err.to_string().contains("tracker panicked on frame 9"),
        "{err}"
    );
    panicking.reset(); // Poisoned: logged, not called, no crash.

    let mut bad_reset = SharedTracker::load(&path, &json!({"mode": "panic_in_reset"})).unwrap();
    let err = bad_reset.try_reset().unwrap_err();
    assert!(err.to_string().contains("reset refused"), "{err}");
    assert_alive();
}
