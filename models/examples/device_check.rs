//! Model-only checks for a GPU machine: this binary reads no images (its inputs are
//! ultralytics' own letterboxed tensors), but it links the models crate and so OpenCV's
//! libraries, which scripts/gpu/pack.sh bundles beside it (see scripts/gpu/device-check.sh).
//!
//! ```text
//! device_check parity DEVICE DIR STEM   # Burn vs ultralytics' full raw head output
//! device_check bench DEVICE ARCH.yaml BATCH [IMGSZ|WxH] [ITERS] [NC] [KPTS]
//! ```
//! DEVICE: cpu | cuda | cuda-half | wgpu | torch-cpu | torch-cuda | torch-cuda-half (the
//! backends this build has; `torch-*`: LibTorch through burn-tch, `--features torch`). Each run prints one
//! JSON line on stdout. `WxH` (e.g. `640x384`, what a 1080p frame letterboxes to at 640) is
//! the input's width and height; a plain number is a square. GPU runs use Pitchside's
//! kernel cache (`pitchside_models::kernel_cache`: `$XDG_CACHE_HOME/pitchside/kernels/<gpu>/`),
//! named in each line with its autotune entry count.
//!
//! `parity` reads `DIR/STEM.pt` (an ultralytics checkpoint), `DIR/STEM.input.f32` (the
//! exact tensor ultralytics fed its network, letterboxed by ultralytics) and
//! `DIR/STEM.raw.f32` (its head output, fp32 on CPU), both described by `DIR/STEM.json`
//! (written by tools/gpu/make_parity_inputs.py), runs the Burn network on the same input
//! and compares every value. `bench` times the forward pass with the input already on the
//! device and the device synchronised after the last batch, as CUDA-event timings in
//! PyTorch do.

use std::path::Path;
use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
#[cfg(feature = "torch")]
use pitchside_models::TorchDevice;
use pitchside_models::burn_net::{BurnNet, NetBackend, host_tensor};
use pitchside_models::postprocess::{Candidate, box_iou, nms};
use pitchside_models::synthetic::{load_arch_yaml, synthetic_checkpoint};
use pitchside_models::{Checkpoint, ModelDevice, NmsOptions, Plan, YoloTask, kernel_cache};
use serde_json::{Value, json};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn read_f32(path: &Path) -> Res<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn dims<const D: usize>(v: &Value) -> Res<[usize; D]> {
    let a: Vec<usize> = serde_json::from_value(v.clone())?;
    a.try_into()
        .map_err(|_| format!("expected {D} dims").into())
}

/// Per-channel-group worst differences between Burn's and ultralytics' head outputs.
fn compare(ours: &[f32], theirs: &[f32], c: usize, n: usize, nc: usize) -> Value {
    let mut box_abs = 0f32;
    let mut cls_abs = 0f32;
    let mut kpt_abs = 0f32;
    let mut non_finite = 0usize;
    for ch in 0..c {
        for a in 0..n {
            let (x, y) = (ours[ch * n + a], theirs[ch * n + a]);
            if !x.is_finite() {
                non_finite += 1;
                continue;
            }
            let d = (x - y).abs();
            let slot = if ch < 4 {
                &mut box_abs
            } else if ch < 4 + nc {
                &mut cls_abs
            } else {
                &mut kpt_abs
            };
            *slot = slot.max(d);
        }
    }
    json!({"max_abs_box_px": box_abs, "max_abs_score": cls_abs,
           "max_abs_keypoint": kpt_abs, "non_finite": non_finite})
}

/// What a user sees: detections after NMS (conf 0.05, ultralytics' NMS), matched by class
/// and IoU; the worst IoU and score difference, and whether the counts agree.
fn compare_detections(ours: &[f32], theirs: &[f32], c: usize, n: usize, nc: usize) -> Value {
    let opts = NmsOptions {
        conf: 0.05,
        ..NmsOptions::default()
    };
    let (a, b): (Vec<Candidate>, Vec<Candidate>) =
        (nms(ours, c, n, nc, &opts), nms(theirs, c, n, nc, &opts));
    let mut used = vec![false; a.len()];
    let (mut worst_iou, mut worst_score, mut unmatched) = (1f32, 0f32, 0usize);
    for want in &b {
        let best = a
            .iter()
            .enumerate()
            .filter(|(i, d)| !used[*i] && d.class_id == want.class_id)
            .map(|(i, d)| (i, box_iou(&d.xyxy, &want.xyxy)))
            .max_by(|x, y| x.1.total_cmp(&y.1));
        match best {
            Some((i, v)) if v > 0.5 => {
                used[i] = true;
                worst_iou = worst_iou.min(v);
                worst_score = worst_score.max((a[i].score - want.score).abs());
            }
            _ => unmatched += 1,
        }
    }
    json!({"count": a.len(), "reference_count": b.len(), "unmatched": unmatched,
           "worst_iou": worst_iou, "worst_score_abs": worst_score})
}

/// `exact`: the backend computes in f32 throughout (the CPU), so raw values must agree to
/// f32 rounding.
fn parity<B: NetBackend>(device: &B::Device, dir: &Path, stem: &str, exact: bool) -> Res<Value> {
    let meta_path = dir.join(format!("{stem}.json"));
    let text = std::fs::read_to_string(&meta_path).map_err(|e| {
        format!(
            "{}: {e} (run tools/gpu/make_parity_inputs.py)",
            meta_path.display()
        )
    })?;
    let meta: Value = serde_json::from_str(&text)?;
    let in_shape: [usize; 4] = dims(&meta["input_shape"])?;
    let [_, c, n]: [usize; 3] = dims(&meta["raw_shape"])?;
    let input = read_f32(&dir.join(format!("{stem}.input.f32")))?;
    let reference = read_f32(&dir.join(format!("{stem}.raw.f32")))?;
    let plan = Plan::from_checkpoint(Checkpoint::load(&dir.join(format!("{stem}.pt")))?)?;
    let net = BurnNet::<B>::new(&plan, device);
    let nc = net.num_classes();
    let t = Instant::now();
    let y = net.forward(host_tensor(input.clone(), in_shape, device));
    let ours = y
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    let first_s = t.elapsed().as_secs_f64();
    if ours.len() != c * n {
        return Err(format!("output has {} values, ultralytics' {}", ours.len(), c * n).into());
    }
    let mut out = compare(&ours, &reference, c, n, nc);
    let dets = compare_detections(&ours, &reference, c, n, nc);
    // The raw values are held to f32 rounding only on the CPU: burn-cuda's "f32" convolutions
    // run on tensor cores in TF32 (10-bit mantissa), and fp16 keeps ~3 digits; there the
    // detections decide (same count, IoU >= 0.99, scores within 1e-2), still tight enough to
    // catch a wrong layout, a missing layer or a mis-folded BatchNorm.
    let (box_tol, score_tol) = if exact {
        (0.05, 1e-3)
    } else {
        (f64::MAX, 1e-2)
    };
    let raw_ok = out["non_finite"] == 0
        && out["max_abs_box_px"].as_f64().unwrap_or(f64::MAX) <= box_tol
        && out["max_abs_score"].as_f64().unwrap_or(f64::MAX) <= score_tol;
    let dets_ok = dets["unmatched"] == 0
        && dets["count"] == dets["reference_count"]
        && dets["worst_iou"].as_f64().unwrap_or(0.0) >= 0.99
        && dets["worst_score_abs"].as_f64().unwrap_or(f64::MAX) <= score_tol;
    out["detections"] = dets;
    out["pass"] = (raw_ok && dets_ok).into();
    out["tolerance"] = json!({"raw_box_px": if exact { json!(box_tol) } else { json!(null) },
                               "score": score_tol, "detection_iou": 0.99});
    out["first_forward_s"] = first_s.into();
    out["shape"] = json!([in_shape, [1, c, n]]);
    Ok(out)
}

fn bench<B: NetBackend>(
    device: &B::Device,
    arch_path: &Path,
    batch: usize,
    [width, height]: [usize; 2],
    iters: usize,
    nc: Option<u64>,
    kpts: Option<u64>,
) -> Res<Value> {
    let mut arch = load_arch_yaml(arch_path)?;
    if let Some(nc) = nc {
        arch["nc"] = nc.into();
    }
    if let Some(k) = kpts {
        arch["kpt_shape"] = json!([k, 3]);
    }
    let plan = Plan::from_checkpoint(synthetic_checkpoint(arch, None, 0)?)?;
    let net = BurnNet::<B>::new(&plan, device);
    let x: Tensor<B, 4> = Tensor::random(
        [batch, 3, height, width],
        Distribution::Uniform(0.0, 1.0),
        device,
    );
    // First calls compile kernels and autotune every new shape.
    let t = Instant::now();
    let _ = net.forward(x.clone()).into_data();
    let first_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..2 {
        let _ = net.forward(x.clone());
    }
    B::sync(device).map_err(|e| format!("{e:?}"))?;
    let warm_s = t.elapsed().as_secs_f64();
    let mut per_batch_ms = Vec::with_capacity(iters);
    let t_all = Instant::now();
    for _ in 0..iters {
        let t = Instant::now();
        let y = net.forward(x.clone());
        B::sync(device).map_err(|e| format!("{e:?}"))?;
        drop(y);
        per_batch_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let total_s = t_all.elapsed().as_secs_f64();
    // Back to back without a sync per batch: what a pipeline that queues batches gets.
    let t = Instant::now();
    let mut last = None;
    for _ in 0..iters {
        last = Some(net.forward(x.clone()));
    }
    B::sync(device).map_err(|e| format!("{e:?}"))?;
    drop(last);
    let queued_s = t.elapsed().as_secs_f64();
    per_batch_ms.sort_by(f64::total_cmp);
    let median = per_batch_ms[per_batch_ms.len() / 2];
    let kpt = match net.task() {
        YoloTask::Detect => 0,
        YoloTask::Pose { keypoints, .. } => keypoints,
    };
    Ok(json!({
        "arch": arch_path.display().to_string(), "batch": batch, "input_wh": [width, height],
        "iters": iters, "nc": net.num_classes(), "keypoints": kpt,
        "first_forward_s": first_s, "warmup_s": warm_s,
        "median_batch_ms": median, "min_batch_ms": per_batch_ms[0],
        "img_per_s_synced": (batch * iters) as f64 / total_s,
        "img_per_s_median": batch as f64 / (median / 1e3),
        "img_per_s_queued": (batch * iters) as f64 / queued_s,
    }))
}

fn run<B: NetBackend>(device: &B::Device, args: &[String], exact: bool) -> Res<Value> {
    let arg = |i: usize| -> Res<&str> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("missing argument {i}; see the file's header").into())
    };
    match arg(0)? {
        "parity" => parity::<B>(device, Path::new(arg(2)?), arg(3)?, exact),
        "bench" => {
            let num = |i: usize, d: usize| -> Res<usize> {
                Ok(args.get(i).map(|s| s.parse()).transpose()?.unwrap_or(d))
            };
            let opt =
                |i: usize| -> Res<Option<u64>> { Ok(args.get(i).map(|s| s.parse()).transpose()?) };
            let size = args.get(4).map(String::as_str).unwrap_or("640");
            let wh = match size.split_once('x') {
                Some((w, h)) => [w.parse()?, h.parse()?],
                None => [size.parse()?; 2],
            };
            bench::<B>(
                device,
                Path::new(arg(2)?),
                num(3, 1)?,
                wh,
                num(5, 20)?,
                opt(6)?,
                opt(7)?,
            )
        }
        other => Err(format!("unknown command `{other}`").into()),
    }
}

/// LibTorch's device, checked (and cuDNN's algorithm search on, as in production).
#[cfg(feature = "torch")]
fn torch_device(device: TorchDevice) -> Res<burn::backend::libtorch::LibTorchDevice> {
    Ok(pitchside_models::torch::prepare(device)?)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let device = args.get(1).cloned().unwrap_or_default();
    // Before the first device use: cubecl reads its configuration once.
    let model_device = match device.as_str() {
        "cuda" => Some(ModelDevice::Cuda {
            half: false,
            index: 0,
        }),
        "cuda-half" => Some(ModelDevice::Cuda {
            half: true,
            index: 0,
        }),
        "wgpu" => Some(ModelDevice::Wgpu),
        _ => None,
    };
    let cache = match model_device.map(|d| kernel_cache::pin(None, d)) {
        Some(Err(e)) => {
            println!("{}", json!({"error": e.to_string(), "command": args}));
            std::process::exit(1);
        }
        Some(Ok(c)) => c,
        None => None,
    };
    let result: Res<Value> = match device.as_str() {
        #[cfg(feature = "cpu")]
        "cpu" => run::<burn::backend::Flex>(&Default::default(), &args, true),
        #[cfg(feature = "cuda")]
        "cuda" => run::<burn::backend::Cuda>(&Default::default(), &args, false),
        #[cfg(feature = "cuda")]
        "cuda-half" => run::<burn::backend::Cuda<half::f16>>(&Default::default(), &args, false),
        #[cfg(feature = "wgpu")]
        "wgpu" => run::<burn::backend::Wgpu>(&Default::default(), &args, false),
        #[cfg(feature = "torch")]
        "torch-cpu" => torch_device(TorchDevice::Cpu)
            .and_then(|d| run::<burn::backend::LibTorch>(&d, &args, true)),
        #[cfg(feature = "torch")]
        "torch-cuda" => torch_device(TorchDevice::Cuda(0))
            .and_then(|d| run::<burn::backend::LibTorch>(&d, &args, false)),
        #[cfg(feature = "torch")]
        "torch-cuda-half" => torch_device(TorchDevice::Cuda(0))
            .and_then(|d| run::<burn::backend::LibTorch<half::f16>>(&d, &args, false)),
        other => Err(format!("device `{other}` is not compiled into this build").into()),
    };
    let mut line = match result {
        Ok(v) => v,
        Err(e) => json!({"error": e.to_string()}),
    };
    line["command"] = json!(args);
    if let Some(c) = &cache {
        line["gpu"] = json!(c.gpu);
        line["kernel_cache"] = json!(c.dir.display().to_string());
        line["autotune_entries"] = json!(kernel_cache::autotune_entries(&c.dir));
    }
    println!("{line}");
    if line.get("error").is_some() || line.get("pass") == Some(&Value::Bool(false)) {
        std::process::exit(1);
    }
}
