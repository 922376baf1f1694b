//! `pitchside`: the command line.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use pitchside_engine::config::{Deployment, EnvOverrides, ProcessEnv};
use pitchside_engine::device::{
    Backend, CompiledBackends, DeviceProbe, DeviceRequest, ProbeResult, SystemProbe, select_device,
};

#[derive(Parser)]
#[command(name = "pitchside", version, about = "Soccer video analysis: detection, pitch keypoints, tracking")]
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
}

#[derive(clap::Args)]
struct DetectArgs {
    /// Ultralytics checkpoint (.pt) or .safetensors with its .json architecture.
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value_t = 640)]
    imgsz: u32,
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
    }
}

fn detect(args: DetectArgs) -> Result<()> {
    use pitchside_engine::media::{annotate_detections, read_image};
    use pitchside_models::{NmsOptions, PredictOptions, YoloModel};

    if args.imgsz == 0 || args.imgsz % 32 != 0 {
        anyhow::bail!("--imgsz {} is not a positive multiple of 32", args.imgsz);
    }
    for (name, v) in [("--conf", args.conf), ("--iou", args.iou)] {
        if !(0.0..=1.0).contains(&v) {
            anyhow::bail!("{name} {v} is outside [0, 1]");
        }
    }
    let env = EnvOverrides::read(&ProcessEnv)?;
    let request = args.device.or(env.device).unwrap_or_default();
    let sel = select_device(request, CompiledBackends::this_build(), &SystemProbe)?;
    tracing::info!(device = %sel.backend, reason = %sel.reason, "device selected");
    let model = YoloModel::load(&args.model, pitchside_engine::model_device(sel.backend, args.half))?;
    let opts = PredictOptions {
        imgsz: args.imgsz,
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
            let name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
            let names = |c: u32| model.names.get(&c).cloned().unwrap_or_else(|| c.to_string());
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
fn choose_device(cli: Option<DeviceRequest>, d: &Deployment, env: &EnvOverrides) -> Result<Backend> {
    let request = cli.or(env.device).unwrap_or(d.file.device);
    let sel = select_device(request, CompiledBackends::this_build(), &SystemProbe)?;
    tracing::info!(device = %sel.backend, reason = %sel.reason, "device selected");
    Ok(sel.backend)
}
