//! `pitchside bench`: per-stage times of the pipeline on a video, or (`--model`) the
//! per-image latency of one model.

use std::path::{Path, PathBuf};

use anyhow::Result;
use pitchside_engine::config::EffectiveConfig;
use pitchside_engine::pipeline::RunOptions;
use pitchside_engine::video::Segmenting;

use crate::deployment::{DeploymentArgs, choose_device_without_deployment};

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub deployment: DeploymentArgs,
    /// Benchmark one model on one image instead of the pipeline on a video: a checkpoint,
    /// or an architecture YAML (e.g. models/archs/yolov8.yaml named yolov8x.yaml) with random weights.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// With --model: image size (a multiple of 32, at most 4096).
    #[arg(long, default_value_t = pitchside_engine::config::ImageSize::fixed(640))]
    pub imgsz: pitchside_engine::config::ImageSize,
    /// With --model: timed iterations (after 2 warm-ups).
    #[arg(long, default_value_t = 10)]
    pub iterations: u32,
    /// With --model: run on the NdArray CPU backend (build with --features ndarray).
    #[arg(long)]
    pub ndarray: bool,
    /// With --model: run on burn-flex alone instead of the CPU executor (for comparisons).
    #[arg(long, conflicts_with = "ndarray")]
    pub flex: bool,
    /// With --model: run on the Candle CPU backend (build with --features candle).
    #[arg(long, conflicts_with_all = ["ndarray", "flex"])]
    pub candle: bool,
    /// With --model: square input (imgsz x imgsz) instead of ultralytics' minimal rectangle.
    #[arg(long)]
    pub square: bool,
    /// With --model: frames per forward pass (copies of the image), at most the profiles' bound.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=pitchside_engine::config::limits::BATCH_SIZE as i64))]
    pub batch: u32,
    /// With --model: fp16 where the device supports it (CUDA, LibTorch).
    #[arg(long)]
    pub half: bool,
    /// With --model ARCH.yaml (random weights): number of classes.
    #[arg(long)]
    pub nc: Option<u32>,
    /// With --model ARCH.yaml (random weights): keypoints per object of a pose model (x, y, conf each).
    #[arg(long)]
    pub keypoints: Option<u32>,
    /// Pipeline bench: only the first N source frames.
    #[arg(long)]
    pub frames: Option<u64>,
    /// Pipeline bench: also the validator's keypoint score of the result (as `pitchside
    /// score`), to see what stride, image size or thresholds cost in quality.
    #[arg(long, conflicts_with = "model")]
    pub score: bool,
    /// Pipeline bench: also time `ffmpeg -threads N -i SOURCE -f null -` (N: the profile's
    /// decode threads) just before and just after the run, and print the pipeline's source
    /// rate as a ratio of FFmpeg's raw decode rate (the mean of both).
    #[arg(long, conflicts_with = "model")]
    pub vs_ffmpeg: bool,
    /// Pipeline bench: one frame-threaded decoder even for long inputs (no parallel segments).
    #[arg(long, conflicts_with = "model")]
    pub no_segments: bool,
    /// Pipeline bench: decode in software even on a CUDA device (which takes NVDEC).
    #[arg(long, conflicts_with = "model")]
    pub software_decode: bool,
    /// Pipeline bench: instead of a run, decode each frame both ways (full-size BGR and
    /// each detector's model size) and compare every detector's detections on the two.
    #[arg(long, conflicts_with_all = ["model", "vs_ffmpeg", "score"])]
    pub conversion_parity: bool,
    /// A video (pipeline bench) or an image (--model bench).
    pub source: PathBuf,
}

/// `ffmpeg -threads N -i SOURCE -f null -`: decoded frames per second, wall clock.
fn ffmpeg_decode_fps(source: &Path, threads: usize, frames: Option<u64>) -> Result<(f64, u64)> {
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-threads"])
        .arg(threads.to_string())
        .arg("-i")
        .arg(source)
        .args(["-an", "-map", "0:v:0"]);
    if let Some(n) = frames {
        cmd.args(["-frames:v", &n.to_string()]);
    }
    cmd.args(["-f", "null", "-"]);
    let t = std::time::Instant::now();
    let out = cmd
        .output()
        .map_err(|e| anyhow::anyhow!("--vs-ffmpeg: cannot run ffmpeg ({e}); is it installed?"))?;
    let wall = t.elapsed().as_secs_f64();
    if !out.status.success() {
        anyhow::bail!(
            "--vs-ffmpeg: ffmpeg failed on {}: {}",
            source.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let n = match frames {
        Some(n) => n,
        None => pitchside_engine::video::probe(source)?.frame_count,
    };
    Ok((n as f64 / wall.max(1e-9), n))
}

pub fn run(args: BenchArgs) -> Result<()> {
    if let Some(model) = &args.model {
        return bench_model(model, &args);
    }
    crate::commands::score::check_available(args.score, "--score")?;
    let mut pipeline = crate::deployment::load_pipeline(args.deployment.resolve()?)?;
    let video = pipeline.admit(&args.source)?;
    if args.conversion_parity {
        let stride = pipeline.profile().frame_stride;
        let report = pipeline.conversion_parity(&video, stride, args.frames)?;
        for r in &report {
            eprintln!(
                "{}: input {:?}, {} frames: {} exact / {} model-size detections, {} matched (IoU >= 0.5), IoU mean {:.4} min {:.4}, |score delta| mean {:.4} max {:.4}, keypoints {:.2} px apart",
                r.role,
                r.input_size,
                r.frames,
                r.exact_detections,
                r.fast_detections,
                r.matched,
                r.mean_iou,
                r.min_iou,
                r.mean_abs_score_delta,
                r.max_abs_score_delta,
                r.mean_keypoint_px
            );
        }
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let opts = RunOptions {
        max_frames: args.frames,
        segmenting: if args.no_segments {
            Segmenting::Never
        } else {
            Segmenting::Auto
        },
        software_decoding: args.software_decode,
        ..Default::default()
    };
    let decode_threads = match pipeline.profile().decode_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n as usize,
    };
    let ffmpeg_before = if args.vs_ffmpeg {
        Some(ffmpeg_decode_fps(
            &args.source,
            decode_threads,
            args.frames,
        )?)
    } else {
        None
    };
    let (response, stats) = pipeline.run(&video, &opts)?;
    let ffmpeg_after = if args.vs_ffmpeg {
        Some(ffmpeg_decode_fps(
            &args.source,
            decode_threads,
            args.frames,
        )?)
    } else {
        None
    };
    let peak = pitchside_engine::pipeline::peak_rss_bytes();
    let n = stats.source_frames as f64;
    let np = stats.processed_frames.max(1) as f64;
    let e = EffectiveConfig::clone(pipeline.effective());
    eprintln!(
        "pitchside bench: {} ({} source frames, {} processed, stride {}, batch {}, device {}, profile {})",
        args.source.display(),
        stats.source_frames,
        stats.processed_frames,
        e.profile.frame_stride,
        e.profile.batch_size,
        e.device,
        e.profile_name
    );
    eprintln!("{:<28} {:>10} {:>12}", "stage", "total s", "ms/frame");
    let row =
        |name: &str, s: f64, per: f64| eprintln!("{name:<28} {s:>10.3} {:>12.2}", s * 1000.0 / per);
    row("decode (decoder thread)", stats.decode_s, n);
    row("decode wait (pipeline)", stats.decode_wait_s, np);
    for (role, d) in &stats.detectors {
        row(&format!("{role}: preprocess"), d.preprocess_s, np);
        row(&format!("{role}: inference"), d.forward_s, np);
        row(&format!("{role}: nms + scale"), d.postprocess_s, np);
        row(&format!("{role}: detector call"), d.calls_s, np);
    }
    row("detect (concurrent wall)", stats.detect_wall_s, np);
    row("tracking", stats.tracking_s, np);
    row("assemble output", stats.assemble_s, n);
    row("end to end", stats.wall_s, n);
    eprintln!(
        "end-to-end: {:.2} source fps, {:.2} processed fps; peak RSS {}; partial: {}",
        n / stats.wall_s.max(1e-9),
        np / stats.wall_s.max(1e-9),
        peak.map(|b| format!("{:.0} MiB", b as f64 / 1048576.0))
            .unwrap_or_else(|| "?".into()),
        response.partial
    );
    eprintln!(
        "decoding: {}, {} thread(s), {} segment decoder(s); frame conversion: {}",
        stats.decode_acceleration, decode_threads, stats.decode_segments, stats.frame_conversion
    );
    let source_fps = n / stats.wall_s.max(1e-9);
    let ffmpeg = match (ffmpeg_before, ffmpeg_after) {
        (Some((a, _)), Some((b, _))) => {
            let mean = (a + b) / 2.0;
            eprintln!(
                "ffmpeg -threads {decode_threads} -f null: {a:.1} fps before, {b:.1} fps after; pitchside / ffmpeg = {:.3}",
                source_fps / mean
            );
            Some(serde_json::json!({
                "threads": decode_threads,
                "fps_before": a,
                "fps_after": b,
                "ratio": source_fps / mean,
            }))
        }
        _ => None,
    };
    let score = if args.score {
        let score = crate::commands::score::of_response(&args.source, &response)?;
        eprint!("{score}");
        Some(score)
    } else {
        None
    };
    let json = serde_json::json!({
        "keypoint_score": score,
        "source": args.source.display().to_string(),
        "device": e.device,
        "profile": e.profile_name,
        "batch_size": e.profile.batch_size,
        "frame_stride": e.profile.frame_stride,
        "stats": stats,
        "source_fps": source_fps,
        "decode_threads": decode_threads,
        "ffmpeg": ffmpeg,
        "peak_rss_bytes": peak,
        "partial": response.partial,
    });
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

fn bench_model(model_path: &Path, args: &BenchArgs) -> Result<()> {
    use pitchside_models::{Checkpoint, ComparisonBackend, PredictOptions, StageTimes, YoloModel};
    let image = pitchside_engine::media::read_image(&args.source)?;
    // Burn's CPU backends as they are, for comparison; otherwise the production device.
    let comparison = [
        (args.ndarray, ComparisonBackend::NdArray),
        (args.flex, ComparisonBackend::Flex),
        (args.candle, ComparisonBackend::Candle),
    ]
    .into_iter()
    .find_map(|(on, b)| on.then_some(b));
    let device = if comparison.is_some() {
        pitchside_models::ModelDevice::Cpu
    } else {
        // One model, no pipeline: the deployment's `device:` does not apply.
        choose_device_without_deployment(args.deployment.device)?.model_device(args.half)
    };
    let t = std::time::Instant::now();
    let is_arch = model_path
        .extension()
        .is_some_and(|e| e == "yaml" || e == "yml");
    let ck = if is_arch {
        // An architecture description alone: random weights, for speed measurements.
        use pitchside_models::synthetic::{load_arch_yaml, synthetic_checkpoint};
        let mut arch = load_arch_yaml(model_path)?;
        if let Some(nc) = args.nc {
            arch["nc"] = nc.into();
        }
        if let Some(k) = args.keypoints {
            arch["kpt_shape"] = serde_json::json!([k, 3]);
        }
        synthetic_checkpoint(arch, None, 0)?
    } else {
        Checkpoint::load(model_path)?
    };
    let model = match comparison {
        Some(backend) => YoloModel::with_comparison_backend(ck, backend)?,
        None => YoloModel::from_checkpoint(ck, device)?,
    };
    let load_s = t.elapsed().as_secs_f64();
    let opts = PredictOptions {
        imgsz: args.imgsz.get(),
        rect: !args.square,
        ..Default::default()
    };
    let frames = vec![image.frame(0); args.batch as usize];
    // Warm-up: first runs compile kernels (and autotune on GPUs).
    for _ in 0..2 {
        model.predict(&frames, &opts)?;
    }
    let mut all: Vec<StageTimes> = Vec::new();
    for _ in 0..args.iterations.max(1) {
        all.push(model.predict(&frames, &opts)?.1);
    }
    let med = |f: &dyn Fn(&StageTimes) -> f64| {
        let mut v: Vec<f64> = all.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2] * 1000.0
    };
    let pre = med(&|s| s.preprocess.as_secs_f64());
    let fwd = med(&|s| s.forward.as_secs_f64());
    let post = med(&|s| s.postprocess.as_secs_f64());
    let total = med(&|s| (s.preprocess + s.forward + s.postprocess).as_secs_f64());
    let lb = pitchside_models::Letterbox::new(
        image.width,
        image.height,
        args.imgsz.get(),
        !args.square,
        32,
    );
    let batch = args.batch as usize;
    eprintln!(
        "{} on {} ({}x{} input, batch {batch}), median of {}: preprocess {pre:.1} ms, forward {fwd:.1} ms, postprocess {post:.2} ms, total {total:.1} ms per batch = {:.1} img/s (load {load_s:.2} s)",
        model_path.display(),
        model.engine(),
        lb.out_w(),
        lb.out_h(),
        args.iterations,
        batch as f64 * 1000.0 / total
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "model": model_path.display().to_string(),
            "device": comparison.map_or(device.name(), |b| b.name()),
            "engine": model.engine(),
            "input": [lb.out_h(), lb.out_w()],
            "iterations": args.iterations,
            "batch": batch,
            "images_per_s": batch as f64 * 1000.0 / total,
            "median_ms": {"preprocess": pre, "forward": fwd, "postprocess": post, "total": total},
            "load_s": load_s,
        }))?
    );
    Ok(())
}
