//! A loaded model on a chosen backend: frames in, detections out.

use std::path::Path;
use std::time::{Duration, Instant};

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use pitchside_plugin::{Detection, FrameRef};
use rayon::prelude::*;

use crate::ModelError;
use crate::checkpoint::Checkpoint;
use crate::postprocess::{NmsOptions, nms, to_detections};
use crate::preprocess::{Letterbox, letterbox_into};
use crate::yolo::{Yolo, YoloTask, build, host_tensor};

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelDevice {
    /// The CPU: Pitchside's NHWC executor ([`crate::nhwc`]) over the network Burn builds;
    /// burn-flex where the executor lacks a module.
    Cpu,
    /// burn-flex alone, kept for comparison benchmarks.
    Flex,
    /// burn-ndarray, kept for comparison benchmarks (`ndarray` feature).
    NdArray,
    /// burn-candle on the CPU, kept for comparison benchmarks (`candle` feature).
    Candle,
    Wgpu,
    Cuda {
        half: bool,
    },
}

impl ModelDevice {
    pub fn name(&self) -> &'static str {
        match self {
            ModelDevice::Cpu => "cpu",
            ModelDevice::Flex => "cpu (burn-flex)",
            ModelDevice::NdArray => "cpu (ndarray)",
            ModelDevice::Candle => "cpu (candle)",
            ModelDevice::Wgpu => "wgpu",
            ModelDevice::Cuda { half: false } => "cuda fp32",
            ModelDevice::Cuda { half: true } => "cuda fp16",
        }
    }
}

enum Net {
    #[cfg(feature = "cpu")]
    Nhwc(crate::nhwc::NhwcYolo),
    #[cfg(feature = "cpu")]
    Flex(Yolo<burn::backend::Flex>),
    #[cfg(feature = "ndarray")]
    NdArray(Yolo<burn::backend::NdArray>),
    #[cfg(feature = "candle")]
    Candle(Yolo<burn::backend::Candle>),
    #[cfg(feature = "wgpu")]
    Wgpu(Yolo<burn::backend::Wgpu>, burn::backend::wgpu::WgpuDevice),
    #[cfg(feature = "cuda")]
    Cuda(Yolo<burn::backend::Cuda>, burn::backend::cuda::CudaDevice),
    #[cfg(feature = "cuda")]
    CudaHalf(
        Yolo<burn::backend::Cuda<half::f16>>,
        burn::backend::cuda::CudaDevice,
    ),
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

/// Time spent per stage in one call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    pub preprocess: Duration,
    pub forward: Duration,
    pub postprocess: Duration,
}

impl std::ops::AddAssign for StageTimes {
    fn add_assign(&mut self, o: StageTimes) {
        self.preprocess += o.preprocess;
        self.forward += o.forward;
        self.postprocess += o.postprocess;
    }
}

/// Raw head output of one batch: `[batch, channels, anchors]`, channel-major per image.
pub struct RawOutput {
    pub values: Vec<f32>,
    pub dims: [usize; 3],
    pub letterbox: Letterbox,
}

/// A YOLO model loaded from an ultralytics checkpoint onto a device.
pub struct YoloModel {
    net: Net,
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
            .finish()
    }
}

fn load_on<B: Backend>(ck: &mut Checkpoint, device: &B::Device) -> Result<Yolo<B>, ModelError> {
    build::<B>(ck, device)
}

impl YoloModel {
    pub fn load(path: &Path, device: ModelDevice) -> Result<YoloModel, ModelError> {
        Self::from_checkpoint(Checkpoint::load(path)?, device)
    }

    /// Builds a model from an already loaded (or synthesised) checkpoint.
    pub fn from_checkpoint(
        mut ck: Checkpoint,
        device: ModelDevice,
    ) -> Result<YoloModel, ModelError> {
        let names = ck.names.clone();
        let net = match device {
            #[cfg(feature = "cpu")]
            ModelDevice::Cpu => {
                let net = load_on::<burn::backend::Flex>(&mut ck, &Default::default())?;
                match crate::nhwc::NhwcYolo::new(&net) {
                    Ok(fast) => Net::Nhwc(fast),
                    Err(why) => {
                        tracing::warn!(%why, "the CPU executor cannot run this model; using burn-flex");
                        Net::Flex(net)
                    }
                }
            }
            #[cfg(feature = "cpu")]
            ModelDevice::Flex => Net::Flex(load_on(&mut ck, &Default::default())?),
            #[cfg(feature = "ndarray")]
            ModelDevice::NdArray => Net::NdArray(load_on(&mut ck, &Default::default())?),
            #[cfg(feature = "candle")]
            ModelDevice::Candle => Net::Candle(load_on(&mut ck, &Default::default())?),
            #[cfg(feature = "wgpu")]
            ModelDevice::Wgpu => {
                let d = burn::backend::wgpu::WgpuDevice::default();
                Net::Wgpu(load_on(&mut ck, &d)?, d)
            }
            #[cfg(feature = "cuda")]
            ModelDevice::Cuda { half: false } => {
                let d = burn::backend::cuda::CudaDevice::default();
                Net::Cuda(load_on(&mut ck, &d)?, d)
            }
            #[cfg(feature = "cuda")]
            ModelDevice::Cuda { half: true } => {
                let d = burn::backend::cuda::CudaDevice::default();
                Net::CudaHalf(load_on(&mut ck, &d)?, d)
            }
            #[allow(unreachable_patterns)]
            other => return Err(ModelError::DeviceNotCompiled(other.name())),
        };
        let (task, num_classes) = match &net {
            #[cfg(feature = "cpu")]
            Net::Nhwc(m) => (m.task, m.num_classes),
            #[cfg(feature = "cpu")]
            Net::Flex(m) => (m.task, m.num_classes),
            #[cfg(feature = "ndarray")]
            Net::NdArray(m) => (m.task, m.num_classes),
            #[cfg(feature = "candle")]
            Net::Candle(m) => (m.task, m.num_classes),
            #[cfg(feature = "wgpu")]
            Net::Wgpu(m, _) => (m.task, m.num_classes),
            #[cfg(feature = "cuda")]
            Net::Cuda(m, _) => (m.task, m.num_classes),
            #[cfg(feature = "cuda")]
            Net::CudaHalf(m, _) => (m.task, m.num_classes),
        };
        Ok(YoloModel {
            net,
            task,
            num_classes,
            names,
            device,
        })
    }

    /// What runs the network: "cpu executor", "burn-flex", "burn-ndarray", "burn-candle",
    /// "burn-wgpu", "burn-cuda" or "burn-cuda fp16".
    pub fn engine(&self) -> &'static str {
        match &self.net {
            #[cfg(feature = "cpu")]
            Net::Nhwc(_) => "cpu executor",
            #[cfg(feature = "cpu")]
            Net::Flex(_) => "burn-flex",
            #[cfg(feature = "ndarray")]
            Net::NdArray(_) => "burn-ndarray",
            #[cfg(feature = "candle")]
            Net::Candle(_) => "burn-candle",
            #[cfg(feature = "wgpu")]
            Net::Wgpu(..) => "burn-wgpu",
            #[cfg(feature = "cuda")]
            Net::Cuda(..) => "burn-cuda",
            #[cfg(feature = "cuda")]
            Net::CudaHalf(..) => "burn-cuda fp16",
        }
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
        let lb = Letterbox::new(first.width, first.height, opts.imgsz, opts.rect, 32);
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
        fn run<B: Backend>(
            net: &Yolo<B>,
            input: Vec<f32>,
            shape: [usize; 4],
            device: &B::Device,
        ) -> Result<(Vec<f32>, [usize; 3]), ModelError> {
            let x: Tensor<B, 4> = host_tensor(input, shape, device);
            let y = net.forward(x);
            let dims = y.dims();
            let values = y
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .map_err(|e| ModelError::Inference(format!("{e:?}")))?;
            Ok((values, dims))
        }
        match &self.net {
            #[cfg(feature = "cpu")]
            Net::Nhwc(m) => Ok(m.forward(&input, shape)),
            #[cfg(feature = "cpu")]
            Net::Flex(m) => run(m, input, shape, &Default::default()),
            #[cfg(feature = "ndarray")]
            Net::NdArray(m) => run(m, input, shape, &Default::default()),
            #[cfg(feature = "candle")]
            Net::Candle(m) => run(m, input, shape, &Default::default()),
            #[cfg(feature = "wgpu")]
            Net::Wgpu(m, d) => run(m, input, shape, d),
            #[cfg(feature = "cuda")]
            Net::Cuda(m, d) => run(m, input, shape, d),
            #[cfg(feature = "cuda")]
            Net::CudaHalf(m, d) => run(m, input, shape, d),
        }
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
