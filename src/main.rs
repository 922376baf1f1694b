//! `pitchside`: the command line.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use pitchside_engine::config::{Deployment, EnvOverrides, ProcessEnv};
use pitchside_engine::device::{
    Backend, CompiledBackends, DeviceProbe, DeviceRequest, ProbeResult, SystemProbe, select_device,
};

#[derive(Parser)]
#[command(
    name = "pitchside",
    version,
    about = "Soccer video analysis: detection, pitch keypoints, tracking"
)]
struct Cli {
    /// Log filter (also RUST_LOG), e.g. `info`, `pitchside=debug`.
    #[arg(long, global = true, default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect the deployment configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// List the backends compiled in and the devices they find.
    Devices,
    /// Run a YOLO checkpoint on images; print detections as JSON.
    Detect(DetectArgs),
    /// Analyse a video: tracked objects and pitch keypoints for every frame (Score Vision JSON).
    Run(RunArgs),
    /// Where the time goes: per-stage throughput on a video, or per-image latency of a model.
    Bench(BenchArgs),
    /// Run the Score Vision miner service.
    Serve {
        /// Deployment YAML (default: the embedded configs/default.yaml); its `service:` section.
        #[arg(long)]
        config: Option<PathBuf>,
        /// auto | cuda | wgpu | cpu (also PITCHSIDE_DEVICE).
        #[arg(long)]
        device: Option<DeviceRequest>,
        /// Listen address, overriding `service.listen`.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// The Score Vision validator's keypoint score of an answer, computed locally.
    Score {
        /// The video the answer is for.
        #[arg(long)]
        video: PathBuf,
        /// The answer (Score Vision JSON, as `run` writes it).
        #[arg(long)]
        answer: PathBuf,
        /// Print every component as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Detector and tracker plugins: built-in and configured.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// List built-in plugins and the libraries the deployment names.
    List {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Deployment YAML (default: the embedded configs/default.yaml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// auto | cuda | wgpu | cpu (also PITCHSIDE_DEVICE).
    #[arg(long)]
    device: Option<DeviceRequest>,
    /// Write the JSON here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the video with boxes, ids and keypoints drawn.
    #[arg(long)]
    annotate: Option<PathBuf>,
    /// challenge_id to put in the response.
    #[arg(long, default_value = "local")]
    challenge_id: String,
    /// Also print the validator's keypoint score of the result (as `pitchside score`).
    #[arg(long)]
    score: bool,
    /// The video file.
    source: PathBuf,
}

#[derive(clap::Args)]
struct BenchArgs {
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    device: Option<DeviceRequest>,
    /// Benchmark one model on one image instead of the pipeline on a video: a checkpoint,
    /// or an architecture YAML (e.g. models/archs/yolov8.yaml named yolov8x.yaml) with random weights.
    #[arg(long)]
    model: Option<PathBuf>,
    /// With --model: image size.
    #[arg(long, default_value_t = 640)]
    imgsz: u32,
    /// With --model: timed iterations (after 2 warm-ups).
    #[arg(long, default_value_t = 10)]
    iterations: u32,
    /// With --model: run on the NdArray CPU backend (build with --features ndarray).
    #[arg(long)]
    ndarray: bool,
    /// With --model: run on burn-flex alone instead of the CPU executor (for comparisons).
    #[arg(long, conflicts_with = "ndarray")]
    flex: bool,
    /// With --model: run on the Candle CPU backend (build with --features candle).
    #[arg(long, conflicts_with_all = ["ndarray", "flex"])]
    candle: bool,
    /// With --model: square input (imgsz x imgsz) instead of ultralytics' minimal rectangle.
    #[arg(long)]
    square: bool,
    /// With --model: frames per forward pass (copies of the image).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// With --model: fp16 where the device supports it (CUDA).
    #[arg(long)]
    half: bool,
    /// With --model ARCH.yaml (random weights): number of classes.
    #[arg(long)]
    nc: Option<u32>,
    /// With --model ARCH.yaml (random weights): keypoints per object of a pose model (x, y, conf each).
    #[arg(long)]
    keypoints: Option<u32>,
    /// Pipeline bench: only the first N source frames.
    #[arg(long)]
    frames: Option<u64>,
    /// A video (pipeline bench) or an image (--model bench).
    source: PathBuf,
}

#[derive(clap::Args)]
struct DetectArgs {
    /// Ultralytics checkpoint (.pt) or .safetensors with its .json architecture.
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value = "640")]
    imgsz: pitchside_engine::config::ImageSize,
    #[arg(long, default_value_t = 0.25)]
    conf: f32,
    #[arg(long, default_value_t = 0.7)]
    iou: f32,
    #[arg(long, default_value_t = 300)]
    max_det: usize,
    /// Class-agnostic NMS.
    #[arg(long)]
    agnostic: bool,
    /// auto | cuda | wgpu | cpu (also PITCHSIDE_DEVICE).
    #[arg(long)]
    device: Option<DeviceRequest>,
    /// fp16 where the device supports it (CUDA).
    #[arg(long)]
    half: bool,
    /// Also write each image with its detections drawn into this folder.
    #[arg(long)]
    annotate: Option<PathBuf>,
    /// Images to run on.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (after profile and environment overrides) as YAML.
    Show {
        /// Deployment YAML (default: the embedded configs/default.yaml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// auto | cuda | wgpu | cpu (also PITCHSIDE_DEVICE).
        #[arg(long)]
        device: Option<DeviceRequest>,
    },
}

fn main() {
    let cli = Cli::parse();
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| cli.log.clone());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Config {
            command: ConfigCommand::Show { config, device },
        } => {
            let (deployment, env) = load_deployment(config.as_ref())?;
            let selection = choose_device(device, &deployment, &env)?;
            let effective = deployment.effective(selection, &env)?;
            print!("{}", serde_yaml_ng::to_string(&effective)?);
            Ok(())
        }
        Command::Devices => {
            let compiled = CompiledBackends::this_build();
            println!("backends compiled in: {}", join(&compiled.list()));
            for b in [Backend::Cuda, Backend::Wgpu, Backend::Cpu] {
                if !b.compiled() {
                    println!("{b:5} not compiled in (build with --features {b})");
                    continue;
                }
                match SystemProbe.probe(b) {
                    ProbeResult::Found(names) => println!("{b:5} {}", names.join(", ")),
                    ProbeResult::Missing(why) => println!("{b:5} unavailable: {why}"),
                }
            }
            let auto = select_device(DeviceRequest::Auto, compiled, &SystemProbe)?;
            println!("auto  -> {} ({})", auto.backend, auto.reason);
            Ok(())
        }
        Command::Detect(args) => detect(args),
        Command::Run(args) => run_video(args),
        Command::Bench(args) => bench(args),
        Command::Score {
            video,
            answer,
            json,
        } => {
            let score = pitchside_score::score_answer(&video, &answer)?;
            match json {
                true => println!("{}", serde_json::to_string_pretty(&score)?),
                false => print!("{score}"),
            }
            Ok(())
        }
        Command::Serve {
            config,
            device,
            listen,
        } => {
            let (deployment, env) = load_deployment(config.as_ref())?;
            let mut cfg = deployment.file.service.clone().unwrap_or_default();
            // A relative temp_dir is relative to the YAML file, like every other path.
            cfg.resolve_paths(&deployment.base_dir);
            let mut pipeline = build_pipeline(deployment, env, device)?;
            if let Some([w, h]) = cfg.warm_up_frame {
                eprintln!(
                    "warming up the models on a {w}x{h} batch (GPU autotuning can take minutes on a cold cache)..."
                );
                let took = pipeline.warm_up(w, h)?;
                eprintln!("warm-up done in {:.1} s", took.as_secs_f64());
            }
            let analyzer = std::sync::Arc::new(pitchside_service::PipelineAnalyzer::new(pipeline));
            pitchside_service::run(cfg, listen, analyzer)?;
            Ok(())
        }
        Command::Plugins {
            command: PluginsCommand::List { config },
        } => {
            let deployment = match &config {
                Some(p) => Some(Deployment::from_file(p)?),
                None => None,
            };
            print!(
                "{}",
                pitchside_engine::plugin_host::plugins_table(deployment.as_ref())
            );
            Ok(())
        }
    }
}

/// Loads the deployment, picks the device, checks files and builds the pipeline.
fn load_pipeline(
    config: Option<&PathBuf>,
    device: Option<DeviceRequest>,
) -> Result<pitchside_engine::pipeline::Pipeline> {
    let (deployment, env) = load_deployment(config)?;
    build_pipeline(deployment, env, device)
}

/// Picks the device, checks files and builds the pipeline of a loaded deployment.
fn build_pipeline(
    deployment: Deployment,
    env: EnvOverrides,
    device: Option<DeviceRequest>,
) -> Result<pitchside_engine::pipeline::Pipeline> {
    let backend = choose_device(device, &deployment, &env)?;
    let effective = deployment.effective(backend, &env)?;
    deployment.check_files()?;
    tracing::info!(
        profile = %effective.profile_name,
        batch = effective.profile.batch_size,
        stride = effective.profile.frame_stride,
        "loading models"
    );
    Ok(pitchside_engine::pipeline::Pipeline::load(
        deployment, effective, backend,
    )?)
}

fn run_video(args: RunArgs) -> Result<()> {
    use std::io::IsTerminal;
    let mut pipeline = load_pipeline(args.config.as_ref(), args.device)?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} frames  {per_sec}  ETA {eta}",
            )
            .expect("template"),
        );
        b
    });
    let progress = |done: u64, total: u64| {
        if let Some(b) = &bar {
            b.set_length(total.max(done));
            b.set_position(done);
        }
    };
    let opts = pitchside_engine::pipeline::RunOptions {
        challenge_id: args.challenge_id.clone(),
        cancel: None,
        progress: Some(&progress),
        max_frames: None,
    };
    let (response, stats) = pipeline.run(&args.source, &opts)?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    tracing::info!(
        frames = response.frames.len(),
        processed = stats.processed_frames,
        seconds = stats.wall_s,
        fps = stats.source_frames as f64 / stats.wall_s.max(1e-9),
        "done"
    );
    if let Some(e) = &response.error {
        tracing::warn!(error = %e, "the result is partial");
    }
    let json = serde_json::to_string(&response)?;
    match &args.out {
        Some(p) => {
            std::fs::write(p, &json).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => println!("{json}"),
    }
    if args.score {
        let evidence = pitchside_score::VideoEvidence::from_video(&args.source)?;
        eprint!(
            "{}",
            pitchside_score::score_answer_json(&evidence, json.as_bytes(), None)?
        );
    }
    if let Some(out) = &args.annotate {
        pitchside_engine::media::annotate_video(&args.source, &response.frames, out)?;
        tracing::info!(path = %out.display(), "annotated video written");
    }
    Ok(())
}

fn bench(args: BenchArgs) -> Result<()> {
    if let Some(model) = &args.model {
        return bench_model(model, &args);
    }
    let mut pipeline = load_pipeline(args.config.as_ref(), args.device)?;
    let opts = pitchside_engine::pipeline::RunOptions {
        max_frames: args.frames,
        ..Default::default()
    };
    let (response, stats) = pipeline.run(&args.source, &opts)?;
    let peak = pitchside_engine::pipeline::peak_rss_bytes();
    let n = stats.source_frames as f64;
    let np = stats.processed_frames.max(1) as f64;
    let e = pitchside_engine::config::EffectiveConfig::clone(pipeline.effective());
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
    let json = serde_json::json!({
        "source": args.source.display().to_string(),
        "device": e.device,
        "profile": e.profile_name,
        "batch_size": e.profile.batch_size,
        "frame_stride": e.profile.frame_stride,
        "stats": stats,
        "source_fps": n / stats.wall_s.max(1e-9),
        "peak_rss_bytes": peak,
        "partial": response.partial,
    });
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

fn bench_model(model_path: &std::path::Path, args: &BenchArgs) -> Result<()> {
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
        let env = EnvOverrides::read(&ProcessEnv)?;
        let request = args.device.or(env.device).unwrap_or_default();
        let sel = select_device(request, CompiledBackends::this_build(), &SystemProbe)?;
        pitchside_engine::model_device(sel.backend, args.half)
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
        imgsz: args.imgsz,
        rect: !args.square,
        ..Default::default()
    };
    let frames = vec![image.frame(0); args.batch.max(1)];
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
    let lb =
        pitchside_models::Letterbox::new(image.width, image.height, args.imgsz, !args.square, 32);
    let batch = args.batch.max(1);
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

fn detect(args: DetectArgs) -> Result<()> {
    use pitchside_engine::media::{annotate_detections, read_image};
    use pitchside_models::{NmsOptions, PredictOptions, YoloModel};

    for (name, v) in [("--conf", args.conf), ("--iou", args.iou)] {
        if !(0.0..=1.0).contains(&v) {
            anyhow::bail!("{name} {v} is outside [0, 1]");
        }
    }
    let env = EnvOverrides::read(&ProcessEnv)?;
    let request = args.device.or(env.device).unwrap_or_default();
    let sel = select_device(request, CompiledBackends::this_build(), &SystemProbe)?;
    tracing::info!(device = %sel.backend, reason = %sel.reason, "device selected");
    let model = YoloModel::load(
        &args.model,
        pitchside_engine::model_device(sel.backend, args.half),
    )?;
    let opts = PredictOptions {
        imgsz: args.imgsz.get(),
        nms: NmsOptions {
            conf: args.conf,
            iou: args.iou,
            max_det: args.max_det,
            agnostic: args.agnostic,
        },
        rect: true,
    };
    if let Some(dir) = &args.annotate {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut results = Vec::new();
    for path in &args.images {
        let image = read_image(path)?;
        let (mut dets, times) = model.predict(&[image.frame(0)], &opts)?;
        let dets = dets.pop().unwrap_or_default();
        tracing::debug!(image = %path.display(), ?times, n = dets.len(), "detected");
        if let Some(dir) = &args.annotate {
            let name = path
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default();
            let names = |c: u32| {
                model
                    .names
                    .get(&c)
                    .cloned()
                    .unwrap_or_else(|| c.to_string())
            };
            annotate_detections(&image, &dets, &names, &dir.join(name))?;
        }
        let detections: Vec<serde_json::Value> = dets
            .iter()
            .map(|d| {
                let mut o = serde_json::json!({
                    "bbox": d.bbox,
                    "score": d.score,
                    "class_id": d.class_id,
                });
                if model.num_keypoints() > 0 {
                    o["keypoints"] = serde_json::json!(d.keypoints);
                }
                o
            })
            .collect();
        results.push(serde_json::json!({
            "image": path.display().to_string(),
            "width": image.width,
            "height": image.height,
            "detections": detections,
        }));
    }
    println!("{}", serde_json::to_string_pretty(&results)?);
    Ok(())
}

fn join(b: &[Backend]) -> String {
    b.iter().map(|b| b.as_str()).collect::<Vec<_>>().join(", ")
}

/// Loads `--config` or the embedded default, and reads the environment overrides.
fn load_deployment(config: Option<&PathBuf>) -> Result<(Deployment, EnvOverrides)> {
    let deployment = match config {
        Some(path) => Deployment::from_file(path)?,
        None => Deployment::embedded(std::env::current_dir().context("no working directory")?)?,
    };
    let env = EnvOverrides::read(&ProcessEnv)?;
    Ok((deployment, env))
}

/// `--device` beats `PITCHSIDE_DEVICE`, which beats the deployment's `device:`.
fn choose_device(
    cli: Option<DeviceRequest>,
    d: &Deployment,
    env: &EnvOverrides,
) -> Result<Backend> {
    let request = cli.or(env.device).unwrap_or(d.file.device);
    let sel = select_device(request, CompiledBackends::this_build(), &SystemProbe)?;
    tracing::info!(device = %sel.backend, reason = %sel.reason, "device selected");
    Ok(sel.backend)
}
