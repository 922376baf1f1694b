use std::path::Path;

use pitchside_plugin::PixelFormat;

use super::*;

/// A real checkpoint from `assets/` (scripts/fetch-assets.sh).
fn asset(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets")
        .join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/fetch-assets.sh",
        p.display()
    );
    p
}

fn spec(name: &str, task: Task) -> ModelSpec {
    ModelSpec {
        path: asset(name),
        task,
        class_map: None,
        names: None,
    }
}

fn small() -> PredictOptions {
    PredictOptions {
        imgsz: 64,
        ..Default::default()
    }
}

fn load(spec: &ModelSpec) -> Result<YoloDetector, YoloError> {
    YoloDetector::load(spec, small(), ModelDevice::Cpu)
}

#[test]
fn class_map_renames_and_drops() {
    let d = |c| Detection {
        bbox: [0.0; 4],
        score: 0.5,
        class_id: c,
        keypoints: vec![],
    };
    let mut dets = vec![d(0), d(2), d(5)];
    apply_class_map(&mut dets, &BTreeMap::from([(2, 2), (5, 0)]));
    assert_eq!(
        dets.iter().map(|d| d.class_id).collect::<Vec<_>>(),
        vec![2, 0]
    );
}

#[test]
fn the_declared_task_must_be_the_checkpoints() {
    let err = load(&spec("yolo11n-pose.pt", Task::Detect))
        .err()
        .expect("a pose checkpoint declared `task: detect` must not load");
    let msg = err.to_string();
    assert!(matches!(err, YoloError::TaskMismatch { .. }), "{msg}");
    assert!(
        msg.contains("yolo11n-pose.pt is a pose checkpoint (17 keypoints)")
            && msg.contains("`task: detect`"),
        "{msg}"
    );
    let msg = load(&spec("yolov8n-railway.pt", Task::Pose))
        .err()
        .expect("a detect checkpoint declared `task: pose` must not load")
        .to_string();
    assert!(
        msg.contains("is a detect checkpoint, but the deployment declares `task: pose`"),
        "{msg}"
    );
    assert_eq!(
        load(&spec("yolo11n-pose.pt", Task::Pose))
            .unwrap()
            .num_keypoints(),
        17
    );
}

#[test]
fn declared_names_are_checked_against_the_checkpoint() {
    // yolov8n-railway.pt: 0 Animal, 1 Car, 2 Person, 3 Rock, 4 Trash, 5 Tree.
    let mut s = spec("yolov8n-railway.pt", Task::Detect);
    s.names = Some(BTreeMap::from([(2, "person".into()), (1, " Car".into())]));
    load(&s).expect("the checkpoint's names, up to case and blanks");

    s.names = Some(BTreeMap::from([(0, "ball".into())]));
    let msg = load(&s).err().expect("class 0 is Animal").to_string();
    assert!(
        msg.contains("names class 0 `ball`, but the checkpoint calls it `Animal`"),
        "{msg}"
    );

    s.names = Some(BTreeMap::from([(6, "referee".into())]));
    let msg = load(&s).err().expect("class 6 does not exist").to_string();
    assert!(msg.contains("has only 6 classes"), "{msg}");
}

#[test]
fn params_override_the_profile_and_unknown_ones_are_errors() {
    let p =
        YoloParams::from_json(&serde_json::json!({"conf_threshold": 0.6, "agnostic_nms": true}))
            .unwrap();
    let o = p.apply(small());
    assert_eq!((o.nms.conf, o.nms.agnostic), (0.6, true));
    assert_eq!(o.nms.iou, small().nms.iou);
    assert_eq!(
        YoloParams::from_json(&serde_json::Value::Null).unwrap(),
        YoloParams::default()
    );
    for (bad, why) in [
        (serde_json::json!({"conf": 0.5}), "unknown field `conf`"),
        (
            serde_json::json!({"iou_threshold": 1.5}),
            "iou_threshold must be within [0, 1]",
        ),
        (
            serde_json::json!({"max_detections": 0}),
            "max_detections must be at least 1",
        ),
    ] {
        let msg = YoloParams::from_json(&bad).unwrap_err().to_string();
        assert!(msg.contains(why), "{bad}: {msg}");
    }
}

#[test]
fn stage_times_are_those_since_they_were_last_taken() {
    let mut d = load(&spec("yolov8n-railway.pt", Task::Detect)).unwrap();
    assert_eq!(d.take_stage_times(), Some(StageTimes::default()));
    let data = vec![114u8; 64 * 48 * 3];
    let frame = FrameRef {
        data: &data,
        width: 64,
        height: 48,
        row_stride: 64 * 3,
        format: PixelFormat::Bgr8,
        frame_number: 0,
    };
    d.detect(&[frame]).unwrap();
    let first = d.take_stage_times().unwrap();
    assert!(first.forward > std::time::Duration::ZERO, "{first:?}");
    // Taken means gone: the next caller sees only what ran after.
    assert_eq!(d.take_stage_times(), Some(StageTimes::default()));
    d.detect(&[frame]).unwrap();
    d.detect(&[frame]).unwrap();
    let two = d.take_stage_times().unwrap();
    assert!(two.forward > std::time::Duration::ZERO, "{two:?}");
}

/// A frame the engine already scaled to `input_size` is letterboxed with the same geometry
/// (only padded), so the network sees what it sees from the full frame, and the detections
/// scale back to the source by the ratio of the sizes.
#[test]
fn a_frame_prescaled_to_the_input_size_gets_the_same_network_input() {
    for (w, h) in [
        (1920, 1080),
        (768, 576),
        (810, 1080),
        (101, 37),
        (3, 7),
        (6000, 4000),
    ] {
        for (imgsz, rect) in [(640, true), (1024, true), (640, false)] {
            let full = Letterbox::new(w, h, imgsz, rect, 32);
            let pre = Letterbox::new(full.new_w, full.new_h, imgsz, rect, 32);
            assert_eq!(
                (
                    pre.new_w, pre.new_h, pre.top, pre.bottom, pre.left, pre.right
                ),
                (
                    full.new_w,
                    full.new_h,
                    full.top,
                    full.bottom,
                    full.left,
                    full.right
                ),
                "{w}x{h} at {imgsz}"
            );
        }
    }
    let opts = PredictOptions {
        imgsz: 640,
        ..Default::default()
    };
    let d =
        YoloDetector::load(&spec("yolo11n-pose.pt", Task::Pose), opts, ModelDevice::Cpu).unwrap();
    let image =
        opencv::imgcodecs::imread(asset("zidane.jpg"), opencv::imgcodecs::IMREAD_COLOR).unwrap();
    use opencv::prelude::*;
    let (w, h) = (image.cols() as u32, image.rows() as u32);
    let (pw, ph) = d.input_size(w, h).unwrap();
    assert_eq!((w, h, pw, ph), (1280, 720, 640, 360));
    // The padded network input (what the warm-up and `tune` show): 360 padded to 384.
    assert_eq!(d.network_input(w, h), Some((640, 384)));
    assert_eq!(d.network_input(1920, 1080), Some((640, 384)));
    assert_eq!(d.network_input(768, 576), Some((640, 480)));
    let mut small = opencv::core::Mat::default();
    opencv::imgproc::resize(
        &image,
        &mut small,
        opencv::core::Size::new(pw as i32, ph as i32),
        0.0,
        0.0,
        opencv::imgproc::INTER_LINEAR,
    )
    .unwrap();
    let frame = |m: &opencv::core::Mat| -> Vec<u8> { m.data_bytes().unwrap().to_vec() };
    let (full_px, small_px) = (frame(&image), frame(&small));
    fn as_ref(data: &[u8], w: u32, h: u32) -> FrameRef<'_> {
        FrameRef {
            data,
            width: w,
            height: h,
            row_stride: w as usize * 3,
            format: PixelFormat::Bgr8,
            frame_number: 0,
        }
    }
    let (a, shape_a, _) = YoloModel::preprocess(&[as_ref(&full_px, w, h)], &opts).unwrap();
    let (b, shape_b, _) = YoloModel::preprocess(&[as_ref(&small_px, pw, ph)], &opts).unwrap();
    assert_eq!(shape_a, shape_b);
    assert!(a == b, "the network input differs");
    let mut d = d;
    let on_full = d.detect(&[as_ref(&full_px, w, h)]).unwrap();
    let on_small = d.detect(&[as_ref(&small_px, pw, ph)]).unwrap();
    assert!(!on_full[0].is_empty());
    assert_eq!(on_full[0].len(), on_small[0].len());
    for (f, s) in on_full[0].iter().zip(&on_small[0]) {
        assert_eq!((f.class_id, f.score), (s.class_id, s.score));
        for k in 0..4 {
            assert!((f.bbox[k] - s.bbox[k] * 2.0).abs() < 0.01, "{f:?} vs {s:?}");
        }
        assert_eq!(f.keypoints.len(), s.keypoints.len());
        for (a, b) in f.keypoints.iter().zip(&s.keypoints) {
            assert!((a[0] - b[0] * 2.0).abs() < 0.01 && (a[1] - b[1] * 2.0).abs() < 0.01);
        }
    }
}
