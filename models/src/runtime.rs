//! A loaded model on a chosen backend: frames in, detections out. [`YoloModel`] holds one
//! compiled [`Network`] (the CPU executor or a Burn backend) behind one trait.

use std::path::Path;
use std::time::Instant;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use pitchside_plugin::{Detection, FrameRef};
use rayon::prelude::*;

use crate::ModelError;
use crate::burn_net::{BurnNet, NetBackend, host_tensor};
use crate::checkpoint::Checkpoint;
use crate::device::ModelDevice;
use crate::network::Network;
#[cfg(feature = "cpu")]
use crate::nhwc::NhwcNet;
use crate::plan::{Plan, YoloTask};
use crate::postprocess::{NmsOptions, nms, to_detections};
use crate::preprocess::{Letterbox, letterbox_into};

/// Burn's CPU backends, run as they are for comparison benchmarks
/// (`pitchside bench --model F --flex/--ndarray/--candle`), never in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComparisonBackend {
    /// burn-flex alone (without the CPU executor).
    Flex,
    /// burn-ndarray (`ndarray` feature).
    NdArray,
    /// burn-candle on the CPU (`candle` feature).
    Candle,
}

impl ComparisonBackend {
    pub fn name(&self) -> &'static str {
        match self {
            ComparisonBackend::Flex => "cpu (burn-flex)",
            ComparisonBackend::NdArray => "cpu (ndarray)",
            ComparisonBackend::Candle => "cpu (candle)",
        }
    }
}

#[cfg(feature = "cpu")]
impl Network for NhwcNet {
    fn forward(
        &self,
        input: Vec<f32>,
        shape: [usize; 4],
    ) -> Result<(Vec<f32>, [usize; 3]), ModelError> {
        Ok(NhwcNet::forward(self, &input, shape))
    }

    fn engine(&self) -> &'static str {
        "cpu executor"
    }
}

/// A [`BurnNet`] with the device it lives on.
struct OnBurn<B: Backend> {
    net: BurnNet<B>,
    device: B::Device,
    engine: &'static str,
}

impl<B: NetBackend> Network for OnBurn<B> {
    fn forward(
        &self,
        input: Vec<f32>,
        shape: [usize; 4],
    ) -> Result<(Vec<f32>, [usize; 3]), ModelError> {
        let x: Tensor<B, 4> = host_tensor(input, shape, &self.device);
        let y = self.net.forward(x);
        let dims = y.dims();
        let values = y
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| ModelError::Inference(format!("{e:?}")))?;
        Ok((values, dims))
    }

    fn engine(&self) -> &'static str {
        self.engine
    }
}

fn on_burn<B: NetBackend>(
    plan: &Plan,
    device: B::Device,
    engine: &'static str,
) -> Box<dyn Network> {
    Box::new(OnBurn {
        net: BurnNet::<B>::new(plan, &device),
        device,
        engine,
    })
}

/// Inference settings for one call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictOptions {
    pub imgsz: u32,
    pub nms: NmsOptions,
    /// Minimal-rectangle letterbox (ultralytics `predict`); false pads to a square.
    pub rect: bool,
}

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions {
            imgsz: 640,
            nms: NmsOptions::default(),
            rect: true,
        }
    }
}

/// Time spent per stage in one call: the plugin interface's type, so a detector reports
/// it as is.
pub use pitchside_plugin::StageTimes;

/// Raw head output of one batch: `[batch, channels, anchors]`, channel-major per image.
pub struct RawOutput {
    pub values: Vec<f32>,
    pub dims: [usize; 3],
    pub letterbox: Letterbox,
}

/// A YOLO model loaded from an ultralytics checkpoint onto a device.
pub struct YoloModel {
    net: Box<dyn Network>,
    pub task: YoloTask,
    pub num_classes: usize,
    pub names: std::collections::BTreeMap<u32, String>,
    pub device: ModelDevice,
}

impl std::fmt::Debug for YoloModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YoloModel")
            .field("task", &self.task)
            .field("num_classes", &self.num_classes)
            .field("device", &self.device)
            .field("engine", &self.net.engine())
            .finish()
    }
}

impl YoloModel {
    /// Loads an ultralytics checkpoint (`.pt`, `.safetensors`), or builds one with random
    /// weights (seed 0) from an ultralytics architecture YAML (`.yaml`: `nc`, `kpt_shape`
    /// and the scale as the file says; see [`crate::synthetic::load_arch_yaml`]), so that a
    /// deployment can be benchmarked on a model before its weights exist.
    pub fn load(path: &Path, device: ModelDevice) -> Result<YoloModel, ModelError> {
        let ck = match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => crate::synthetic::synthetic_checkpoint(
                crate::synthetic::load_arch_yaml(path)?,
                None,
                0,
            )?,
            _ => Checkpoint::load(path)?,
        };
        Self::from_checkpoint(ck, device)
    }

    /// Builds a model from an already loaded (or synthesised) checkpoint.
    pub fn from_checkpoint(ck: Checkpoint, device: ModelDevice) -> Result<YoloModel, ModelError> {
        Self::from_plan(Plan::from_checkpoint(ck)?, device)
    }

    /// Compiles a plan for `device`.
    pub fn from_plan(plan: Plan, device: ModelDevice) -> Result<YoloModel, ModelError> {
        // Before the first GPU use: cubecl reads its configuration once.
        crate::kernel_cache::pin_default_unless_set(device);
        let net: Box<dyn Network> = match device {
            #[cfg(feature = "cpu")]
            ModelDevice::Cpu | ModelDevice::CpuBf16 => {
                match NhwcNet::with_precision(&plan, device == ModelDevice::CpuBf16) {
                    Ok(fast) => Box::new(fast),
                    Err(why) => {
                        tracing::warn!(%why, "the CPU executor cannot run this model; using burn-flex");
                        on_burn::<burn::backend::Flex>(&plan, Default::default(), "burn-flex")
                    }
                }
            }
            #[cfg(feature = "wgpu")]
            ModelDevice::Wgpu => {
                on_burn::<burn::backend::Wgpu>(&plan, Default::default(), "burn-wgpu")
            }
            #[cfg(feature = "cuda")]
            ModelDevice::Cuda { half: false, index } => on_burn::<burn::backend::Cuda>(
                &plan,
                burn::backend::cuda::CudaDevice::new(index),
                "burn-cuda",
            ),
            #[cfg(feature = "cuda")]
            ModelDevice::Cuda { half: true, index } => on_burn::<burn::backend::Cuda<half::f16>>(
                &plan,
                burn::backend::cuda::CudaDevice::new(index),
                "burn-cuda fp16",
            ),
            #[cfg(feature = "torch")]
            ModelDevice::Torch { device, half } => crate::torch::network(&plan, device, half)?,
            #[allow(unreachable_patterns)]
            other => return Err(ModelError::DeviceNotCompiled(other.name())),
        };
        Ok(Self::with_network(net, plan, device))
    }

    /// A checkpoint on one of Burn's CPU backends as it is, for comparison benchmarks.
    pub fn with_comparison_backend(
        ck: Checkpoint,
        backend: ComparisonBackend,
    ) -> Result<YoloModel, ModelError> {
        let plan = Plan::from_checkpoint(ck)?;
        let net = match backend {
            #[cfg(feature = "cpu")]
            ComparisonBackend::Flex => {
                on_burn::<burn::backend::Flex>(&plan, Default::default(), "burn-flex")
            }
            #[cfg(feature = "ndarray")]
            ComparisonBackend::NdArray => {
                on_burn::<burn::backend::NdArray>(&plan, Default::default(), "burn-ndarray")
            }
            #[cfg(feature = "candle")]
            ComparisonBackend::Candle => {
                on_burn::<burn::backend::Candle>(&plan, Default::default(), "burn-candle")
            }
            #[allow(unreachable_patterns)]
            other => return Err(ModelError::DeviceNotCompiled(other.name())),
        };
        Ok(Self::with_network(net, plan, ModelDevice::Cpu))
    }

    fn with_network(net: Box<dyn Network>, plan: Plan, device: ModelDevice) -> YoloModel {
        YoloModel {
            net,
            task: plan.graph.task,
            num_classes: plan.graph.num_classes,
            names: plan.names,
            device,
        }
    }

    /// What runs the network: "cpu executor", "burn-flex", "burn-ndarray", "burn-candle",
    /// "burn-wgpu", "burn-cuda" or "burn-cuda fp16".
    pub fn engine(&self) -> &'static str {
        self.net.engine()
    }

    pub fn num_keypoints(&self) -> usize {
        match self.task {
            YoloTask::Detect => 0,
            YoloTask::Pose { keypoints, .. } => keypoints,
        }
    }

    /// Letterboxes a batch of same-sized frames into one NCHW buffer (in parallel).
    pub fn preprocess(
        frames: &[FrameRef<'_>],
        opts: &PredictOptions,
    ) -> Result<(Vec<f32>, [usize; 4], Letterbox), ModelError> {
        let first = frames
            .first()
            .ok_or_else(|| ModelError::Image("empty batch".into()))?;
        if frames
            .iter()
            .any(|f| f.width != first.width || f.height != first.height)
        {
            return Err(ModelError::Image(
                "a batch must hold frames of one size".into(),
            ));
        }
        let lb = Letterbox::yolo(first.width, first.height, opts.imgsz, opts.rect);
        let (w, h) = (lb.out_w() as usize, lb.out_h() as usize);
        let per = 3 * w * h;
        let mut buf = vec![0f32; per * frames.len()];
        buf.par_chunks_mut(per)
            .zip(frames.par_iter())
            .try_for_each(|(out, f)| letterbox_into(f, &lb, out))?;
        Ok((buf, [frames.len(), 3, h, w], lb))
    }

    /// Runs the network on a preprocessed batch; returns the raw head output.
    pub fn forward(
        &self,
        input: Vec<f32>,
        shape: [usize; 4],
    ) -> Result<(Vec<f32>, [usize; 3]), ModelError> {
        self.net.forward(input, shape)
    }

    /// Letterbox + forward, for checks against ultralytics' raw head output.
    pub fn forward_raw(
        &self,
        frames: &[FrameRef<'_>],
        opts: &PredictOptions,
    ) -> Result<RawOutput, ModelError> {
        let (input, shape, letterbox) = Self::preprocess(frames, opts)?;
        let (values, dims) = self.forward(input, shape)?;
        Ok(RawOutput {
            values,
            dims,
            letterbox,
        })
    }

    /// Detections per frame (descending score), in source pixels.
    pub fn predict(
        &self,
        frames: &[FrameRef<'_>],
        opts: &PredictOptions,
    ) -> Result<(Vec<Vec<Detection>>, StageTimes), ModelError> {
        let mut times = StageTimes::default();
        if frames.is_empty() {
            return Ok((Vec::new(), times));
        }
        // Mixed sizes: one frame at a time, as ultralytics does for differing shapes.
        if frames
            .iter()
            .any(|f| f.width != frames[0].width || f.height != frames[0].height)
        {
            let mut out = Vec::with_capacity(frames.len());
            for f in frames {
                let (mut d, t) = self.predict(std::slice::from_ref(f), opts)?;
                out.append(&mut d);
                times += t;
            }
            return Ok((out, times));
        }
        let t0 = Instant::now();
        let (input, shape, lb) = Self::preprocess(frames, opts)?;
        let t1 = Instant::now();
        let (values, [b, c, n]) = self.forward(input, shape)?;
        let t2 = Instant::now();
        let kpts = match self.task {
            YoloTask::Detect => None,
            YoloTask::Pose { keypoints, dims } => Some((keypoints, dims)),
        };
        let nc = self.num_classes;
        let out = (0..b)
            .into_par_iter()
            .map(|i| {
                let pred = &values[i * c * n..(i + 1) * c * n];
                let cands = nms(pred, c, n, nc, &opts.nms);
                to_detections(&cands, pred, n, nc, kpts, &lb)
            })
            .collect();
        let t3 = Instant::now();
        times.preprocess = t1 - t0;
        times.forward = t2 - t1;
        times.postprocess = t3 - t2;
        Ok((out, times))
    }
}
