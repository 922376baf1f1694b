//! The Burn executor: a [`Plan`] on any Burn backend (burn-flex, NdArray, Candle, WGPU,
//! CUDA, LibTorch; f16 included), NCHW tensors throughout, Burn's own operations except
//! where a backend runs one better natively ([`NetBackend`]).

use burn::tensor::activation::{sigmoid, silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};

use crate::exec::{self, Kernels};
use crate::plan::{Attention, ConvId, ConvWeights, Graph, Head, Plan, YoloTask};

/// The operations of the network that Burn composes from several kernels and a backend
/// may run as one native call. The defaults are Burn's own compositions; LibTorch runs
/// PyTorch's (`crate::torch`), so its SiLU is one in-place kernel instead of a sigmoid, a
/// multiply and a buffer, and its pooling pads implicitly instead of copying.
pub trait NetBackend: Backend {
    /// Convolution with bias, then SiLU when `act`.
    fn conv_bias_act(
        x: Tensor<Self, 4>,
        weight: Tensor<Self, 4>,
        bias: Tensor<Self, 1>,
        options: ConvOptions<2>,
        act: bool,
    ) -> Tensor<Self, 4> {
        let y = conv2d(x, weight, Some(bias), options);
        if act { silu(y) } else { y }
    }

    /// `k`×`k` max pooling, stride 1, padded with -inf to keep the size.
    /// The padding is explicit because burn-candle refuses padded pooling; on the other
    /// backends it is the same computation.
    fn max_pool_same(x: Tensor<Self, 4>, k: usize) -> Tensor<Self, 4> {
        let p = k / 2;
        let x = x.pad(
            (p, p, p, p),
            burn::tensor::ops::PadMode::Constant(f32::NEG_INFINITY),
        );
        max_pool2d(x, [k, k], [1, 1], [0, 0], [1, 1], false)
    }

    /// Nearest-neighbour upsampling by an integer factor; exact for any backend (no
    /// interpolation kernel involved).
    fn upsample_nearest(x: Tensor<Self, 4>, f: usize) -> Tensor<Self, 4> {
        let [b, c, h, w] = x.dims();
        x.reshape([b, c, h, 1, w, 1])
            .expand([b, c, h, f, w, f])
            .reshape([b, c, h * f, w * f])
    }
}

/// Burn's compositions are what these backends run.
macro_rules! burn_composed {
    ($($(#[$cfg:meta])* $backend:ty;)*) => {
        $($(#[$cfg])* impl NetBackend for $backend {})*
    };
}

burn_composed! {
    #[cfg(feature = "cpu")] burn::backend::Flex;
    #[cfg(feature = "ndarray")] burn::backend::NdArray;
    #[cfg(feature = "candle")] burn::backend::Candle;
    #[cfg(feature = "wgpu")] burn::backend::Wgpu;
    #[cfg(feature = "cuda")] burn::backend::Cuda;
    #[cfg(feature = "cuda")] burn::backend::Cuda<half::f16>;
}

/// Conv2d (+ folded BatchNorm) (+ SiLU) on the backend.
#[derive(Debug, Clone)]
struct ConvBn<B: Backend> {
    weight: Tensor<B, 4>,
    bias: Tensor<B, 1>,
    options: ConvOptions<2>,
    act: bool,
}

impl<B: NetBackend> ConvBn<B> {
    fn new(c: &ConvWeights, device: &B::Device) -> ConvBn<B> {
        ConvBn {
            weight: host_tensor(
                c.weight.clone(),
                [c.c_out, c.c_in / c.groups, c.k, c.k],
                device,
            ),
            bias: host_tensor(c.bias.clone(), [c.c_out], device),
            options: ConvOptions::new([c.stride, c.stride], [c.pad, c.pad], [1, 1], c.groups),
            act: c.act,
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        B::conv_bias_act(
            x,
            self.weight.clone(),
            self.bias.clone(),
            self.options.clone(),
            self.act,
        )
    }
}

/// A YOLO network compiled for Burn backend `B`.
#[derive(Debug, Clone)]
pub struct BurnNet<B: Backend> {
    graph: Graph,
    convs: Vec<ConvBn<B>>,
}

impl<B: NetBackend> BurnNet<B> {
    /// Uploads the plan's weights to `device`.
    pub fn new(plan: &Plan, device: &B::Device) -> BurnNet<B> {
        BurnNet {
            graph: plan.graph.clone(),
            convs: plan.convs.iter().map(|c| ConvBn::new(c, device)).collect(),
        }
    }

    pub fn task(&self) -> YoloTask {
        self.graph.task
    }

    pub fn num_classes(&self) -> usize {
        self.graph.num_classes
    }

    /// Runs the network on `[batch, 3, h, w]` RGB in [0, 1]; `h` and `w` multiples of 32.
    /// Returns `[batch, 4 + nc (+ nk), anchors]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 3> {
        let [_, _, h, w] = x.dims();
        exec::forward(self, &self.graph, x, [h, w], false)
    }

    fn seq(&self, ids: &[ConvId], mut x: Tensor<B, 4>) -> Tensor<B, 4> {
        for &id in ids {
            x = self.convs[id].forward(x);
        }
        x
    }
}

impl<B: NetBackend> Kernels for BurnNet<B> {
    type Act = Tensor<B, 4>;
    type Output = Tensor<B, 3>;

    fn conv(&self, id: ConvId, x: &Tensor<B, 4>) -> Tensor<B, 4> {
        self.convs[id].forward(x.clone())
    }

    fn slice(&self, x: &Tensor<B, 4>, offset: usize, channels: usize) -> Tensor<B, 4> {
        x.clone().narrow(1, offset, channels)
    }

    fn concat(&self, parts: &[Tensor<B, 4>]) -> Tensor<B, 4> {
        Tensor::cat(parts.to_vec(), 1)
    }

    fn add(&self, a: Tensor<B, 4>, b: &Tensor<B, 4>) -> Tensor<B, 4> {
        a + b.clone()
    }

    fn max_pool(&self, x: &Tensor<B, 4>, k: usize) -> Tensor<B, 4> {
        B::max_pool_same(x.clone(), k)
    }

    fn upsample(&self, x: &Tensor<B, 4>, f: usize) -> Tensor<B, 4> {
        B::upsample_nearest(x.clone(), f)
    }

    fn attention_core(&self, qkv: &Tensor<B, 4>, a: &Attention) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let [b, _, h, w] = qkv.dims();
        let n = h * w;
        let (nh, kd, hd) = (a.num_heads, a.key_dim, a.head_dim);
        let c = nh * hd;
        let qkv = qkv.clone().reshape([b, nh, 2 * kd + hd, n]);
        let q = qkv.clone().narrow(2, 0, kd);
        let k = qkv.clone().narrow(2, kd, kd);
        let v = qkv.narrow(2, 2 * kd, hd);
        let scale = (kd as f64).powf(-0.5);
        let attn = softmax(q.swap_dims(2, 3).matmul(k).mul_scalar(scale), 3);
        let y = v.clone().matmul(attn.swap_dims(2, 3)).reshape([b, c, h, w]);
        (y, v.reshape([b, c, h, w]))
    }

    fn head(&self, head: &Head, xs: &[Tensor<B, 4>], input_hw: [usize; 2]) -> Tensor<B, 3> {
        let device = xs[0].device();
        let b = xs[0].dims()[0];
        let mut anchors = Vec::new();
        let mut strides = Vec::new();
        let mut boxes = Vec::new();
        let mut scores = Vec::new();
        let mut kpts = Vec::new();
        for (level, x) in head.levels.iter().zip(xs) {
            let [_, _, h, w] = x.dims();
            let stride = (input_hw[0] / h) as f32;
            // Anchor points at cell centres (grid offset 0.5), row-major like make_anchors.
            for yy in 0..h {
                for xx in 0..w {
                    anchors.push((xx as f32 + 0.5, yy as f32 + 0.5));
                    strides.push(stride);
                }
            }
            boxes.push(
                self.seq(&level.boxes, x.clone())
                    .reshape([b, 4 * head.reg_max, h * w]),
            );
            scores.push(
                self.seq(&level.classes, x.clone())
                    .reshape([b, head.nc, h * w]),
            );
            if let Some(k) = &level.keypoints {
                let y = self.seq(k, x.clone());
                let c = y.dims()[1];
                kpts.push(y.reshape([b, c, h * w]));
            }
        }
        let n = anchors.len();
        let ax: Vec<f32> = anchors
            .iter()
            .map(|a| a.0)
            .chain(anchors.iter().map(|a| a.1))
            .collect();
        let anchor_t = host_tensor::<B, 2>(ax, [2, n], &device);
        let stride_t = host_tensor::<B, 2>(strides, [1, n], &device);

        let boxes = Tensor::cat(boxes, 2);
        let dist = dfl(boxes, head.reg_max);
        let lt = dist.clone().narrow(1, 0, 2);
        let rb = dist.narrow(1, 2, 2);
        let a3 = anchor_t.clone().unsqueeze::<3>();
        let x1y1 = a3.clone() - lt;
        let x2y2 = a3 + rb;
        let cxy = (x1y1.clone() + x2y2.clone()).div_scalar(2.0);
        let wh = x2y2 - x1y1;
        let s3 = stride_t.clone().unsqueeze::<3>();
        let dbox = Tensor::cat(vec![cxy, wh], 1) * s3.clone();
        let cls = sigmoid(Tensor::cat(scores, 2));
        let mut out = vec![dbox, cls];
        if let YoloTask::Pose { keypoints, dims } = head.task {
            let k = Tensor::cat(kpts, 2).reshape([b, keypoints, dims, n]);
            let grid = anchor_t.sub_scalar(0.5).reshape([1, 1, 2, n]);
            let s4 = stride_t.reshape([1, 1, 1, n]);
            let xy = (k.clone().narrow(2, 0, 2).mul_scalar(2.0) + grid) * s4;
            let k = if dims == 3 {
                Tensor::cat(vec![xy, sigmoid(k.narrow(2, 2, 1))], 2)
            } else {
                xy
            };
            out.push(k.reshape([b, keypoints * dims, n]));
        }
        Tensor::cat(out, 1)
    }
}

/// Distribution focal loss decode: softmax over the bins, then the expectation.
fn dfl<B: Backend>(x: Tensor<B, 3>, reg_max: usize) -> Tensor<B, 3> {
    let [b, _, n] = x.dims();
    let p = softmax(x.reshape([b, 4, reg_max, n]), 2);
    let bins: Vec<f32> = (0..reg_max).map(|i| i as f32).collect();
    let w = host_tensor::<B, 4>(bins, [1, 1, reg_max, 1], &p.device());
    (p * w).sum_dim(2).reshape([b, 4, n])
}

/// Uploads host f32 values as the backend's float type (f16 on half-precision backends).
///
/// The dtype is given explicitly: without it Burn uses the device's default float dtype,
/// a process-wide setting per device that the first network created on that device fixes,
/// so an f32 and an f16 network on one device (two deployments, or the f32 and f16 parity
/// tests running side by side) would get each other's weights' dtype.
pub fn host_tensor<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    let dtype = <B::FloatElem as burn::tensor::Element>::dtype();
    Tensor::from_data(
        TensorData::new(values, shape).convert::<B::FloatElem>(),
        (device, dtype),
    )
}
