//! `pitchside detect`: one checkpoint on images, detections as JSON.

use std::path::PathBuf;

use anyhow::{Context, Result};
use pitchside_engine::device::DeviceRequest;
use pitchside_engine::media::{annotate_detections, read_image};
use pitchside_models::{NmsOptions, PredictOptions, YoloModel};

use crate::deployment::choose_device_without_deployment;

#[derive(clap::Args)]
pub struct DetectArgs {
    /// Ultralytics checkpoint (.pt) or .safetensors with its .json architecture.
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, default_value = "640")]
    pub imgsz: pitchside_engine::config::ImageSize,
    #[arg(long, default_value_t = 0.25)]
    pub conf: f32,
    #[arg(long, default_value_t = 0.7)]
    pub iou: f32,
    #[arg(long, default_value_t = 300)]
    pub max_det: usize,
    /// Class-agnostic NMS.
    #[arg(long)]
    pub agnostic: bool,
    // Not `DeploymentArgs`: detect runs one checkpoint, no deployment.
    /// auto | cuda | wgpu | cpu | torch:cuda | torch:mps | torch:cpu (also PITCHSIDE_DEVICE).
    #[arg(long)]
    pub device: Option<DeviceRequest>,
    /// fp16 where the device supports it (CUDA).
    #[arg(long)]
    pub half: bool,
    /// Also write each image with its detections drawn into this folder.
    #[arg(long)]
    pub annotate: Option<PathBuf>,
    /// Images to run on.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

pub fn run(args: DetectArgs) -> Result<()> {
    for (name, v) in [("--conf", args.conf), ("--iou", args.iou)] {
        if !(0.0..=1.0).contains(&v) {
            anyhow::bail!("{name} {v} is outside [0, 1]");
        }
    }
    if args.annotate.is_some() && !pitchside_engine::media::CAN_DRAW {
        return Err(pitchside_engine::media::MediaError::NeedsOpenCv {
            what: "drawing detections (--annotate)",
        }
        .into());
    }
    let device = choose_device_without_deployment(args.device)?;
    let model = YoloModel::load(&args.model, device.model_device(args.half))?;
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
