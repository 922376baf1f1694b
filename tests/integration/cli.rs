//! The `pitchside` command line, run as a user runs it.

use std::process::{Command, Output};
use std::time::Duration;

use crate::support::{root, signal, wait_until};

fn pitchside(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pitchside"));
    c.args(args).current_dir(root());
    for var in [
        "IMG_SIZE",
        "BATCH_SIZE",
        "FRAME_STRIDE",
        "PREFETCH_FRAMES",
        "PITCHSIDE_DEVICE",
        "CONF_THRESHOLD",
        "MAX_DETECTIONS",
        "OPENCV_LOG_LEVEL",
    ] {
        c.env_remove(var);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn config_show_applies_img_size_to_every_model_of_the_active_profile() {
    let out = ok(&pitchside(&["config", "show"], &[("IMG_SIZE", "512")]));
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&out).unwrap();
    assert_eq!(v["profile"].as_str(), Some("cpu"));
    for role in ["players", "pitch", "ball"] {
        assert_eq!(v["settings"]["imgsz"][role].as_u64(), Some(512), "{out}");
    }
    for role in ["players", "pitch"] {
        assert_eq!(v["models"][role]["imgsz"].as_u64(), Some(512), "{out}");
    }
}

#[test]
fn config_show_of_a_file_and_env_overrides() {
    let out = ok(&pitchside(
        &["config", "show", "--config", "configs/cpu.yaml"],
        &[
            ("BATCH_SIZE", "3"),
            ("FRAME_STRIDE", "1"),
            ("CONF_THRESHOLD", "0.5"),
        ],
    ));
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&out).unwrap();
    assert_eq!(v["settings"]["batch_size"].as_u64(), Some(3));
    assert_eq!(v["settings"]["frame_stride"].as_u64(), Some(1));
    assert_eq!(v["settings"]["conf_threshold"].as_f64(), Some(0.5));
    assert_eq!(v["settings"]["imgsz"]["players"].as_u64(), Some(1024));
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let o = pitchside(&["config", "show"], &[("BATCH_SIZE", "zero")]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("BATCH_SIZE") && err.contains(">= 1"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "models:\n  players:\n    path: x.pt\n    tsk: detect\n",
    )
    .unwrap();
    let o = pitchside(&["config", "show", "--config", bad.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("bad.yaml:4:5"), "{err}");

    let o = pitchside(&["config", "show", "--device", "cuda"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    if !cfg!(feature = "cuda") {
        assert!(
            !o.status.success() && err.contains("--features cuda"),
            "{err}"
        );
    }
    // A numbered GPU is a device to ask for, checked as its backend is (then the driver's
    // count); a numbered CPU is refused with the reason, by the argument parser.
    let o = pitchside(&["config", "show", "--device", "cuda:1"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    if !cfg!(feature = "cuda") {
        assert!(
            !o.status.success() && err.contains("--features cuda"),
            "{err}"
        );
    }
    let o = pitchside(&["config", "show", "--device", "cpu:1"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("one CPU device") && err.contains("--device"),
        "{err}"
    );
    let o = pitchside(&["config", "show", "--device", "cpu:0"], &[]);
    assert!(ok(&o).contains("device: cpu"), "{}", ok(&o));

    let o = pitchside(
        &["detect", "--model", "assets/nothing.pt", "assets/bus.jpg"],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("nothing.pt") && !err.contains("panicked"),
        "{err}"
    );

    let o = pitchside(&["detect", "--model", "README.md", "assets/bus.jpg"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("README.md") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn devices_lists_compiled_backends() {
    let out = ok(&pitchside(&["devices"], &[]));
    assert!(out.contains("backends compiled in: "), "{out}");
    assert!(out.contains("auto       -> "), "{out}");
    if !cfg!(feature = "cuda") {
        assert!(out.contains("cuda       not compiled in"), "{out}");
    }
    if !cfg!(feature = "torch") {
        assert!(
            out.contains("torch:cpu  not compiled in (build with --features torch)"),
            "{out}"
        );
    }
}

#[test]
fn detect_prints_ultralytics_equal_json() {
    let out = ok(&pitchside(
        &[
            "detect",
            "--model",
            "assets/yolo11n-pose.pt",
            "--device",
            "cpu",
            "assets/bus.jpg",
            "assets/zidane.jpg",
        ],
        &[],
    ));
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    let fx: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/detect/yolo11n-pose.json")).unwrap(),
    )
    .unwrap();
    for (i, name) in ["bus.jpg", "zidane.jpg"].iter().enumerate() {
        let g = &got[i];
        let want = fx["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["image"] == *name)
            .unwrap();
        assert_eq!(g["width"], want["width"]);
        assert_eq!(g["height"], want["height"]);
        let (gd, wd) = (
            g["detections"].as_array().unwrap(),
            want["detections"].as_array().unwrap(),
        );
        assert_eq!(gd.len(), wd.len(), "{name}");
        for (a, b) in gd.iter().zip(wd) {
            assert_eq!(a["class_id"], b["class_id"]);
            assert!((a["score"].as_f64().unwrap() - b["score"].as_f64().unwrap()).abs() < 1e-3);
            assert_eq!(a["keypoints"].as_array().unwrap().len(), 17);
            for k in 0..4 {
                assert!(
                    (a["bbox"][k].as_f64().unwrap() - b["bbox"][k].as_f64().unwrap()).abs() < 1.0
                );
            }
        }
    }
}

#[test]
fn detect_annotates_images() {
    let dir = tempfile::tempdir().unwrap();
    ok(&pitchside(
        &[
            "detect",
            "--model",
            "assets/yolov8s-fall.pt",
            "--annotate",
            dir.path().to_str().unwrap(),
            "assets/bus.jpg",
        ],
        &[],
    ));
    let img = opencv::imgcodecs::imread(
        &*dir.path().join("bus.jpg").to_string_lossy(),
        opencv::imgcodecs::IMREAD_COLOR,
    )
    .unwrap();
    use opencv::prelude::*;
    assert_eq!((img.cols(), img.rows()), (810, 1080));
}

/// `pitchside score` prints what the validator's own code gives for Pitchside's committed
/// vtest.avi answer (score/tests/fixtures, written by tools/score/golden.py).
#[test]
fn score_prints_the_validators_keypoint_score_of_an_answer() {
    let fixtures = root().join("score/tests/fixtures");
    let golden: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("vtest.json")).unwrap()).unwrap();
    let want = golden["answers"]["pitchside"]["final_score"]
        .as_f64()
        .unwrap();
    let out = ok(&pitchside(
        &[
            "score",
            "--video",
            "assets/vtest.avi",
            "--answer",
            fixtures.join("vtest-answer.json").to_str().unwrap(),
            "--json",
        ],
        &[],
    ));
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    let score = got["final_score"].as_f64().unwrap();
    assert!(
        (score - want).abs() < 1e-4,
        "final_score {score}, validator {want}"
    );
    let recorded = got["keypoints_final_score"].as_f64().unwrap();
    assert!((recorded - want / 100.0).abs() < 1e-6, "{recorded}");
    // Per frame, what the validator's per-frame results hold.
    let frames = got["per_frame"].as_array().unwrap();
    let golden_frames = &golden["answers"]["pitchside"]["per_frame"];
    assert_eq!(frames.len(), golden_frames.as_object().unwrap().len());
    for f in frames {
        let g = &golden_frames[f["frame"].as_str().unwrap()];
        for k in ["player_plausibility", "keypoint_stability"] {
            let (a, b) = (f[k].as_f64().unwrap(), g[k].as_f64().unwrap());
            assert!((a - b).abs() < 1e-6, "frame {}: {k} {a} vs {b}", f["frame"]);
        }
    }
}

/// `analyze` on a video without a pitch (vtest.avi, Pitchside's pose-model answer) says
/// so and writes frames without positions, as JSON and as CSV (objects and tracks).
#[test]
fn analyze_says_when_there_is_no_pitch() {
    let dir = tempfile::tempdir().unwrap();
    let answer = root().join("score/tests/fixtures/vtest-answer.json");
    let json = dir.path().join("a.json");
    let o = pitchside(
        &[
            "analyze",
            "--video",
            "assets/vtest.avi",
            "--answer",
            answer.to_str().unwrap(),
            "--out",
            json.to_str().unwrap(),
        ],
        &[],
    );
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no pitch in view"));
    let a: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(a["frames_with_homography"], 0);
    assert_eq!(a["video"]["width"], 768);
    let frames = a["frames"].as_array().unwrap();
    assert!(frames.len() > 700, "{}", frames.len());
    assert!(
        frames
            .iter()
            .flat_map(|f| f["objects"].as_array().unwrap())
            .all(|o| o["x"].is_null())
    );
    let csv = dir.path().join("a.csv");
    ok(&pitchside(
        &[
            "analyze",
            "--video",
            "assets/vtest.avi",
            "--answer",
            answer.to_str().unwrap(),
            "--out",
            csv.to_str().unwrap(),
            "--format",
            "csv",
        ],
        &[],
    ));
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert!(
        rows.starts_with("frame_number,shot,id,class_id,x_m,y_m,team\n"),
        "{rows:.200}"
    );
    // No pitch, no radar: said, not drawn.
    let o = pitchside(
        &[
            "analyze",
            "--video",
            "assets/vtest.avi",
            "--answer",
            answer.to_str().unwrap(),
            "--out",
            json.to_str().unwrap(),
            "--radar",
            dir.path().join("r.png").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no frame has a homography"));
    let tracks = std::fs::read_to_string(dir.path().join("a-tracks.csv")).unwrap();
    assert!(
        tracks.starts_with("id,class_id,frames,seconds_on_screen"),
        "{tracks:.200}"
    );
    assert!(tracks.lines().count() > 2);
}

/// `run --analytics FILE` writes the analytics of its result beside the Score Vision JSON
/// (here with the built-in `null` detector: frames, no positions, and the note why).
#[test]
fn run_writes_the_analytics_of_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = quick_deployment(dir.path(), "");
    let analytics = dir.path().join("analytics.json");
    let out = ok(&pitchside(
        &[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--analytics",
            analytics.to_str().unwrap(),
            "assets/vtest.avi",
        ],
        &[("FRAME_STRIDE", "4")],
    ));
    let response: serde_json::Value = serde_json::from_str(&out).unwrap();
    let a: serde_json::Value = serde_json::from_slice(&std::fs::read(&analytics).unwrap()).unwrap();
    assert_eq!(
        a["frames"].as_array().unwrap().len(),
        response["frames"].as_array().unwrap().len()
    );
    assert!(a["note"].as_str().unwrap().contains("no pitch in view"));
    // A name ending in .csv: CSV, the tracks beside it.
    let csv = dir.path().join("analytics.csv");
    ok(&pitchside(
        &[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--analytics",
            csv.to_str().unwrap(),
            "assets/vtest.avi",
        ],
        &[("FRAME_STRIDE", "4")],
    ));
    assert!(
        std::fs::read_to_string(&csv)
            .unwrap()
            .starts_with("frame_number,shot,")
    );
    assert!(dir.path().join("analytics-tracks.csv").is_file());
}

/// An answer the validator's rewrite fails on is never stored, so never scored: `score`
/// says so and why, and fails (before reading the video).
#[test]
fn score_refuses_an_answer_the_validator_would_not_store() {
    let dir = tempfile::tempdir().unwrap();
    let answer = dir.path().join("answer.json");
    std::fs::write(
        &answer,
        r#"{"frames": [{"frame_number": 0, "keypoints": [[1, 2]]}, {"keypoints": []}]}"#,
    )
    .unwrap();
    let o = pitchside(
        &[
            "score",
            "--video",
            "assets/vtest.avi",
            "--answer",
            answer.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("would not store this answer")
            && stderr.contains("frame 1 has no 'frame_number'"),
        "{stderr}"
    );
}

/// `bench --score` scores the frames it ran, beside the speed, in the table and the JSON.
#[test]
fn bench_reports_the_keypoint_score_of_the_frames_it_ran() {
    let o = pitchside(
        &["bench", "--frames", "24", "--score", "assets/vtest.avi"],
        &[("IMG_SIZE", "320"), ("FRAME_STRIDE", "4")],
    );
    let out = ok(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("final keypoint score"), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let score = &json["keypoint_score"];
    assert_eq!(score["answer_frames"], 24, "{score}");
    let f = score["final_score"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&f), "{score}");
}

#[test]
fn huge_sizes_are_config_errors_not_allocation_aborts() {
    // IMG_SIZE=65536 used to abort on a 77 GB allocation (exit 134); 99999968 passed
    // `config show`.
    for value in ["65536", "99999968"] {
        let o = pitchside(&["config", "show"], &[("IMG_SIZE", value)]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("IMG_SIZE") && err.contains("at most 4096"),
            "{err}"
        );
    }
    let o = pitchside(&["config", "show"], &[("BATCH_SIZE", "1000000")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("BATCH_SIZE") && err.contains("at most 256"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("huge.yaml");
    let text = std::fs::read_to_string(root().join("configs/cpu.yaml")).unwrap();
    std::fs::write(&cfg, text.replace("players: 1024,", "players: 65536,")).unwrap();
    let o = pitchside(&["config", "show", "--config", cfg.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("huge.yaml:") && err.contains("at most 4096"),
        "{err}"
    );

    let o = pitchside(
        &[
            "detect",
            "--model",
            "assets/yolo11n-pose.pt",
            "--imgsz",
            "65536",
            "assets/bus.jpg",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("at most 4096"), "{err}");
}

#[test]
fn run_checks_out_before_the_analysis() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("missing-dir/x.json");
    let o = pitchside(
        &["run", "--out", out.to_str().unwrap(), "assets/vtest.avi"],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("missing-dir") && err.contains("does not exist"),
        "{err}"
    );
    // Refused before any model is loaded, not after minutes of analysis.
    assert!(!err.contains("loading models"), "{err}");
}

#[test]
fn run_says_what_the_input_is_when_it_is_not_a_video_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let cases = [
        (
            dir.path().to_str().unwrap(),
            "is a directory, not a video file",
        ),
        // http(s) URLs are fetched (below); other schemes are said to be URLs.
        (
            "ftp://example.com/clip.mp4",
            "is a URL: only http and https URLs are fetched; download it first",
        ),
        ("rtsp://example.com/clip", "is a URL"),
        ("assets/no-such-clip.mp4", "no such file"),
        // Zero bytes, and bytes that are not a video.
        (empty.to_str().unwrap(), "empty.mp4"),
        ("README.md", "README.md"),
    ];
    for (source, says) in cases {
        let o = pitchside(&["run", source], &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{source}: {err}");
        assert!(err.contains(says), "{source}: {err}");
        assert!(!err.contains("loading models"), "{source}: {err}");
        assert!(!err.contains("panicked"), "{source}: {err}");
    }
}

/// A deployment that runs fast: the built-in `null` detector (one box a frame) and the
/// tracker, so a run is decoding and assembly; `service` is appended as its section.
fn quick_deployment(dir: &std::path::Path, service: &str) -> std::path::PathBuf {
    let path = dir.join("quick.yaml");
    std::fs::write(
        &path,
        format!(
            "device: cpu\nprofile: cpu\nmodels: {{}}\npipeline:\n  detectors:\n    \
             - role: players\n      plugin: \"null\"\n  tracker:\n    plugin: bytetrack\n{service}"
        ),
    )
    .unwrap();
    path
}

/// A FIFO or a device as the deployment or the video is named as such at once: it used to
/// read `/dev/zero` as YAML until memory ran out, and report a FIFO video as missing.
#[test]
fn fifos_and_devices_are_named_and_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("deployment.yaml");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let fifo = fifo.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["run", "--config", "/dev/zero", "assets/vtest.avi"],
            "deployment /dev/zero is a character device, not a regular file",
        ),
        (
            &["run", "--config", fifo, "assets/vtest.avi"],
            "is a FIFO (named pipe), not a regular file",
        ),
        (
            &["run", "/dev/zero"],
            "/dev/zero is a character device, not a regular file",
        ),
        (&["run", fifo], "is a FIFO (named pipe), not a regular file"),
    ];
    for (args, says) in cases {
        let o = pitchside(args, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("no such file"), "{args:?}: {err}");
    }
}

/// A partial result is written and told apart by the exit code (3, README): here a stream
/// that grows past `max_frame_pixels` after 12 frames.
#[test]
fn a_partial_result_is_written_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let config = quick_deployment(
        dir.path(),
        "profiles:\n  cpu:\n    max_frame_pixels: 307200\n",
    );
    let o = pitchside(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "tests/fixtures/hostile/size-change.h264",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["partial"], true);
    assert_eq!(v["frames"].as_array().unwrap().len(), 12);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("frame 12 is 1280x720 (921600 pixels), above the profile's max_frame_pixels"),
        "{v}"
    );
}

fn temp_files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect()
}

#[test]
fn run_fetches_an_http_url_and_gives_what_the_local_file_gives() {
    let server = crate::support::VideoServer::start();
    let dir = tempfile::tempdir().unwrap();
    // The deployment's service.temp_dir holds the download; loopback is allowed in `run`.
    let temp = dir.path().join("downloads");
    let cfg = quick_deployment(
        dir.path(),
        &format!("service:\n  temp_dir: {}\n", temp.display()),
    );
    let quick = [("IMG_SIZE", "320"), ("FRAME_STRIDE", "4")];
    let run = |source: &str| -> serde_json::Value {
        let out = ok(&pitchside(
            &["run", "--config", cfg.to_str().unwrap(), source],
            &quick,
        ));
        serde_json::from_str(&out).unwrap()
    };
    let local = run("assets/vtest.avi");
    let remote = run(&server.url("/vtest.avi"));
    let frames = remote["frames"].as_array().unwrap().len();
    assert_eq!(frames, 795);
    assert_eq!(frames, local["frames"].as_array().unwrap().len());
    assert_eq!(remote["frames"], local["frames"]);
    assert_eq!(temp_files_in(&temp), Vec::<std::path::PathBuf>::new());
}

/// `pitchside run ARGS` in the background, downloads into `temp` (TMPDIR), its log in
/// `log`.
fn spawn_run(args: &[&str], temp: &std::path::Path, log: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_pitchside"))
        .current_dir(root())
        .arg("run")
        .args(args)
        .env("TMPDIR", temp)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn read_log(log: &std::path::Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

#[test]
fn ctrl_c_during_a_run_of_a_url_writes_the_frames_done_and_removes_the_download() {
    let server = crate::support::VideoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join("tmp");
    std::fs::create_dir(&temp).unwrap();
    let (out, log) = (dir.path().join("out.json"), dir.path().join("stderr.log"));
    // The real models at stride 1: 795 frames take long enough to interrupt.
    let url = server.url("/vtest.avi");
    let mut child = spawn_run(
        &[
            "--config",
            "tests/fixtures/deployments/vtest-320.yaml",
            &url,
            "--out",
            out.to_str().unwrap(),
        ],
        &temp,
        &log,
    );
    wait_until(
        Duration::from_secs(120),
        "no analysis started",
        || read_log(&log).contains("analysing"),
        || read_log(&log),
    );
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "INT");
    let status = child.wait().unwrap();
    let err = read_log(&log);
    assert_eq!(status.code(), Some(130), "{err}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(r["partial"], true, "{err}");
    assert_eq!(r["error"], "cancelled");
    let frames = r["frames"].as_array().unwrap().len();
    assert!(frames > 0 && frames < 795, "{frames} frames");
    assert_eq!(temp_files_in(&temp), Vec::<std::path::PathBuf>::new());
}

#[test]
fn ctrl_c_during_a_download_ends_the_run_at_once_and_leaves_no_temp_file() {
    let server = crate::support::VideoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join("tmp");
    std::fs::create_dir(&temp).unwrap();
    let log = dir.path().join("stderr.log");
    let cfg = quick_deployment(dir.path(), "");
    let url = server.url("/stalling.avi");
    let mut child = spawn_run(&["--config", cfg.to_str().unwrap(), &url], &temp, &log);
    // The download has begun once its temporary file exists.
    wait_until(
        Duration::from_secs(60),
        "no download began",
        || !temp_files_in(&temp).is_empty(),
        || read_log(&log),
    );
    std::thread::sleep(Duration::from_millis(300));
    let interrupted_at = std::time::Instant::now();
    signal(&child, "INT");
    let status = child.wait().unwrap();
    let err = read_log(&log);
    // Not after the server's minute of silence (nor a read timeout): at once.
    assert!(interrupted_at.elapsed() < Duration::from_secs(10), "{err}");
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted during the download"), "{err}");
    assert_eq!(temp_files_in(&temp), Vec::<std::path::PathBuf>::new());
}

#[test]
fn run_of_a_missing_url_names_it_and_its_status_and_leaves_no_temp_file() {
    let server = crate::support::VideoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join("tmp");
    std::fs::create_dir(&temp).unwrap();
    let cfg = quick_deployment(dir.path(), "");
    let url = server.url("/missing.avi");
    // No service.temp_dir: the download goes to the system's temporary folder.
    let o = pitchside(
        &["run", "--config", cfg.to_str().unwrap(), &url],
        &[("TMPDIR", temp.to_str().unwrap())],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("GET {url}: HTTP 404")), "{err}");
    assert!(!err.contains("loading models"), "{err}");
    assert_eq!(temp_files_in(&temp), Vec::<std::path::PathBuf>::new());
}

#[test]
fn run_refuses_a_video_over_the_profile_bounds_before_loading_the_models() {
    let o = pitchside(&["run", "tests/fixtures/videos/green-6000x4000.mp4"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("green-6000x4000.mp4")
            && err.contains("the video is 6000x4000 (24000000 pixels a frame), above the profile's max_frame_pixels, 16588800"),
        "{err}"
    );
    assert!(!err.contains("loading models"), "{err}");
}

#[test]
fn an_os_error_is_printed_once() {
    // ConfigError::Read's message includes its io::Error, which is also its source.
    let o = pitchside(
        &["config", "show", "--config", "no/such/deployment.yaml"],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("no/such/deployment.yaml"), "{err}");
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");
}

#[test]
fn serve_reports_a_busy_port_before_loading_the_models() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = pitchside(&["serve", "--listen", &addr], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    // Before the models load and warm up (minutes on a GPU), and the OS error said once.
    assert!(!err.contains("loading models"), "{err}");
    assert_eq!(err.matches("(os error").count(), 1, "{err}");
}

#[test]
fn decoder_noise_stays_off_stderr() {
    // A text file: FFmpeg logs each demuxer probe that fails on it (as OpenCV's backends
    // did: GStreamer warnings, a CAP_IMAGES exception); the one message is ours.
    let o = pitchside(&["run", "README.md"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("README.md: not a video FFmpeg can open"),
        "{err}"
    );
    for noise in ["GStreamer", "[ WARN", "[ERROR", "OpenCV(", " @ 0x"] {
        assert!(!err.contains(noise), "{noise}: {err}");
    }
}

/// The mean absolute difference (per channel value) of two BGR images over `r`.
fn mean_abs_diff(a: &opencv::core::Mat, b: &opencv::core::Mat, r: opencv::core::Rect) -> f64 {
    let (ra, rb) = (
        opencv::core::Mat::roi(a, r).unwrap(),
        opencv::core::Mat::roi(b, r).unwrap(),
    );
    let mut d = opencv::core::Mat::default();
    opencv::core::absdiff(&ra, &rb, &mut d).unwrap();
    let m = opencv::core::mean_def(&d).unwrap();
    (m[0] + m[1] + m[2]) / 3.0
}

/// Frame `n` of a video.
fn video_frame(path: &std::path::Path, n: usize) -> opencv::core::Mat {
    use opencv::prelude::*;
    let mut cap = opencv::videoio::VideoCapture::from_file(path, opencv::videoio::CAP_ANY).unwrap();
    let mut m = opencv::core::Mat::default();
    for _ in 0..=n {
        assert!(
            cap.read(&mut m).unwrap(),
            "{} has no frame {n}",
            path.display()
        );
    }
    m
}

/// Issue 27's radar in `--annotate`, on the synthetic broadcast clip. `analyze --annotate`
/// of the true answer (its keypoints give a homography in every frame) puts the radar as an
/// inset at the bottom centre: that part of the written frame is the radar of the frame
/// blended over the video, not the video. `run --analytics --annotate` (the colour plugin:
/// players, no pitch keypoints, so no inset) finds the same teams from the frames it
/// analysed as `analyze` finds decoding the video again, and its answer is the answer of a
/// plain run.
#[test]
fn annotate_draws_the_radar_and_run_finds_the_teams_from_its_own_frames() {
    use pitchside_score::analytics::{Shirts, VideoInfo, analyze_answer};
    use pitchside_score::{radar, synthetic};
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    let video = d("synthetic.mkv");
    let truth = synthetic::render(&video).unwrap();
    let exact = &synthetic::answers(&truth)
        .into_iter()
        .find(|(n, _)| *n == "exact")
        .unwrap()
        .1;
    std::fs::write(d("exact.json"), serde_json::to_vec(exact).unwrap()).unwrap();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    ok(&pitchside(
        &[
            "analyze",
            "--video",
            &s(&video),
            "--answer",
            &s(&d("exact.json")),
            "--out",
            &s(&d("exact-analytics.json")),
            "--annotate",
            &s(&d("exact.mp4")),
        ],
        &[],
    ));
    let info = VideoInfo {
        width: synthetic::WIDTH as u32,
        height: synthetic::HEIGHT as u32,
        fps: synthetic::FPS,
    };
    let a = analyze_answer(
        &serde_json::to_vec(exact).unwrap(),
        info,
        Shirts::Video(&video),
    )
    .unwrap();
    let (rect, _) = radar::inset_rect(synthetic::WIDTH, synthetic::HEIGHT);
    for n in [5, 30, synthetic::CUT_AT + 10] {
        let written = video_frame(&d("exact.mp4"), n);
        let plain = video_frame(&video, n);
        // What the overlay draws (tested in pitchside-score) on the plain frame: the CLI's
        // frame differs from it only by the boxes under the inset and the compression.
        let mut want = plain.clone();
        radar::overlay(&a, &a.frames[n], &mut want).unwrap();
        let (to_radar, to_video) = (
            mean_abs_diff(&written, &want, rect),
            mean_abs_diff(&written, &plain, rect),
        );
        eprintln!(
            "frame {n}: the inset differs from the radar by {to_radar:.1}, from the video by {to_video:.1}"
        );
        assert!(
            to_radar < 8.0 && to_video > 2.5 * to_radar,
            "frame {n}: {to_radar} from the radar, {to_video} from the video"
        );
    }

    let cfg = d("colour.yaml");
    std::fs::write(
        &cfg,
        format!(
            "device: cpu\nmodels: {{}}\npipeline:\n  detectors:\n    - role: players\n      \
             library: {}\n      params: {{ ball_min_area: 12 }}\n  tracker:\n    plugin: \
             bytetrack\nprofiles:\n  cpu:\n    frame_stride: 1\n",
            crate::support::plugin_lib("colour_ball_detector").display()
        ),
    )
    .unwrap();
    ok(&pitchside(
        &[
            "run",
            "--config",
            &s(&cfg),
            "--out",
            &s(&d("plain.json")),
            &s(&video),
        ],
        &[],
    ));
    ok(&pitchside(
        &[
            "run",
            "--config",
            &s(&cfg),
            "--out",
            &s(&d("run.json")),
            "--analytics",
            &s(&d("run-analytics.json")),
            "--annotate",
            &s(&d("run.mp4")),
            &s(&video),
        ],
        &[],
    ));
    let json = |p: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d(p)).unwrap()).unwrap()
    };
    let (plain, run) = (json("plain.json"), json("run.json"));
    assert_eq!(
        plain["frames"], run["frames"],
        "the answer is the plain run's"
    );
    ok(&pitchside(
        &[
            "analyze",
            "--video",
            &s(&video),
            "--answer",
            &s(&d("run.json")),
            "--out",
            &s(&d("decoded-analytics.json")),
        ],
        &[],
    ));
    let teams = |p: &str| -> std::collections::BTreeMap<String, Option<u64>> {
        json(p)["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["id"].to_string(), t["team"].as_u64()))
            .collect()
    };
    let (ran, decoded) = (teams("run-analytics.json"), teams("decoded-analytics.json"));
    let with_team = decoded.values().filter(|t| t.is_some()).count();
    assert!(with_team >= 10, "{decoded:?}");
    // Labels 0 and 1 are arbitrary: the same split, either way round.
    let same = ran
        .iter()
        .filter(|(k, t)| decoded.get(*k) == Some(t))
        .count();
    let swapped = ran
        .iter()
        .filter(|(k, t)| decoded.get(*k) == Some(&t.map(|v| 1 - v)))
        .count();
    let agree = same.max(swapped);
    eprintln!("teams: {agree} of {} tracks alike", ran.len());
    assert!(agree * 20 >= ran.len() * 19, "{ran:?}\n{decoded:?}");
    // The annotated video has every frame (rings, no inset: no homography).
    let cap =
        opencv::videoio::VideoCapture::from_file(d("run.mp4"), opencv::videoio::CAP_ANY).unwrap();
    use opencv::prelude::*;
    let frames = cap.get(opencv::videoio::CAP_PROP_FRAME_COUNT).unwrap();
    assert_eq!(frames as usize, synthetic::FRAMES);
    let (run_frame, plain) = (video_frame(&d("run.mp4"), 30), video_frame(&video, 30));
    assert!(mean_abs_diff(&run_frame, &plain, rect) < 12.0);
}
