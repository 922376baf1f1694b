//! The YOLO family (v8 and 11; detect and pose), built from the architecture description an
//! ultralytics checkpoint carries, with the checkpoint's weights. Inference only: BatchNorm
//! is folded into the convolutions at load, so a `Conv` block is one conv2d + SiLU.

use std::collections::BTreeSet;

use burn::tensor::activation::{sigmoid, silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};
use serde_json::Value;

use crate::ModelError;
use crate::checkpoint::Checkpoint;

/// What the network predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YoloTask {
    Detect,
    /// Keypoints per detection and values per keypoint (2: x, y; 3: x, y, confidence).
    Pose {
        keypoints: usize,
        dims: usize,
    },
}

/// Conv2d (+ folded BatchNorm) (+ SiLU).
#[derive(Debug, Clone)]
pub(crate) struct ConvBn<B: Backend> {
    pub(crate) weight: Tensor<B, 4>,
    pub(crate) bias: Tensor<B, 1>,
    pub(crate) stride: usize,
    pub(crate) padding: usize,
    pub(crate) groups: usize,
    pub(crate) act: bool,
    pub(crate) c_out: usize,
}

impl<B: Backend> ConvBn<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let y = conv2d(
            x,
            self.weight.clone(),
            Some(self.bias.clone()),
            ConvOptions::new(
                [self.stride, self.stride],
                [self.padding, self.padding],
                [1, 1],
                self.groups,
            ),
        );
        if self.act { silu(y) } else { y }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Bottleneck<B: Backend> {
    pub(crate) cv1: ConvBn<B>,
    pub(crate) cv2: ConvBn<B>,
    pub(crate) add: bool,
}

impl<B: Backend> Bottleneck<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let y = self.cv2.forward(self.cv1.forward(x.clone()));
        if self.add { x + y } else { y }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct C3k<B: Backend> {
    pub(crate) cv1: ConvBn<B>,
    pub(crate) cv2: ConvBn<B>,
    pub(crate) cv3: ConvBn<B>,
    pub(crate) m: Vec<Bottleneck<B>>,
}

impl<B: Backend> C3k<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut a = self.cv1.forward(x.clone());
        for b in &self.m {
            a = b.forward(a);
        }
        self.cv3
            .forward(Tensor::cat(vec![a, self.cv2.forward(x)], 1))
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Inner<B: Backend> {
    Bottleneck(Bottleneck<B>),
    C3k(C3k<B>),
}

/// C2f, and C3k2 (same data flow, inner blocks may be C3k).
#[derive(Debug, Clone)]
pub(crate) struct C2f<B: Backend> {
    pub(crate) cv1: ConvBn<B>,
    pub(crate) cv2: ConvBn<B>,
    pub(crate) m: Vec<Inner<B>>,
}

impl<B: Backend> C2f<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let y = self.cv1.forward(x);
        let mut parts = y.chunk(2, 1);
        for block in &self.m {
            let last = parts.last().expect("two chunks").clone();
            parts.push(match block {
                Inner::Bottleneck(b) => b.forward(last),
                Inner::C3k(c) => c.forward(last),
            });
        }
        self.cv2.forward(Tensor::cat(parts, 1))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Sppf<B: Backend> {
    pub(crate) cv1: ConvBn<B>,
    pub(crate) cv2: ConvBn<B>,
    pub(crate) k: usize,
    pub(crate) n: usize,
    pub(crate) add: bool,
}

impl<B: Backend> Sppf<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut ys = vec![self.cv1.forward(x.clone())];
        for _ in 0..self.n {
            let last = ys.last().expect("nonempty").clone();
            ys.push(max_pool_same(last, self.k));
        }
        let y = self.cv2.forward(Tensor::cat(ys, 1));
        if self.add { x + y } else { y }
    }
}

/// `k`×`k` max pooling, stride 1, padded with -inf to keep the size (PyTorch's MaxPool2d).
/// The padding is explicit because burn-candle refuses padded pooling; on the other
/// backends it is the same computation.
fn max_pool_same<B: Backend>(x: Tensor<B, 4>, k: usize) -> Tensor<B, 4> {
    let p = k / 2;
    let x = x.pad(
        (p, p, p, p),
        burn::tensor::ops::PadMode::Constant(f32::NEG_INFINITY),
    );
    max_pool2d(x, [k, k], [1, 1], [0, 0], [1, 1], false)
}

#[derive(Debug, Clone)]
pub(crate) struct Attention<B: Backend> {
    pub(crate) qkv: ConvBn<B>,
    pub(crate) proj: ConvBn<B>,
    pub(crate) pe: ConvBn<B>,
    pub(crate) num_heads: usize,
    pub(crate) key_dim: usize,
    pub(crate) head_dim: usize,
}

impl<B: Backend> Attention<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let n = h * w;
        let (nh, kd, hd) = (self.num_heads, self.key_dim, self.head_dim);
        let qkv = self.qkv.forward(x).reshape([b, nh, 2 * kd + hd, n]);
        let q = qkv.clone().narrow(2, 0, kd);
        let k = qkv.clone().narrow(2, kd, kd);
        let v = qkv.narrow(2, 2 * kd, hd);
        let scale = (kd as f64).powf(-0.5);
        let attn = softmax(q.swap_dims(2, 3).matmul(k).mul_scalar(scale), 3);
        let y = v.clone().matmul(attn.swap_dims(2, 3)).reshape([b, c, h, w]);
        let y = y + self.pe.forward(v.reshape([b, c, h, w]));
        self.proj.forward(y)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PsaBlock<B: Backend> {
    pub(crate) attn: Attention<B>,
    pub(crate) ffn1: ConvBn<B>,
    pub(crate) ffn2: ConvBn<B>,
    pub(crate) add: bool,
}

impl<B: Backend> PsaBlock<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.attn.forward(x.clone());
        let x = if self.add { x + a } else { a };
        let f = self.ffn2.forward(self.ffn1.forward(x.clone()));
        if self.add { x + f } else { f }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct C2psa<B: Backend> {
    pub(crate) cv1: ConvBn<B>,
    pub(crate) cv2: ConvBn<B>,
    pub(crate) m: Vec<PsaBlock<B>>,
    pub(crate) c: usize,
}

impl<B: Backend> C2psa<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let y = self.cv1.forward(x);
        let a = y.clone().narrow(1, 0, self.c);
        let mut bb = y.narrow(1, self.c, self.c);
        for blk in &self.m {
            bb = blk.forward(bb);
        }
        self.cv2.forward(Tensor::cat(vec![a, bb], 1))
    }
}

/// Detect / Pose head: box regression (DFL), class scores, optional keypoints.
#[derive(Debug, Clone)]
pub(crate) struct Head<B: Backend> {
    pub(crate) box_branch: Vec<Vec<ConvBn<B>>>,
    pub(crate) cls_branch: Vec<Vec<ConvBn<B>>>,
    pub(crate) kpt_branch: Option<Vec<Vec<ConvBn<B>>>>,
    pub(crate) nc: usize,
    pub(crate) reg_max: usize,
    pub(crate) task: YoloTask,
}

fn seq<B: Backend>(layers: &[ConvBn<B>], mut x: Tensor<B, 4>) -> Tensor<B, 4> {
    for l in layers {
        x = l.forward(x);
    }
    x
}

impl<B: Backend> Head<B> {
    /// Returns `[batch, 4 + nc (+ nk), anchors]`: xywh boxes in input pixels, class
    /// probabilities, decoded keypoints — what ultralytics' head returns in eval mode.
    fn forward(&self, xs: Vec<Tensor<B, 4>>, input_hw: [usize; 2]) -> Tensor<B, 3> {
        let device = xs[0].device();
        let b = xs[0].dims()[0];
        let mut anchors = Vec::new();
        let mut strides = Vec::new();
        let mut boxes = Vec::new();
        let mut scores = Vec::new();
        let mut kpts = Vec::new();
        for (i, x) in xs.into_iter().enumerate() {
            let [_, _, h, w] = x.dims();
            let stride = (input_hw[0] / h) as f32;
            // Anchor points at cell centres (grid offset 0.5), row-major like make_anchors.
            for yy in 0..h {
                for xx in 0..w {
                    anchors.push((xx as f32 + 0.5, yy as f32 + 0.5));
                    strides.push(stride);
                }
            }
            boxes.push(seq(&self.box_branch[i], x.clone()).reshape([b, 4 * self.reg_max, h * w]));
            scores.push(seq(&self.cls_branch[i], x.clone()).reshape([b, self.nc, h * w]));
            if let Some(k) = &self.kpt_branch {
                let y = seq(&k[i], x);
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
        let dist = dfl(boxes, self.reg_max);
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
        if let YoloTask::Pose { keypoints, dims } = self.task {
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

#[derive(Debug, Clone)]
pub(crate) enum Layer<B: Backend> {
    Conv(ConvBn<B>),
    C2f(C2f<B>),
    Sppf(Sppf<B>),
    C2psa(C2psa<B>),
    Concat,
    Upsample(usize),
    Head(Head<B>),
}

#[derive(Debug, Clone)]
pub(crate) struct Node<B: Backend> {
    pub(crate) from: Vec<usize>,
    pub(crate) layer: Layer<B>,
}

/// A loaded YOLO network.
#[derive(Debug, Clone)]
pub struct Yolo<B: Backend> {
    pub(crate) nodes: Vec<Node<B>>,
    pub(crate) save: BTreeSet<usize>,
    pub task: YoloTask,
    pub num_classes: usize,
}

impl<B: Backend> Yolo<B> {
    /// Runs the network on `[batch, 3, h, w]` RGB in [0, 1]; `h` and `w` multiples of 32.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 3> {
        let [_, _, h, w] = x.dims();
        let mut outputs: Vec<Option<Tensor<B, 4>>> = Vec::with_capacity(self.nodes.len());
        let mut last = x;
        for (i, node) in self.nodes.iter().enumerate() {
            // `usize::MAX` is the input image; the previous layer's output is `last`.
            let get = |j: usize| -> Tensor<B, 4> {
                if j == usize::MAX || j + 1 == i {
                    last.clone()
                } else {
                    outputs[j].clone().expect("outputs used later are saved")
                }
            };
            let y = match &node.layer {
                Layer::Conv(c) => c.forward(get(node.from[0])),
                Layer::C2f(c) => c.forward(get(node.from[0])),
                Layer::Sppf(s) => s.forward(get(node.from[0])),
                Layer::C2psa(c) => c.forward(get(node.from[0])),
                Layer::Upsample(f) => upsample_nearest(get(node.from[0]), *f),
                Layer::Concat => Tensor::cat(node.from.iter().map(|j| get(*j)).collect(), 1),
                Layer::Head(head) => {
                    let xs = node.from.iter().map(|j| get(*j)).collect();
                    return head.forward(xs, [h, w]);
                }
            };
            outputs.push(if self.save.contains(&i) {
                Some(y.clone())
            } else {
                None
            });
            last = y;
        }
        unreachable!("the architecture ends with a head (checked at load)")
    }
}

/// Uploads host f32 values as the backend's float type (f16 on half-precision backends).
pub fn host_tensor<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(
        TensorData::new(values, shape).convert::<B::FloatElem>(),
        device,
    )
}

/// Nearest-neighbour upsampling by an integer factor, exact for any backend.
fn upsample_nearest<B: Backend>(x: Tensor<B, 4>, f: usize) -> Tensor<B, 4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, f, w, f])
        .reshape([b, c, h * f, w * f])
}

/// Builds the network described by `ck.arch` with `ck`'s weights on `device`.
pub fn build<B: Backend>(ck: &mut Checkpoint, device: &B::Device) -> Result<Yolo<B>, ModelError> {
    let arch = ck.arch.clone();
    let path = ck.path.clone();
    let bad = |msg: String| ModelError::BadCheckpoint {
        path: path.clone(),
        message: msg,
    };
    let layers = arch
        .as_object()
        .ok_or_else(|| "the architecture is not a mapping".to_string())
        .and_then(arch_layers)
        .map_err(bad)?;
    let depth = depth_multiple(&arch);

    let mut loader = Loader { ck, device };
    let mut ch: Vec<usize> = Vec::new();
    let mut nodes = Vec::new();
    let mut save = BTreeSet::new();
    let mut task = YoloTask::Detect;
    let mut num_classes = 0;
    let count = layers.len();
    for (i, spec) in layers.iter().enumerate() {
        let (spec, module) = layer_spec(spec, i).map_err(bad)?;
        let from: Vec<usize> = match &spec[0] {
            Value::Array(a) => a.iter().map(|v| resolve_from(v, i)).collect::<Option<_>>(),
            v => resolve_from(v, i).map(|f| vec![f]),
        }
        .ok_or_else(|| bad(format!("layer {i}: bad `from` {}", spec[0])))?;
        let repeats = spec[1].as_i64().unwrap_or(1).max(1) as f64;
        let n = scaled_repeats(repeats as i64, depth);
        let args = spec[3].as_array().cloned().unwrap_or_default();
        let c_in_of = |j: usize| -> usize { if j == usize::MAX { 3 } else { ch[j] } };
        let c1 = from.first().map(|&j| c_in_of(j)).unwrap_or(3);
        for &j in &from {
            if j != usize::MAX && j + 1 != i {
                save.insert(j);
            }
        }
        let p = format!("{i}");
        let (layer, c_out) = match module {
            "Conv" => {
                let s = args.get(2).and_then(Value::as_u64).unwrap_or(1) as usize;
                let c = loader.conv(&p, c1, s, true)?;
                let co = c.c_out;
                (Layer::Conv(c), co)
            }
            "C2f" | "C3k2" => {
                let c2f_shortcut = if module == "C2f" {
                    args.get(1).and_then(Value::as_bool).unwrap_or(false)
                } else {
                    // C3k2(c2, c3k, e, g, shortcut) up to 8.3; 8.4 inserts `attn` before g.
                    match (args.get(5), args.get(4)) {
                        (Some(Value::Bool(b)), _) => *b,
                        (None, Some(Value::Bool(b))) => *b,
                        _ => true,
                    }
                };
                let cv1 = loader.conv(&format!("{p}.cv1"), c1, 1, true)?;
                let c = cv1.c_out / 2;
                let mut m = Vec::new();
                for j in 0..n {
                    let q = format!("{p}.m.{j}");
                    if !loader.ck.has(&format!("{q}.cv1.conv.weight"))
                        && !loader.ck.has(&format!("{q}.cv1.weight"))
                    {
                        return Err(bad(format!(
                            "layer {i} ({module}): the architecture has {n} blocks but the weights lack block {j}"
                        )));
                    }
                    if loader.ck.has(&format!("{q}.cv3.conv.weight")) {
                        m.push(Inner::C3k(loader.c3k(&q, c, c2f_shortcut)?));
                    } else {
                        m.push(Inner::Bottleneck(loader.bottleneck(&q, c, c2f_shortcut)?));
                    }
                }
                let cv2 = loader.conv(&format!("{p}.cv2"), c * (2 + n), 1, true)?;
                let co = cv2.c_out;
                (Layer::C2f(C2f { cv1, cv2, m }), co)
            }
            "SPPF" => {
                let k = args.get(1).and_then(Value::as_u64).unwrap_or(5) as usize;
                let reps = args.get(2).and_then(Value::as_u64).unwrap_or(3) as usize;
                let shortcut = args.get(3).and_then(Value::as_bool).unwrap_or(false);
                let cv1 = loader.conv(&format!("{p}.cv1"), c1, 1, true)?;
                let cv2 = loader.conv(&format!("{p}.cv2"), cv1.c_out * (reps + 1), 1, true)?;
                let co = cv2.c_out;
                let add = shortcut && co == c1;
                (
                    Layer::Sppf(Sppf {
                        cv1,
                        cv2,
                        k,
                        n: reps,
                        add,
                    }),
                    co,
                )
            }
            "C2PSA" => {
                let cv1 = loader.conv(&format!("{p}.cv1"), c1, 1, true)?;
                let c = cv1.c_out / 2;
                let mut m = Vec::new();
                for j in 0..n {
                    m.push(loader.psa_block(&format!("{p}.m.{j}"), c)?);
                }
                let cv2 = loader.conv(&format!("{p}.cv2"), 2 * c, 1, true)?;
                let co = cv2.c_out;
                (Layer::C2psa(C2psa { cv1, cv2, m, c }), co)
            }
            "Concat" => {
                let dim = args.first().and_then(Value::as_i64).unwrap_or(1);
                if dim != 1 {
                    return Err(bad(format!(
                        "layer {i}: Concat over dim {dim} is not supported"
                    )));
                }
                (Layer::Concat, from.iter().map(|&j| c_in_of(j)).sum())
            }
            "Upsample" => {
                let f = args.get(1).and_then(Value::as_f64).unwrap_or(2.0);
                let mode = args.get(2).and_then(Value::as_str).unwrap_or("nearest");
                if f.fract() != 0.0 || f < 1.0 || mode != "nearest" {
                    return Err(bad(format!(
                        "layer {i}: Upsample scale {f} mode {mode} is not supported (integer nearest only)"
                    )));
                }
                (Layer::Upsample(f as usize), c1)
            }
            "Detect" | "Pose" => {
                if i + 1 != count {
                    return Err(bad(format!("layer {i}: the head must be the last layer")));
                }
                let chs: Vec<usize> = from.iter().map(|&j| c_in_of(j)).collect();
                let head = loader.head(&p, &chs, module == "Pose", &arch)?;
                task = head.task;
                num_classes = head.nc;
                (Layer::Head(head), 0)
            }
            other => {
                return Err(ModelError::UnsupportedModule {
                    path: path.clone(),
                    layer: i,
                    module: other.to_string(),
                });
            }
        };
        ch.push(c_out);
        nodes.push(Node { from, layer });
    }
    if !matches!(nodes.last().map(|n| &n.layer), Some(Layer::Head(_))) {
        return Err(bad(
            "the architecture does not end with a Detect or Pose head".into(),
        ));
    }
    Ok(Yolo {
        nodes,
        save,
        task,
        num_classes,
    })
}

/// The `backbone` and `head` layer lists of an architecture description, in order.
pub(crate) fn arch_layers(arch: &serde_json::Map<String, Value>) -> Result<Vec<Value>, String> {
    ["backbone", "head"]
        .iter()
        .map(|k| {
            arch.get(*k)
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| format!("the architecture has no `{k}` list"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|lists| lists.concat())
}

/// One `[from, repeats, module, args]` entry of a layer list, with its module name
/// without a `torch.` / `nn.` prefix.
pub(crate) fn layer_spec(spec: &Value, i: usize) -> Result<(&[Value], &str), String> {
    let spec = spec
        .as_array()
        .filter(|a| a.len() == 4)
        .ok_or_else(|| format!("layer {i}: expected [from, repeats, module, args]"))?;
    let module = spec[2].as_str().unwrap_or("?");
    let module = module
        .trim_start_matches("torch.")
        .trim_start_matches("nn.");
    Ok((spec, module))
}

/// A layer's repeat count at a depth multiple, as ultralytics' `parse_model` computes it
/// (Python's round(): halves to even).
pub(crate) fn scaled_repeats(repeats: i64, depth: f64) -> usize {
    if repeats > 1 {
        ((repeats as f64 * depth).round_ties_even() as usize).max(1)
    } else {
        1
    }
}

fn resolve_from(v: &Value, i: usize) -> Option<usize> {
    let f = v.as_i64()?;
    if f < 0 {
        let j = i as i64 + f;
        // -1 at layer 0 means the input image.
        if j < 0 {
            Some(usize::MAX)
        } else {
            Some(j as usize)
        }
    } else if (f as usize) < i {
        Some(f as usize)
    } else {
        None
    }
}

fn depth_multiple(arch: &Value) -> f64 {
    if let Some(d) = arch.get("depth_multiple").and_then(Value::as_f64) {
        return d;
    }
    let scale = arch.get("scale").and_then(Value::as_str);
    let scales = arch.get("scales").and_then(Value::as_object);
    match (scale, scales) {
        (Some(s), Some(m)) => m
            .get(s)
            .and_then(|v| v.get(0))
            .and_then(Value::as_f64)
            .unwrap_or(1.0),
        (None, Some(m)) if !m.is_empty() => {
            // ultralytics takes the first scale when none is named.
            m.values()
                .next()
                .and_then(|v| v.get(0))
                .and_then(Value::as_f64)
                .unwrap_or(1.0)
        }
        _ => 1.0,
    }
}

struct Loader<'a, B: Backend> {
    ck: &'a mut Checkpoint,
    device: &'a B::Device,
}

impl<B: Backend> Loader<'_, B> {
    fn bad(&self, msg: String) -> ModelError {
        ModelError::BadCheckpoint {
            path: self.ck.path.clone(),
            message: msg,
        }
    }

    /// Loads a `Conv` block (`{p}.conv`, `{p}.bn`) or a plain `nn.Conv2d` (`{p}.weight`).
    fn conv(
        &mut self,
        p: &str,
        c_in: usize,
        stride: usize,
        act: bool,
    ) -> Result<ConvBn<B>, ModelError> {
        let (w_name, b_name, bn, act) = if self.ck.has(&format!("{p}.conv.weight")) {
            let act = match self.ck.classes.get(&format!("{p}.act")).map(String::as_str) {
                Some("SiLU") => true,
                Some("Identity") => false,
                Some(other) => {
                    return Err(self.bad(format!("{p}: activation {other} is not supported")));
                }
                None => act,
            };
            (
                format!("{p}.conv.weight"),
                format!("{p}.conv.bias"),
                Some(format!("{p}.bn")),
                act,
            )
        } else {
            (format!("{p}.weight"), format!("{p}.bias"), None, false)
        };
        let w = self.ck.take(&w_name)?;
        if w.shape.len() != 4 {
            return Err(self.bad(format!("{w_name} has shape {:?}, expected 4 dims", w.shape)));
        }
        let [c_out, c_in_g, kh, kw] = [w.shape[0], w.shape[1], w.shape[2], w.shape[3]];
        if c_in_g == 0 || !c_in.is_multiple_of(c_in_g) || kh != kw {
            return Err(self.bad(format!(
                "{w_name} has shape {:?}, which does not fit {c_in} input channels",
                w.shape
            )));
        }
        let groups = c_in / c_in_g;
        let mut weight: Vec<f32> = w
            .to_vec()
            .map_err(|e| self.bad(format!("{w_name}: {e:?}")))?;
        let mut bias = if self.ck.has(&b_name) {
            self.vec(&b_name, c_out)?
        } else {
            vec![0.0; c_out]
        };
        if let Some(bn) = bn.filter(|bn| self.ck.has(&format!("{bn}.weight"))) {
            let gamma = self.vec(&format!("{bn}.weight"), c_out)?;
            let beta = self.vec(&format!("{bn}.bias"), c_out)?;
            let mean = self.vec(&format!("{bn}.running_mean"), c_out)?;
            let var = self.vec(&format!("{bn}.running_var"), c_out)?;
            self.ck.tensors.remove(&format!("{bn}.num_batches_tracked"));
            // ultralytics sets BatchNorm eps to 1e-3 at construction; the pickle has it.
            let eps = self
                .ck
                .attrs
                .get(&format!("{bn}.eps"))
                .copied()
                .unwrap_or(1e-3);
            let per = c_in_g * kh * kw;
            for o in 0..c_out {
                let s = gamma[o] as f64 / (var[o] as f64 + eps).sqrt();
                for v in &mut weight[o * per..(o + 1) * per] {
                    *v = (*v as f64 * s) as f32;
                }
                bias[o] = (beta[o] as f64 + (bias[o] as f64 - mean[o] as f64) * s) as f32;
            }
        }
        Ok(ConvBn {
            weight: host_tensor(weight, [c_out, c_in_g, kh, kw], self.device),
            bias: host_tensor(bias, [c_out], self.device),
            stride,
            padding: kh / 2,
            groups,
            act,
            c_out,
        })
    }

    fn vec(&mut self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        let t = self.ck.take(name)?;
        let v: Vec<f32> = t.to_vec().map_err(|e| self.bad(format!("{name}: {e:?}")))?;
        if v.len() != len {
            return Err(self.bad(format!("{name} has {} values, expected {len}", v.len())));
        }
        Ok(v)
    }

    fn bottleneck(
        &mut self,
        p: &str,
        c: usize,
        shortcut: bool,
    ) -> Result<Bottleneck<B>, ModelError> {
        let cv1 = self.conv(&format!("{p}.cv1"), c, 1, true)?;
        let cv2 = self.conv(&format!("{p}.cv2"), cv1.c_out, 1, true)?;
        let add = shortcut && cv2.c_out == c;
        Ok(Bottleneck { cv1, cv2, add })
    }

    fn c3k(&mut self, p: &str, c: usize, shortcut: bool) -> Result<C3k<B>, ModelError> {
        let cv1 = self.conv(&format!("{p}.cv1"), c, 1, true)?;
        let cv2 = self.conv(&format!("{p}.cv2"), c, 1, true)?;
        let mut m = Vec::new();
        let mut j = 0;
        while self.ck.has(&format!("{p}.m.{j}.cv1.conv.weight")) {
            m.push(self.bottleneck(&format!("{p}.m.{j}"), cv1.c_out, shortcut)?);
            j += 1;
        }
        let cv3 = self.conv(&format!("{p}.cv3"), cv1.c_out + cv2.c_out, 1, true)?;
        Ok(C3k { cv1, cv2, cv3, m })
    }

    fn psa_block(&mut self, p: &str, c: usize) -> Result<PsaBlock<B>, ModelError> {
        let num_heads = (c / 64).max(1);
        let head_dim = c / num_heads;
        let qkv = self.conv(&format!("{p}.attn.qkv"), c, 1, false)?;
        // qkv has c + 2 * num_heads * key_dim outputs.
        let key_dim = (qkv.c_out.saturating_sub(c)) / (2 * num_heads);
        if key_dim == 0 || c + 2 * num_heads * key_dim != qkv.c_out {
            return Err(self.bad(format!(
                "{p}.attn.qkv: {} outputs do not fit {c} channels",
                qkv.c_out
            )));
        }
        let proj = self.conv(&format!("{p}.attn.proj"), c, 1, false)?;
        let pe = self.conv(&format!("{p}.attn.pe"), c, 1, false)?;
        let ffn1 = self.conv(&format!("{p}.ffn.0"), c, 1, true)?;
        let ffn2 = self.conv(&format!("{p}.ffn.1"), ffn1.c_out, 1, false)?;
        Ok(PsaBlock {
            attn: Attention {
                qkv,
                proj,
                pe,
                num_heads,
                key_dim,
                head_dim,
            },
            ffn1,
            ffn2,
            add: true,
        })
    }

    /// A branch `{p}.{j}...`: Conv blocks, nested Sequentials (YOLO11's DWConv pairs), and
    /// a final plain Conv2d, in index order.
    fn branch(&mut self, p: &str, mut c_in: usize) -> Result<Vec<ConvBn<B>>, ModelError> {
        let mut out = Vec::new();
        let mut j = 0;
        loop {
            let q = format!("{p}.{j}");
            if self.ck.has(&format!("{q}.conv.weight")) || self.ck.has(&format!("{q}.weight")) {
                let act = self.ck.has(&format!("{q}.conv.weight"));
                let c = self.conv(&q, c_in, 1, act)?;
                c_in = c.c_out;
                out.push(c);
            } else if self.ck.has(&format!("{q}.0.conv.weight"))
                || self.ck.has(&format!("{q}.0.weight"))
            {
                let inner = self.branch(&q, c_in)?;
                c_in = inner.last().map(|c| c.c_out).unwrap_or(c_in);
                out.extend(inner);
            } else {
                break;
            }
            j += 1;
        }
        if out.is_empty() {
            return Err(self.bad(format!("head branch {p} has no weights")));
        }
        Ok(out)
    }

    fn head(
        &mut self,
        p: &str,
        chs: &[usize],
        pose: bool,
        arch: &Value,
    ) -> Result<Head<B>, ModelError> {
        let mut box_branch = Vec::new();
        let mut cls_branch = Vec::new();
        let mut kpt_branch = Vec::new();
        for (i, &c) in chs.iter().enumerate() {
            box_branch.push(self.branch(&format!("{p}.cv2.{i}"), c)?);
            cls_branch.push(self.branch(&format!("{p}.cv3.{i}"), c)?);
            if pose {
                kpt_branch.push(self.branch(&format!("{p}.cv4.{i}"), c)?);
            }
        }
        let box_out = box_branch[0].last().expect("nonempty").c_out;
        let nc = cls_branch[0].last().expect("nonempty").c_out;
        if box_out % 4 != 0 {
            return Err(self.bad(format!("{p}.cv2: {box_out} box outputs, not 4 x bins")));
        }
        let reg_max = box_out / 4;
        // The DFL's fixed conv is not needed: it is the arange expectation.
        self.ck.tensors.remove(&format!("{p}.dfl.conv.weight"));
        // The weights decide: ultralytics overrides `nc` at training time without always
        // writing it back into the stored description (yolo11n-pose says 80, has 1).
        if let Some(arch_nc) = arch.get("nc").and_then(Value::as_u64)
            && arch_nc as usize != nc
        {
            tracing::debug!(
                arch_nc,
                nc,
                "architecture nc differs from the head; using the head"
            );
        }
        let task = if pose {
            let ks = arch
                .get("kpt_shape")
                .and_then(Value::as_array)
                .and_then(|a| Some((a.first()?.as_u64()? as usize, a.get(1)?.as_u64()? as usize)))
                .ok_or_else(|| {
                    self.bad("a Pose head needs `kpt_shape` in the architecture".into())
                })?;
            let nk = kpt_branch[0].last().expect("nonempty").c_out;
            if ks.0 * ks.1 != nk || !(ks.1 == 2 || ks.1 == 3) {
                return Err(self.bad(format!(
                    "kpt_shape {ks:?} does not fit the {nk} keypoint outputs of the head"
                )));
            }
            YoloTask::Pose {
                keypoints: ks.0,
                dims: ks.1,
            }
        } else {
            YoloTask::Detect
        };
        Ok(Head {
            box_branch,
            cls_branch,
            kpt_branch: pose.then_some(kpt_branch),
            nc,
            reg_max,
            task,
        })
    }
}
