//! The main job on real data: vtest.avi (795 frames of people walking) through the real
//! person detector, pose model and ByteTrack.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use pitchside_engine::config::{Deployment, EnvOverrides};
use pitchside_engine::device::Backend;
use pitchside_engine::pipeline::{Pipeline, Response, RunOptions};

use crate::support::{plugin_lib, root, vtest, within};

fn pipeline(env: &[(&str, &str)], patch: &str) -> Pipeline {
    let path = root().join("tests/fixtures/deployments/vtest-320.yaml");
    let text = std::fs::read_to_string(&path).unwrap() + patch;
    let d = Deployment::parse(
        &text,
        pitchside_engine::config::ConfigSource::File(path.clone()),
        path.parent().unwrap().to_path_buf(),
    )
    .unwrap();
    d.check_files().unwrap();
    let env = EnvOverrides::read(env).unwrap();
    let e = d.effective(Backend::Cpu, &env).unwrap();
    Pipeline::load(d, e, Backend::Cpu).unwrap()
}

fn run(p: &mut Pipeline, video: &Path) -> Response {
    let opts = RunOptions {
        challenge_id: "test-challenge".into(),
        ..Default::default()
    };
    let video = p.admit(video).unwrap();
    p.run(&video, &opts).unwrap().0
}

/// Checks the Score Vision schema on the serialized JSON.
fn check_schema(r: &Response, frames: u64, keypoints: usize) {
    let v: serde_json::Value = serde_json::to_value(r).unwrap();
    assert_eq!(v["challenge_id"], "test-challenge");
    assert!(v["processing_time"].as_f64().unwrap() > 0.0);
    let fr = v["frames"].as_array().unwrap();
    assert_eq!(fr.len() as u64, frames);
    for (i, f) in fr.iter().enumerate() {
        assert_eq!(f["frame_number"].as_u64().unwrap(), i as u64);
        let k = f["keypoints"].as_array().unwrap();
        assert_eq!(k.len(), keypoints, "frame {i}: keypoints");
        for p in k {
            assert_eq!(p.as_array().unwrap().len(), 2);
        }
        let mut last_class = 0;
        for o in f["objects"].as_array().unwrap() {
            let obj = o.as_object().unwrap();
            assert_eq!(obj.len(), 3, "objects have id, bbox, class_id: {o}");
            assert!(o["id"].as_u64().unwrap() >= 1);
            let c = o["class_id"].as_u64().unwrap();
            assert!(
                c <= 3 && c >= last_class,
                "frame {i}: objects ordered by class"
            );
            last_class = c;
            let b: Vec<f64> = o["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            assert!(b[0] <= b[2] && b[1] <= b[3] && b[0] >= 0.0 && b[2] <= 768.0 && b[3] <= 576.0);
            for x in b {
                assert_eq!((x * 100.0).round() / 100.0, x, "2-decimal rounding");
            }
        }
    }
}

/// Longest run of consecutive processed frames over which one id is seen.
fn longest_track(r: &Response, stride: u64) -> (u64, u64) {
    let mut seen: HashMap<u64, Vec<u64>> = HashMap::new();
    for f in &r.frames {
        if f.frame_number % stride == 0 {
            for o in &f.objects {
                seen.entry(o.id).or_default().push(f.frame_number);
            }
        }
    }
    let mut best = (0, 0);
    for (id, frames) in seen {
        let mut run = 1;
        for w in frames.windows(2) {
            run = if w[1] == w[0] + stride { run + 1 } else { 1 };
            if run > best.1 {
                best = (id, run);
            }
        }
    }
    best
}

#[test]
fn vtest_stride_1_and_2_cover_every_source_frame_and_keep_ids() {
    let video = vtest();
    let mut p1 = pipeline(&[], "");
    let r1 = run(&mut p1, &video);
    assert!(!r1.partial, "{:?}", r1.error);
    check_schema(&r1, 795, 17);
    let (id, run1) = longest_track(&r1, 1);
    assert!(
        run1 >= 50,
        "a walking person keeps id {id} for only {run1} frames"
    );
    let objects: usize = r1.frames.iter().map(|f| f.objects.len()).sum();
    assert!(objects > 795, "people are detected: {objects} objects");

    let mut p2 = pipeline(&[("FRAME_STRIDE", "2")], "");
    let r2 = run(&mut p2, &video);
    assert!(!r2.partial, "{:?}", r2.error);
    check_schema(&r2, 795, 17);
    let (id, run2) = longest_track(&r2, 2);
    assert!(
        run2 >= 25,
        "stride 2: id {id} kept for only {run2} processed frames"
    );
    // Skipped frames carry interpolated boxes of tracks seen on both sides.
    let odd_with_objects = r2
        .frames
        .iter()
        .filter(|f| f.frame_number % 2 == 1 && !f.objects.is_empty())
        .count();
    assert!(
        odd_with_objects > 300,
        "interpolated frames: {odd_with_objects}"
    );
    // An interpolated box lies between its neighbours.
    let by_frame: BTreeMap<u64, &pitchside_engine::pipeline::FrameResult> =
        r2.frames.iter().map(|f| (f.frame_number, f)).collect();
    for f in r2
        .frames
        .iter()
        .filter(|f| f.frame_number % 2 == 1 && f.frame_number < 793)
    {
        for o in &f.objects {
            let a = by_frame[&(f.frame_number - 1)]
                .objects
                .iter()
                .find(|x| x.id == o.id);
            let b = by_frame[&(f.frame_number + 1)]
                .objects
                .iter()
                .find(|x| x.id == o.id);
            let (a, b) = (
                a.expect("track on the previous frame"),
                b.expect("and the next"),
            );
            for k in 0..4 {
                let mid = (a.bbox[k] + b.bbox[k]) / 2.0;
                assert!(
                    (o.bbox[k] - mid).abs() <= 0.011,
                    "frame {}: {:?} vs {:?}/{:?}",
                    f.frame_number,
                    o.bbox,
                    a.bbox,
                    b.bbox
                );
            }
        }
    }
}

#[test]
fn a_timeout_returns_the_frames_done_so_far() {
    let mut p = pipeline(&[], "    timeout_s: 2\n");
    let r = run(&mut p, &vtest());
    assert!(r.partial);
    assert!(
        r.error.as_deref().unwrap().contains("timed out"),
        "{:?}",
        r.error
    );
    let n = r.frames.len();
    assert!(n > 0 && n < 795, "{n} frames");
    check_schema(&r, n as u64, 17);
}

#[test]
fn a_video_past_max_video_frames_stops_there_with_the_frames_before_it() {
    // The admission refuses videos whose container declares too many frames (vtest.avi
    // declares its 795); one that declares none, as a raw H.264 stream, is held to the
    // bound while it decodes. The fixture: 12 frames at 320x240, then 12 at 1280x720.
    let mut p = pipeline(&[], "    max_video_frames: 8\n");
    assert!(p.admit(&vtest()).is_err());
    let r = run(
        &mut p,
        &root().join("tests/fixtures/hostile/size-change.h264"),
    );
    assert!(r.partial);
    let e = r.error.as_deref().unwrap();
    assert!(
        e.contains("more than 8 frames") && e.contains("max_video_frames"),
        "{e}"
    );
    // vtest-320 runs at stride 1: the 8 frames before the bound, every one answered.
    assert_eq!(r.frames.len(), 8, "{} frames", r.frames.len());
    check_schema(&r, 8, 17);
}

/// With `prefetch_frames: 1` the decoder is one frame ahead, so an early stop finds it
/// blocked sending the next frame: the run must still end (it deadlocked in the decoder's
/// drop). The watchdog turns a hang into a failure.
const DEADLOCK_WATCHDOG: Duration = Duration::from_secs(120);

#[test]
fn a_timeout_with_a_queue_of_one_returns_the_frames_done_so_far() {
    let r = within(DEADLOCK_WATCHDOG, "a run timing out, prefetch 1", || {
        let mut p = pipeline(&[("PREFETCH_FRAMES", "1")], "    timeout_s: 2\n");
        run(&mut p, &vtest())
    });
    assert!(r.partial);
    assert!(
        r.error.as_deref().unwrap().contains("timed out"),
        "{:?}",
        r.error
    );
    let n = r.frames.len();
    assert!(n > 0 && n < 795, "{n} frames");
    check_schema(&r, n as u64, 17);
}

#[test]
fn a_detector_error_with_a_queue_of_one_returns_the_frames_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("failing.yaml");
    std::fs::write(
        &cfg,
        format!(
            "device: cpu\nmodels: {{}}\npipeline:\n  detectors:\n    - role: players\n      library: {}\n      params: {{ mode: error, fail_on_frame: 9 }}\n  tracker:\n    plugin: bytetrack\nprofiles:\n  cpu:\n    batch_size: 4\n    frame_stride: 1\n    prefetch_frames: 1\n",
            plugin_lib("pitchside_test_plugins").display()
        ),
    )
    .unwrap();
    let r = within(
        DEADLOCK_WATCHDOG,
        "a run whose detector fails, prefetch 1",
        move || {
            let d = Deployment::from_file(&cfg).unwrap();
            d.check_files().unwrap();
            let e = d.effective(Backend::Cpu, &EnvOverrides::default()).unwrap();
            assert_eq!(e.profile.prefetch_frames, 1);
            let mut p = Pipeline::load(d, e, Backend::Cpu).unwrap();
            run(&mut p, &vtest())
        },
    );
    assert!(r.partial);
    let error = r.error.as_deref().unwrap();
    assert!(
        error.contains("players") && error.contains("asked to fail on frame 9"),
        "{error}"
    );
    // Batches 0-3 and 4-7 are done; the one holding frame 9 failed as a whole.
    check_schema(&r, 8, 32);
}

#[test]
fn a_truncated_file_ends_cleanly_with_an_error_flag() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.avi");
    let bytes = std::fs::read(vtest()).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 5]).unwrap();
    let mut p = pipeline(&[], "");
    let r = run(&mut p, &cut);
    let n = r.frames.len();
    assert!(n > 50 && n < 795, "{n} frames");
    assert!(r.partial, "the result says it is incomplete");
    assert!(
        r.error.as_deref().unwrap().contains("truncated"),
        "{:?}",
        r.error
    );
    check_schema(&r, n as u64, 17);
}

#[test]
fn non_video_and_empty_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("readme.mp4");
    std::fs::write(&text, "not a video\n".repeat(100)).unwrap();
    let p = pipeline(&[], "");
    let e = p.admit(&text).err().unwrap().to_string();
    assert!(
        e.contains("readme.mp4") && (e.contains("not a video") || e.contains("no decodable")),
        "{e}"
    );

    // A real container with zero frames.
    let empty = dir.path().join("empty.avi");
    {
        use opencv::prelude::*;
        let fourcc = opencv::videoio::VideoWriter::fourcc('M', 'J', 'P', 'G').unwrap();
        let mut w = opencv::videoio::VideoWriter::new(
            &*empty.to_string_lossy(),
            fourcc,
            25.0,
            opencv::core::Size::new(64, 48),
            true,
        )
        .unwrap();
        w.release().unwrap();
    }
    let e = p.admit(&empty).err().unwrap().to_string();
    assert!(e.contains("empty.avi"), "{e}");
    assert!(
        e.contains("no decodable frame") || e.contains("not a video"),
        "{e}"
    );

    let e = p
        .admit(Path::new("/no/such/video.mp4"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no such file"), "{e}");
}

#[test]
fn warm_up_runs_every_model_and_leaves_the_next_run_unchanged() {
    let mut p = pipeline(&[], "");
    let took = p.warm_up(768, 576).unwrap();
    assert!(took.as_secs_f64() > 0.0);
    let opts = RunOptions {
        challenge_id: "test-challenge".into(),
        max_frames: Some(12),
        ..Default::default()
    };
    let video = p.admit(&vtest()).unwrap();
    let (warm, stats) = p.run(&video, &opts).unwrap();
    let mut cold = pipeline(&[], "");
    let (fresh, _) = cold.run(&video, &opts).unwrap();
    // Same answers, and the warm-up's model time is not billed to the run.
    assert_eq!(
        serde_json::to_value(&warm.frames).unwrap(),
        serde_json::to_value(&fresh.frames).unwrap()
    );
    let calls: f64 = stats.detectors.values().map(|d| d.calls_s).sum();
    let forward: f64 = stats.detectors.values().map(|d| d.forward_s).sum();
    assert!(
        forward <= calls + 1e-6,
        "forward {forward} s > calls {calls} s"
    );
}

/// A stream that grows past `max_frame_pixels` mid-way (raw H.264: 12 frames at 320x240,
/// then 1280x720) passes the admission, which sees the first frames, and ends the run at
/// the first frame over the bound: a partial result with the frames before it and the
/// reason. `run`, `serve` and `worker` all run this pipeline. It used to be analysed to the
/// end at whatever size it grew to.
#[test]
fn a_stream_that_grows_past_max_frame_pixels_ends_there_partial() {
    let mut p = pipeline(&[], "    max_frame_pixels: 307200\n");
    let clip = root().join("tests/fixtures/hostile/size-change.h264");
    let r = run(&mut p, &clip);
    assert!(r.partial);
    let error = r.error.as_deref().unwrap();
    assert!(
        error.contains("frame 12 is 1280x720 (921600 pixels), above the profile's max_frame_pixels, 307200; stopped there"),
        "{error}"
    );
    assert_eq!(r.frames.len(), 12);
}
