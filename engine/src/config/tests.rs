use super::*;
use crate::device::Backend;

fn parse(yaml: &str) -> Result<Deployment, ConfigError> {
    Deployment::parse(yaml, ConfigSource::File("t.yaml".into()), ".".into())
}

const MINIMAL: &str = "\
models:
  players:
    path: p.pt
    task: detect
  pitch:
    path: k.pt
    task: pose
pipeline:
  detectors:
    - role: players
      plugin: yolo
    - role: pitch
      plugin: yolo
  tracker:
    plugin: bytetrack
";

fn no_env() -> EnvOverrides {
    EnvOverrides::default()
}

#[test]
fn embedded_default_parses() {
    let d = Deployment::embedded(".").unwrap();
    assert_eq!(d.source, ConfigSource::Embedded);
    assert!(d.file.models.contains_key(&Role::Players));
    assert_eq!(d.file.models[&Role::Pitch].task, Task::Pose);
    let e = d.effective(Backend::Cpu, &no_env()).unwrap();
    assert_eq!(e.profile_name, ProfileName::Cpu);
}

#[test]
fn shipped_configs_parse() {
    let dir = crate::test_support::workspace_root().join("configs");
    for name in [
        "default.yaml",
        "cuda.yaml",
        "mps.yaml",
        "cpu.yaml",
        "score-vision.yaml",
    ] {
        Deployment::from_file(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // The example profile files spell out exactly the built-in defaults.
    for (file, name) in [
        ("cuda.yaml", ProfileName::Cuda),
        ("mps.yaml", ProfileName::Mps),
        ("cpu.yaml", ProfileName::Cpu),
    ] {
        let d = Deployment::from_file(&dir.join(file)).unwrap();
        let e = d.effective(Backend::Cpu, &no_env()).unwrap();
        assert_eq!(e.profile_name, name);
        assert_eq!(e.profile, Profile::defaults(name), "{file}");
    }
}

#[test]
fn profile_defaults_match_the_python_miner() {
    let c = Profile::defaults(ProfileName::Cuda);
    assert_eq!(
        (
            c.imgsz.players.get(),
            c.imgsz.pitch.get(),
            c.imgsz.ball.get()
        ),
        (640, 640, 640)
    );
    assert_eq!((c.conf_threshold, c.iou_threshold), (0.35, 0.5));
    assert_eq!(
        (c.max_detections, c.half, c.agnostic_nms),
        (150, true, false)
    );
    assert_eq!((c.batch_size, c.timeout_s), (32, 900));
    assert_eq!(
        (c.prefetch_frames, c.frame_stride, c.cpu_threads),
        (64, 2, 0)
    );

    let m = Profile::defaults(ProfileName::Mps);
    assert_eq!(
        (
            m.imgsz.players.get(),
            m.imgsz.pitch.get(),
            m.imgsz.ball.get()
        ),
        (1280, 1024, 1024)
    );
    assert_eq!((m.conf_threshold, m.iou_threshold), (0.25, 0.45));
    assert_eq!(
        (m.max_detections, m.half, m.agnostic_nms),
        (300, false, false)
    );
    assert_eq!((m.batch_size, m.timeout_s), (2, 1800));
    assert_eq!(
        (m.prefetch_frames, m.frame_stride, m.cpu_threads),
        (64, 2, 0)
    );

    let p = Profile::defaults(ProfileName::Cpu);
    assert_eq!(
        (
            p.imgsz.players.get(),
            p.imgsz.pitch.get(),
            p.imgsz.ball.get()
        ),
        (1024, 896, 896)
    );
    assert_eq!((p.conf_threshold, p.iou_threshold), (0.25, 0.45));
    assert_eq!(
        (p.max_detections, p.half, p.agnostic_nms),
        (300, false, false)
    );
    assert_eq!((p.batch_size, p.timeout_s), (1, 10800));
    assert_eq!(
        (p.prefetch_frames, p.frame_stride, p.cpu_threads),
        (64, 2, 0)
    );
}

#[test]
fn profile_follows_device_unless_pinned() {
    let d = parse(MINIMAL).unwrap();
    for (backend, name) in [
        (Backend::Cuda, ProfileName::Cuda),
        (Backend::Wgpu, ProfileName::Mps),
        (Backend::Cpu, ProfileName::Cpu),
    ] {
        let e = d.effective(backend, &no_env()).unwrap();
        assert_eq!(e.profile_name, name);
        assert_eq!(e.profile, Profile::defaults(name));
        assert_eq!(e.models[&Role::Players].imgsz, e.profile.imgsz.players);
        assert_eq!(e.models[&Role::Pitch].imgsz, e.profile.imgsz.pitch);
    }
    let pinned = parse(&format!("profile: mps\n{MINIMAL}")).unwrap();
    assert_eq!(
        pinned
            .effective(Backend::Cpu, &no_env())
            .unwrap()
            .profile_name,
        ProfileName::Mps
    );
}

#[test]
fn profile_patch_overrides_only_given_fields() {
    let d = parse(&format!(
        "{MINIMAL}profiles:\n  cpu:\n    batch_size: 4\n    imgsz: {{ pitch: 320 }}\n"
    ))
    .unwrap();
    let e = d.effective(Backend::Cpu, &no_env()).unwrap();
    assert_eq!(e.profile.batch_size, 4);
    assert_eq!(e.profile.imgsz.pitch, 320);
    assert_eq!(e.profile.imgsz.players, 1024);
    assert_eq!(e.profile.conf_threshold, 0.25);
}

#[test]
fn every_env_override_applies() {
    let env: &[(&str, &str)] = &[
        ("IMG_SIZE", "512"),
        ("BATCH_SIZE", "8"),
        ("FRAME_STRIDE", "3"),
        ("PREFETCH_FRAMES", "16"),
        ("PITCHSIDE_DEVICE", "cpu"),
        ("CONF_THRESHOLD", "0.4"),
        ("MAX_DETECTIONS", "77"),
    ];
    let o = EnvOverrides::read(env).unwrap();
    assert_eq!(o.device, Some(DeviceRequest::Backend(Backend::Cpu)));
    let d = parse(MINIMAL).unwrap();
    for backend in [Backend::Cuda, Backend::Wgpu, Backend::Cpu] {
        let e = d.effective(backend, &o).unwrap();
        assert_eq!(e.profile.imgsz.players, 512);
        assert_eq!(e.profile.imgsz.pitch, 512);
        assert_eq!(e.profile.imgsz.ball, 512);
        for m in e.models.values() {
            assert_eq!(m.imgsz, 512);
        }
        assert_eq!(e.profile.batch_size, 8);
        assert_eq!(e.profile.frame_stride, 3);
        assert_eq!(e.profile.prefetch_frames, 16);
        assert_eq!(e.profile.conf_threshold, 0.4);
        assert_eq!(e.profile.max_detections, 77);
    }
}

#[test]
fn img_size_beats_a_pinned_model_size() {
    let yaml = MINIMAL.replace("task: detect", "task: detect\n    imgsz: 1280");
    let d = parse(&yaml).unwrap();
    let e = d.effective(Backend::Cpu, &no_env()).unwrap();
    assert_eq!(e.models[&Role::Players].imgsz, 1280);
    let o = EnvOverrides::read(&[("IMG_SIZE", "512")][..]).unwrap();
    assert_eq!(
        d.effective(Backend::Cpu, &o).unwrap().models[&Role::Players].imgsz,
        512
    );
}

#[test]
fn bad_env_values_name_the_variable_and_what_it_accepts() {
    let cases = [
        ("IMG_SIZE", "abc", "multiple of 32"),
        ("IMG_SIZE", "500", "multiple of 32"),
        ("IMG_SIZE", "0", "multiple of 32"),
        ("BATCH_SIZE", "0", ">= 1"),
        ("BATCH_SIZE", "-2", ">= 1"),
        ("FRAME_STRIDE", "x", ">= 1"),
        ("PREFETCH_FRAMES", "0", ">= 1"),
        ("MAX_DETECTIONS", "1.5", ">= 1"),
        ("CONF_THRESHOLD", "1.5", "between 0 and 1"),
        ("CONF_THRESHOLD", "high", "between 0 and 1"),
        (
            "PITCHSIDE_DEVICE",
            "tpu",
            "auto, cuda, cuda:N, wgpu, cpu, torch:cuda",
        ),
    ];
    for (var, value, expected) in cases {
        let err = EnvOverrides::read(&[(var, value)][..]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(var), "{msg}");
        assert!(msg.contains(value), "{msg}");
        assert!(msg.contains(expected), "{var}={value}: {msg}");
    }
}

#[test]
fn unknown_key_reports_line_and_column() {
    let yaml = MINIMAL.replace("    task: pose\n", "    task: pose\n    colour: red\n");
    let err = parse(&yaml).unwrap_err();
    match &err {
        ConfigError::Yaml { line, column, .. } => assert_eq!((*line, *column), (8, 5), "{err}"),
        other => panic!("expected a YAML error, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.starts_with("t.yaml:8:5: "), "{msg}");
    assert!(msg.contains("colour"), "{msg}");
}

#[test]
fn syntax_error_reports_line_and_column() {
    let yaml = format!("{MINIMAL}profiles:\n  cpu: [unclosed\n");
    let err = parse(&yaml).unwrap_err();
    let ConfigError::Yaml { line, .. } = &err else {
        panic!("expected a YAML error, got {err}")
    };
    assert!(*line >= 17, "{err}");
    assert!(err.to_string().starts_with("t.yaml:"), "{err}");
}

#[test]
fn semantic_errors_name_the_place() {
    let bad_imgsz = format!("{MINIMAL}profiles:\n  cpu:\n    imgsz: {{ players: 500 }}\n");
    let msg = parse(&bad_imgsz).unwrap_err().to_string();
    assert!(msg.starts_with("t.yaml:18:5: "), "{msg}");
    assert!(msg.contains("multiple of 32"), "{msg}");

    let bad_batch = format!("{MINIMAL}profiles:\n  cuda:\n    batch_size: 0\n");
    let msg = parse(&bad_batch).unwrap_err().to_string();
    assert!(msg.starts_with("t.yaml:18:5: "), "{msg}");
    assert!(msg.contains("batch_size"), "{msg}");

    for field in ["conf_threshold: 1.2", "iou_threshold: -0.1"] {
        let y = format!("{MINIMAL}profiles:\n  mps:\n    {field}\n");
        let msg = parse(&y).unwrap_err().to_string();
        assert!(msg.starts_with("t.yaml:18:5: "), "{msg}");
        assert!(msg.contains("outside [0, 1]"), "{msg}");
    }

    let bad_tracker = MINIMAL.replace("plugin: bytetrack", "plugin: sort");
    let msg = parse(&bad_tracker).unwrap_err().to_string();
    assert!(msg.starts_with("t.yaml:15:5: "), "{msg}");
    assert!(msg.contains("unknown tracker `sort`"), "{msg}");

    let model_imgsz = MINIMAL.replace("task: detect", "task: detect\n    imgsz: 100");
    let msg = parse(&model_imgsz).unwrap_err().to_string();
    assert!(msg.starts_with("t.yaml:5:5: "), "{msg}");
}

#[test]
fn a_numbered_device_is_one_device_and_is_not_listed_with_devices() {
    // `device: cuda:1` alone: the device, written back as it was asked.
    let one = parse(&format!("device: cuda:1\n{MINIMAL}")).unwrap();
    assert_eq!(one.file.device.to_string(), "cuda:1");
    assert_eq!(one.file.device.backend(), Some(Backend::Cuda));
    // With a pool's list it is a contradiction, said at the `device:` line.
    let both = format!("device: torch:cuda:1\ndevices: [torch:cuda:0, torch:cuda:1]\n{MINIMAL}");
    let msg = parse(&both).unwrap_err().to_string();
    assert!(msg.starts_with("t.yaml:1:1: "), "{msg}");
    assert!(
        msg.contains("write `device: torch:cuda` with the list"),
        "{msg}"
    );
    // A CPU has one device: the index is refused with the reason.
    let msg = parse(&format!("device: cpu:1\n{MINIMAL}"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("pipelines_per_device"), "{msg}");
}

#[test]
fn missing_model_file_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("d.yaml");
    std::fs::write(&cfg, MINIMAL).unwrap();
    let d = Deployment::from_file(&cfg).unwrap();
    let msg = d.check_files().unwrap_err().to_string();
    assert!(msg.contains("p.pt does not exist"), "{msg}");
    assert!(msg.contains("d.yaml:3:5"), "{msg}");
    std::fs::write(dir.path().join("p.pt"), b"x").unwrap();
    std::fs::write(dir.path().join("k.pt"), b"x").unwrap();
    d.check_files().unwrap();
    // Relative model paths resolve against the YAML file's directory.
    let e = d.effective(Backend::Cpu, &no_env()).unwrap();
    assert_eq!(e.models[&Role::Players].path, dir.path().join("p.pt"));
}

#[test]
fn locate_key_finds_nested_keys() {
    assert_eq!(
        locate_key(MINIMAL, &["models", "pitch", "task"]),
        Some((7, 5))
    );
    assert_eq!(
        locate_key(MINIMAL, &["pipeline", "tracker", "plugin"]),
        Some((15, 5))
    );
    // Only a prefix present: the deepest key found.
    assert_eq!(locate_key(MINIMAL, &["pipeline", "nothing"]), Some((8, 1)));
    assert_eq!(locate_key(MINIMAL, &["nothing"]), None);
}

#[test]
fn profiles_follow_devices() {
    assert_eq!(ProfileName::for_backend(Backend::Cuda), ProfileName::Cuda);
    assert_eq!(ProfileName::for_backend(Backend::Wgpu), ProfileName::Mps);
    assert_eq!(ProfileName::for_backend(Backend::Cpu), ProfileName::Cpu);
    assert_eq!(ProfileChoice::Auto.resolve(Backend::Wgpu), ProfileName::Mps);
    assert_eq!(ProfileChoice::Cpu.resolve(Backend::Cuda), ProfileName::Cpu);
}

#[test]
fn image_sizes_are_positive_multiples_of_32() {
    assert_eq!(ImageSize::new(640).map(ImageSize::get), Ok(640));
    for bad in [0, 500, 31, 33] {
        assert_eq!(ImageSize::new(bad), Err(ImageSizeError(bad)));
    }
    assert_eq!(
        "1280".parse::<ImageSize>(),
        ImageSize::new(1280).map_err(|e| e.to_string())
    );
    let err = "12x".parse::<ImageSize>().unwrap_err();
    assert!(err.contains("multiple of 32"), "{err}");
    // Sizes serialise as plain numbers (`config show`).
    assert_eq!(serde_json::to_string(&ImageSize::fixed(96)).unwrap(), "96");
    assert!(serde_json::from_str::<ImageSize>("100").is_err());
}

#[test]
fn file_and_environment_patches_merge_the_same_way() {
    let file = format!(
        "{MINIMAL}profiles:\n  cpu:\n    imgsz: {{ players: 512, pitch: 512, ball: 512 }}\n    batch_size: 8\n    frame_stride: 3\n    prefetch_frames: 16\n    conf_threshold: 0.4\n    max_detections: 77\n"
    );
    let from_file = parse(&file)
        .unwrap()
        .effective(Backend::Cpu, &no_env())
        .unwrap();
    let env: &[(&str, &str)] = &[
        ("IMG_SIZE", "512"),
        ("BATCH_SIZE", "8"),
        ("FRAME_STRIDE", "3"),
        ("PREFETCH_FRAMES", "16"),
        ("CONF_THRESHOLD", "0.4"),
        ("MAX_DETECTIONS", "77"),
    ];
    let o = EnvOverrides::read(env).unwrap();
    let from_env = parse(MINIMAL).unwrap().effective(Backend::Cpu, &o).unwrap();
    assert_eq!(from_file.profile, from_env.profile);
    assert_eq!(from_file.models, from_env.models);
    // The environment comes last.
    let o = EnvOverrides::read(&[("BATCH_SIZE", "5")][..]).unwrap();
    let e = parse(&file).unwrap().effective(Backend::Cpu, &o).unwrap();
    assert_eq!((e.profile.batch_size, e.profile.frame_stride), (5, 3));
}

#[test]
fn plugin_sources_are_exactly_one_known_plugin() {
    let d = parse(MINIMAL).unwrap();
    let p = &d.file.pipeline;
    assert!(matches!(p.detectors[0].source, PluginSource::Builtin(b) if b.name == "yolo"));
    assert!(matches!(p.tracker.source, PluginSource::Builtin(b) if b.name == "bytetrack"));

    let lib = MINIMAL.replace(
        "  tracker:\n    plugin: bytetrack\n",
        "  tracker:\n    library: libt.so\n    params: { a: 1 }\n",
    );
    let d = parse(&lib).unwrap();
    assert_eq!(
        d.file.pipeline.tracker.source,
        PluginSource::Library("libt.so".into())
    );
    assert_eq!(d.file.pipeline.tracker.params, serde_json::json!({"a": 1}));

    let cases = [
        (
            MINIMAL.replace("plugin: bytetrack", "plugin: bytetrack\n    library: x.so"),
            "t.yaml:14:3: both `plugin` and `library` given",
        ),
        (
            MINIMAL.replace("plugin: bytetrack", "params: {}"),
            "t.yaml:14:3: needs `plugin` or `library`",
        ),
        (
            MINIMAL.replace("plugin: bytetrack", "plugin: yolo"),
            "t.yaml:15:5: `yolo` is a built-in detector, not a tracker",
        ),
        (
            MINIMAL.replacen("plugin: yolo", "plugin: bytetrack", 1),
            "t.yaml:9:3: `bytetrack` is a built-in tracker, not a detector",
        ),
        (
            MINIMAL.replacen("plugin: yolo", "plugin: yolov5", 1),
            "t.yaml:9:3: unknown detector `yolov5` (built-in: yolo, null)",
        ),
        (
            MINIMAL.replacen("plugin: yolo", "plugin: yolo\n      library: x.so", 1),
            "t.yaml:9:3: a detector has both `plugin` and `library`",
        ),
        (
            MINIMAL.replacen("      plugin: yolo\n", "", 1),
            "t.yaml:9:3: detector for role players needs `plugin` or `library`",
        ),
        (
            MINIMAL.replace("role: pitch", "role: players"),
            "t.yaml:9:3: two detectors for role players",
        ),
        (
            MINIMAL.replace("role: pitch", "role: ball"),
            "t.yaml:9:3: detector for role ball runs model `ball`, which is not in `models`",
        ),
    ];
    for (yaml, want) in cases {
        let msg = parse(&yaml).unwrap_err().to_string();
        assert_eq!(msg, want, "{yaml}");
    }
}

#[test]
fn config_show_writes_plugin_sources_back_as_written() {
    let yaml = MINIMAL.replace(
        "  tracker:\n    plugin: bytetrack\n",
        "  tracker:\n    plugin: bytetrack\n    params: { frame_rate: 30 }\n  ball_tracker:\n    library: libt.so\n",
    );
    let e = parse(&yaml)
        .unwrap()
        .effective(Backend::Cpu, &no_env())
        .unwrap();
    let v: serde_json::Value = serde_json::to_value(&e.pipeline).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "detectors": [
                {"role": "players", "plugin": "yolo"},
                {"role": "pitch", "plugin": "yolo"},
            ],
            "tracker": {"plugin": "bytetrack", "params": {"frame_rate": 30}},
            "ball_tracker": {"library": "libt.so"},
        })
    );
}

#[test]
fn score_vision_pins_the_miners_bytetrack_frame_rate() {
    // The Python miner runs sv.ByteTrack() with its default frame_rate of 30 whatever the
    // video; the deployment that mirrors it must not get the processed-frame rate.
    let path = crate::test_support::workspace_root().join("configs/score-vision.yaml");
    let d = Deployment::from_file(&path).unwrap();
    let ctx = crate::registry::TrackerContext { frame_rate: 12.5 };
    let params = crate::registry::bytetrack_params(&ctx, &d.file.pipeline.tracker.params).unwrap();
    assert_eq!(params.frame_rate, 30.0);
    assert_eq!(params, pitchside_bytetrack::ByteTrackParams::default());
}

#[test]
fn image_sizes_have_an_upper_bound() {
    assert_eq!(ImageSize::new(ImageSize::MAX).map(ImageSize::get), Ok(4096));
    for huge in [4128, 65536, 99_999_968] {
        let err = ImageSize::new(huge).unwrap_err().to_string();
        assert!(
            err.contains("imgsz") && err.contains("at most 4096"),
            "{err}"
        );
    }
    let err = "65536".parse::<ImageSize>().unwrap_err();
    assert!(err.contains("at most 4096"), "{err}");
}

#[test]
fn huge_env_values_are_config_errors_naming_the_bound() {
    let cases = [
        ("IMG_SIZE", "65536", "at most 4096"),
        ("IMG_SIZE", "99999968", "at most 4096"),
        ("BATCH_SIZE", "100000", "at most 256"),
        ("FRAME_STRIDE", "4294967295", "at most 1000"),
        ("PREFETCH_FRAMES", "1000000", "at most 1024"),
        ("MAX_DETECTIONS", "1000000", "at most 10000"),
    ];
    for (var, value, bound) in cases {
        let msg = EnvOverrides::read(&[(var, value)][..])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(var) && msg.contains(bound),
            "{var}={value}: {msg}"
        );
    }
}

#[test]
fn huge_profile_values_name_the_field_and_the_bound() {
    let cases = [
        ("imgsz: { players: 65536 }", "imgsz", "at most 4096"),
        ("batch_size: 100000", "batch_size", "maximum, 256"),
        (
            "prefetch_frames: 4000000000",
            "prefetch_frames",
            "maximum, 1024",
        ),
        (
            "max_detections: 1000000",
            "max_detections",
            "maximum, 10000",
        ),
        ("frame_stride: 100000", "frame_stride", "maximum, 1000"),
        (
            "timeout_s: 18446744073709551615",
            "timeout_s",
            "maximum, 604800",
        ),
        ("cpu_threads: 100000", "cpu_threads", "maximum, 1024"),
        (
            "max_frame_pixels: 1000000000000",
            "max_frame_pixels",
            "maximum, 268435456",
        ),
        ("max_video_frames: 0", "max_video_frames", "at least 1"),
        ("decode_threads: 257", "decode_threads", "maximum, 256"),
        // Each within its bound, together a 51 GB batch.
        (
            "batch_size: 256\n    imgsz: { players: 4096, pitch: 4096, ball: 4096 }",
            "batch_size",
            "maximum, 268435456",
        ),
    ];
    for (field_yaml, field, bound) in cases {
        let y = format!("{MINIMAL}profiles:\n  cpu:\n    {field_yaml}\n");
        let msg = parse(&y).unwrap_err().to_string();
        assert!(msg.starts_with("t.yaml:18:5: "), "{msg}");
        assert!(msg.contains(field) && msg.contains(bound), "{msg}");
    }
    // The bounds themselves are accepted.
    let at_max = format!(
        "{MINIMAL}profiles:\n  cuda:\n    batch_size: 256\n    prefetch_frames: 1024\n    \
         max_detections: 10000\n    frame_stride: 1000\n    timeout_s: 604800\n    \
         cpu_threads: 1024\n    decode_threads: 256\n    frame_conversion: exact\n    \
         imgsz: {{ players: 1024, pitch: 1024, ball: 1024 }}\n"
    );
    let d = parse(&at_max).unwrap();
    let e = d.effective(Backend::Cuda, &no_env()).unwrap();
    assert_eq!(e.profile.decode_threads, 256);
    assert_eq!(e.profile.frame_conversion, FrameConversion::Exact);
    // The defaults: all cores, conversion at model size; the environment overrides both.
    let e = d.effective(Backend::Cpu, &no_env()).unwrap();
    assert_eq!(e.profile.decode_threads, 0);
    assert_eq!(e.profile.frame_conversion, FrameConversion::ModelSize);
    let env = [("DECODE_THREADS", "2"), ("FRAME_CONVERSION", "exact")];
    let e = d
        .effective(Backend::Cpu, &EnvOverrides::read(&env[..]).unwrap())
        .unwrap();
    assert_eq!(e.profile.decode_threads, 2);
    assert_eq!(e.profile.frame_conversion, FrameConversion::Exact);
    let y = format!("{MINIMAL}profiles:\n  cpu:\n    frame_conversion: fast\n");
    let msg = parse(&y).unwrap_err().to_string();
    assert!(
        msg.starts_with("t.yaml:18:")
            && msg.contains(
                "frame_conversion: unknown variant `fast`, expected `exact` or `model_size`"
            ),
        "{msg}"
    );
    for (var, value) in [("DECODE_THREADS", "257"), ("FRAME_CONVERSION", "fast")] {
        let e = EnvOverrides::read(&[(var, value)][..])
            .unwrap_err()
            .to_string();
        assert!(e.contains(var), "{e}");
    }
}

#[test]
fn videos_over_the_profile_bounds_are_refused_with_the_numbers() {
    use crate::config::VideoTooLarge;
    use crate::video::VideoInfo;
    let d = parse(&format!(
        "{MINIMAL}profiles:\n  cpu:\n    max_frame_pixels: 2000000\n    max_video_frames: 750\n"
    ))
    .unwrap();
    let p = d.effective(Backend::Cpu, &no_env()).unwrap().profile;
    let video = |width, height, frame_count| VideoInfo {
        width,
        height,
        fps: 25.0,
        frame_count,
    };
    p.check_video(&video(1920, 1040, 750)).unwrap();
    let e = p.check_video(&video(1920, 1080, 750)).unwrap_err();
    assert!(
        matches!(
            e,
            VideoTooLarge::Pixels {
                pixels: 2073600,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "the video is 1920x1080 (2073600 pixels a frame), above the profile's max_frame_pixels, 2000000"
    );
    let e = p.check_video(&video(1280, 720, 751)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the video has 751 frames (30 s at 25.00 fps), above the profile's max_video_frames, 750"
    );
    // The defaults take a 4K clip of an hour, and refuse the 16000x12000 frame of issue 14.
    let p = parse(MINIMAL)
        .unwrap()
        .effective(Backend::Cpu, &no_env())
        .unwrap()
        .profile;
    p.check_video(&video(3840, 2160, 90_000)).unwrap();
    p.check_video(&video(16000, 12000, 10)).unwrap_err();
    // A frame count of 0 (unknown to the container) is not refused by the count.
    p.check_video(&video(1280, 720, 0)).unwrap();
}

#[test]
fn a_model_size_with_the_profile_batch_is_bounded_too() {
    // The cuda profile batches 32 frames: IMG_SIZE=4096 makes that 537 M pixels.
    let d = parse(MINIMAL).unwrap();
    let o = EnvOverrides::read(&[("IMG_SIZE", "4096")][..]).unwrap();
    let msg = d.effective(Backend::Cuda, &o).unwrap_err().to_string();
    assert!(msg.contains("batch_size 32 at imgsz 4096"), "{msg}");
    assert!(msg.contains("maximum"), "{msg}");
    // On cpu (batch 1) the same size is fine.
    d.effective(Backend::Cpu, &o).unwrap();
}

#[test]
fn an_unclosed_bracket_is_named_not_what_it_swallowed() {
    // `{` left open: YAML reads the next lines into the mapping, and the parser's own
    // message is about them (`invalid type: string "2 pitch"`, `unknown variant ...`).
    let yaml = MINIMAL.replace(
        "    task: detect\n",
        "    task: detect\n    class_map: { 2: 2\n",
    );
    let msg = parse(&yaml).unwrap_err().to_string();
    assert!(
        msg.contains("the `{` at line 5 column 16 is not closed on its line"),
        "{msg}"
    );
    // `[` left open where a name belongs.
    let yaml = format!("device: [cpu\n{MINIMAL}");
    let msg = parse(&yaml).unwrap_err().to_string();
    assert!(
        msg.contains("the `[` at line 1 column 9 is not closed on its line"),
        "{msg}"
    );
    assert!(!msg.contains("YAML tag"), "{msg}");
    // A list where a name belongs, brackets closed.
    let yaml = format!("device: [cpu]\n{MINIMAL}");
    let msg = parse(&yaml).unwrap_err().to_string();
    assert!(
        msg.contains("device: invalid type: sequence, expected a single name"),
        "{msg}"
    );
    assert!(!msg.contains("not closed"), "{msg}");
    // Closed brackets, quoted or commented ones are not flagged.
    assert_eq!(
        unclosed_flow("a: { b: 1 }\nc: '[x'\nd: 1 # [note\ne: \"{\"\n"),
        None
    );
}

#[test]
fn kernel_cache_is_checked_where_it_is_written() {
    // Relative to the YAML file, like model paths; absent means the per-user default.
    assert_eq!(parse(MINIMAL).unwrap().kernel_cache_root(), None);
    let d = parse(&format!("{MINIMAL}kernel_cache: kernels\n")).unwrap();
    assert_eq!(d.kernel_cache_root(), Some(PathBuf::from("./kernels")));
    for (value, why) in [("''", "is empty"), ("~/.cache/k", "`~`")] {
        let msg = parse(&format!("{MINIMAL}kernel_cache: {value}\n"))
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("t.yaml:16:1: "), "{msg}");
        assert!(msg.contains(why), "{msg}");
    }
    let msg = parse(&format!("{MINIMAL}kernel_cache: [a]\n"))
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("t.yaml:16:"), "{msg}");
    // An existing file where the directory should be: said at check_files, with its place.
    let dir = tempfile::tempdir().unwrap();
    for f in ["p.pt", "k.pt", "kernels"] {
        std::fs::write(dir.path().join(f), b"x").unwrap();
    }
    let cfg = dir.path().join("d.yaml");
    std::fs::write(&cfg, format!("{MINIMAL}kernel_cache: kernels\n")).unwrap();
    let d = Deployment::from_file(&cfg).unwrap();
    let msg = d.check_files().unwrap_err().to_string();
    assert!(msg.contains("d.yaml:16:1"), "{msg}");
    assert!(msg.contains("is not a directory"), "{msg}");
    std::fs::remove_file(dir.path().join("kernels")).unwrap();
    d.check_files().unwrap();
}
