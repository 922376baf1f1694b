//! The network plan: what a YOLO network computes, free of any backend. Loading a checkpoint
//! (real, or synthesised by [`crate::synthetic`]) yields one [`Plan`]: the nodes of the
//! layer graph with their inputs and op, every convolution's weights with BatchNorm folded
//! in (one table, indexed by [`ConvId`]), and the head described once. Executors
//! ([`crate::burn_net`], [`crate::nhwc`]) compile the conv table into their own form and run
//! the graph through [`crate::exec::forward`].
//!
//! The architecture's layer list is parsed here only, with ultralytics' `parse_model`
//! semantics; channel counts are read from the weights.

use std::collections::BTreeMap;

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

/// Index into [`Plan::convs`].
pub type ConvId = usize;

/// A convolution with BatchNorm folded in, then SiLU if `act`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvWeights {
    pub c_in: usize,
    pub c_out: usize,
    /// Square kernel side.
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub groups: usize,
    pub act: bool,
    /// `[c_out, c_in / groups, k, k]`, PyTorch's layout.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Where a node reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The network input (RGB in [0, 1]).
    Image,
    /// The output of node `i`.
    Layer(usize),
}

#[derive(Debug, Clone)]
pub struct Bottleneck {
    pub cv1: ConvId,
    pub cv2: ConvId,
    /// Residual: input + output.
    pub add: bool,
}

#[derive(Debug, Clone)]
pub struct C3k {
    pub cv1: ConvId,
    pub cv2: ConvId,
    pub cv3: ConvId,
    pub m: Vec<Bottleneck>,
}

#[derive(Debug, Clone)]
pub enum Inner {
    Bottleneck(Bottleneck),
    C3k(C3k),
}

/// C2f, and C3k2 (same data flow, inner blocks may be C3k): cv1 to `2c` channels, inner
/// blocks chained on the second half, cv2 over all `(2 + n) c`.
#[derive(Debug, Clone)]
pub struct C2f {
    pub cv1: ConvId,
    pub cv2: ConvId,
    pub m: Vec<Inner>,
    /// Half of cv1's outputs.
    pub c: usize,
}

/// cv1, `n` chained `k`×`k` stride-1 max-pools, cv2 over all of them.
#[derive(Debug, Clone)]
pub struct Sppf {
    pub cv1: ConvId,
    pub cv2: ConvId,
    pub k: usize,
    pub n: usize,
    pub add: bool,
}

/// ultralytics' Attention: qkv (1×1), per head softmax(qᵀk · key_dim^-½) weighs v, plus a
/// depthwise positional encoding `pe` of v, then the 1×1 projection `proj`.
#[derive(Debug, Clone)]
pub struct Attention {
    pub qkv: ConvId,
    pub proj: ConvId,
    pub pe: ConvId,
    pub num_heads: usize,
    pub key_dim: usize,
    pub head_dim: usize,
}

#[derive(Debug, Clone)]
pub struct PsaBlock {
    pub attn: Attention,
    pub ffn1: ConvId,
    pub ffn2: ConvId,
    pub add: bool,
}

/// cv1 to `2c`, PSA blocks on the second half, cv2 over both halves.
#[derive(Debug, Clone)]
pub struct C2psa {
    pub cv1: ConvId,
    pub cv2: ConvId,
    pub m: Vec<PsaBlock>,
    pub c: usize,
}

/// One pyramid level of the head: each branch is a chain of convolutions.
#[derive(Debug, Clone)]
pub struct HeadLevel {
    /// Box regression: `4 * reg_max` outputs (DFL bins).
    pub boxes: Vec<ConvId>,
    /// Class scores: `nc` outputs (logits).
    pub classes: Vec<ConvId>,
    /// Pose: `keypoints * dims` outputs.
    pub keypoints: Option<Vec<ConvId>>,
}

/// Detect / Pose head. The output is `[batch, 4 + nc (+ nk), anchors]`: xywh boxes in
/// input pixels, class probabilities, decoded keypoints; a level's stride is the input
/// height over the level's height.
#[derive(Debug, Clone)]
pub struct Head {
    pub levels: Vec<HeadLevel>,
    pub nc: usize,
    pub reg_max: usize,
    pub task: YoloTask,
}

#[derive(Debug, Clone)]
pub enum Op {
    Conv(ConvId),
    C2f(C2f),
    Sppf(Sppf),
    C2psa(C2psa),
    /// Channel concatenation of the inputs.
    Concat,
    /// Nearest-neighbour upsampling by an integer factor.
    Upsample(usize),
    Head(Head),
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv(_) => "Conv",
            Op::C2f(_) => "C2f",
            Op::Sppf(_) => "SPPF",
            Op::C2psa(_) => "C2PSA",
            Op::Concat => "Concat",
            Op::Upsample(_) => "Upsample",
            Op::Head(_) => "Head",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub inputs: Vec<Input>,
    pub op: Op,
    /// Some node other than the next reads this output: executors keep it.
    pub keep: bool,
}

/// The layer graph, without weights: what an executor keeps after compiling the convs.
#[derive(Debug, Clone)]
pub struct Graph {
    /// In order; the last one is the head.
    pub nodes: Vec<Node>,
    /// A node other than the first reads the input image.
    pub keep_image: bool,
    pub task: YoloTask,
    pub num_classes: usize,
}

impl Graph {
    pub fn head(&self) -> &Head {
        match self.nodes.last().map(|n| &n.op) {
            Some(Op::Head(h)) => h,
            _ => unreachable!("a plan ends with a head (checked when it is built)"),
        }
    }
}

/// A loaded network, ready for an executor to compile.
#[derive(Debug, Clone)]
pub struct Plan {
    pub graph: Graph,
    pub convs: Vec<ConvWeights>,
    /// Class names by index.
    pub names: BTreeMap<u32, String>,
}

impl Plan {
    /// The plan of a checkpoint (real or synthetic), consuming it.
    pub fn from_checkpoint(mut ck: Checkpoint) -> Result<Plan, ModelError> {
        Plan::take_from(&mut ck)
    }

    /// The plan of `ck.arch` with `ck`'s weights, taking the tensors it uses out of `ck`
    /// (what is left over was not needed).
    pub fn take_from(ck: &mut Checkpoint) -> Result<Plan, ModelError> {
        build(ck)
    }
}

fn build(ck: &mut Checkpoint) -> Result<Plan, ModelError> {
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

    let mut loader = Loader {
        ck,
        convs: Vec::new(),
    };
    let mut ch: Vec<usize> = Vec::new();
    let mut nodes: Vec<Node> = Vec::new();
    let mut task = YoloTask::Detect;
    let mut num_classes = 0;
    let mut keep_image = false;
    let count = layers.len();
    for (i, spec) in layers.iter().enumerate() {
        let (spec, module) = layer_spec(spec, i).map_err(bad)?;
        let inputs: Vec<Input> = match &spec[0] {
            Value::Array(a) => a.iter().map(|v| resolve_from(v, i)).collect::<Option<_>>(),
            v => resolve_from(v, i).map(|f| vec![f]),
        }
        .ok_or_else(|| bad(format!("layer {i}: bad `from` {}", spec[0])))?;
        let repeats = spec[1].as_i64().unwrap_or(1).max(1);
        let n = scaled_repeats(repeats, depth);
        let args = spec[3].as_array().cloned().unwrap_or_default();
        let c_in_of = |j: Input| -> usize {
            match j {
                Input::Image => 3,
                Input::Layer(j) => ch[j],
            }
        };
        let c1 = inputs.first().map(|&j| c_in_of(j)).unwrap_or(3);
        for &j in &inputs {
            match j {
                Input::Layer(j) if j + 1 != i => nodes[j].keep = true,
                Input::Image if i > 0 => keep_image = true,
                _ => {}
            }
        }
        let p = format!("{i}");
        let layer = Layer::parse(module, &args).ok_or_else(|| ModelError::UnsupportedModule {
            path: path.clone(),
            layer: i,
            module: module.to_string(),
        })?;
        let (op, c_out) = match layer {
            Layer::Conv { s, .. } => {
                let c = loader.conv(&p, c1, s, true)?;
                (Op::Conv(c), loader.c_out(c))
            }
            Layer::C2f {
                shortcut: c2f_shortcut,
                ..
            }
            | Layer::C3k2(C3k2Args {
                shortcut: c2f_shortcut,
                ..
            }) => {
                let cv1 = loader.conv(&format!("{p}.cv1"), c1, 1, true)?;
                let c = loader.c_out(cv1) / 2;
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
                (Op::C2f(C2f { cv1, cv2, m, c }), loader.c_out(cv2))
            }
            Layer::Sppf {
                k, reps, shortcut, ..
            } => {
                let cv1 = loader.conv(&format!("{p}.cv1"), c1, 1, true)?;
                let cv2 =
                    loader.conv(&format!("{p}.cv2"), loader.c_out(cv1) * (reps + 1), 1, true)?;
                let co = loader.c_out(cv2);
                let add = shortcut && co == c1;
                (
                    Op::Sppf(Sppf {
                        cv1,
                        cv2,
                        k,
                        n: reps,
                        add,
                    }),
                    co,
                )
            }
            Layer::C2psa { .. } => {
                let cv1 = loader.conv(&format!("{p}.cv1"), c1, 1, true)?;
                let c = loader.c_out(cv1) / 2;
                let mut m = Vec::new();
                for j in 0..n {
                    m.push(loader.psa_block(&format!("{p}.m.{j}"), c)?);
                }
                let cv2 = loader.conv(&format!("{p}.cv2"), 2 * c, 1, true)?;
                (Op::C2psa(C2psa { cv1, cv2, m, c }), loader.c_out(cv2))
            }
            Layer::Concat { dim } => {
                if dim != 1 {
                    return Err(bad(format!(
                        "layer {i}: Concat over dim {dim} is not supported"
                    )));
                }
                (Op::Concat, inputs.iter().map(|&j| c_in_of(j)).sum())
            }
            Layer::Upsample { scale: f, mode } => {
                if f.fract() != 0.0 || f < 1.0 || mode != "nearest" {
                    return Err(bad(format!(
                        "layer {i}: Upsample scale {f} mode {mode} is not supported (integer nearest only)"
                    )));
                }
                (Op::Upsample(f as usize), c1)
            }
            Layer::Head { pose, .. } => {
                if i + 1 != count {
                    return Err(bad(format!("layer {i}: the head must be the last layer")));
                }
                let chs: Vec<usize> = inputs.iter().map(|&j| c_in_of(j)).collect();
                let head = loader.head(&p, &chs, pose, &arch)?;
                task = head.task;
                num_classes = head.nc;
                (Op::Head(head), 0)
            }
        };
        ch.push(c_out);
        nodes.push(Node {
            inputs,
            op,
            keep: false,
        });
    }
    if !matches!(nodes.last().map(|n| &n.op), Some(Op::Head(_))) {
        return Err(bad(
            "the architecture does not end with a Detect or Pose head".into(),
        ));
    }
    Ok(Plan {
        graph: Graph {
            nodes,
            keep_image,
            task,
            num_classes,
        },
        convs: loader.convs,
        names: ck.names.clone(),
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

/// One layer's module with its arguments, read by position as ultralytics' `parse_model`
/// passes them (the architecture lists them from `c2` on; parse_model inserts `c1` and,
/// for repeated blocks, `n`). The one place a module name is dispatched: the plan (which
/// takes the tensors of a checkpoint) and [`crate::synthetic`] (which makes them) both
/// match on this.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Layer {
    /// `Conv(c1, c2, k=1, s=1, p=None, g=1, d=1, act=True)`.
    Conv {
        k: usize,
        s: usize,
        groups: usize,
        dilation: usize,
        act: bool,
    },
    /// `C2f(c1, c2, n, shortcut=False, g=1, e=0.5)`: Bottlenecks with e = 1.
    C2f {
        shortcut: bool,
        groups: usize,
        e: f64,
    },
    C3k2(C3k2Args),
    /// `SPPF(c1, c2, k=5, n=3, shortcut=False)`; YOLO26's rows (more than `[c2, k]`) leave
    /// cv1 linear.
    Sppf {
        k: usize,
        reps: usize,
        shortcut: bool,
        cv1_act: bool,
    },
    /// `C2PSA(c1, c2, n, e=0.5)`.
    C2psa {
        e: f64,
    },
    Concat {
        dim: i64,
    },
    /// `nn.Upsample(None, scale_factor, mode)`.
    Upsample {
        scale: f64,
        mode: String,
    },
    /// `Detect(nc, ...)` / `Pose(nc, kpt_shape, ...)`: the head, read from the checkpoint
    /// (the plan) or from these (`nc`, `kpt_shape` as `[keypoints, dims]`).
    Head {
        pose: bool,
        nc: Option<usize>,
        kpt_shape: Option<(usize, usize)>,
    },
}

impl Layer {
    /// `None` for a module Pitchside does not run.
    pub(crate) fn parse(module: &str, args: &[Value]) -> Option<Layer> {
        let count = |i: usize, default: usize| {
            args.get(i)
                .and_then(Value::as_u64)
                .map_or(default, |v| v as usize)
        };
        let number =
            |i: usize, default: f64| args.get(i).and_then(Value::as_f64).unwrap_or(default);
        Some(match module {
            "Conv" => Layer::Conv {
                k: count(1, 1),
                s: count(2, 1),
                groups: count(4, 1),
                dilation: count(5, 1),
                act: args.get(6).and_then(Value::as_bool).unwrap_or(true),
            },
            "C2f" => Layer::C2f {
                shortcut: flag(args, 1, false),
                groups: count(2, 1),
                e: number(3, 0.5),
            },
            "C3k2" => Layer::C3k2(C3k2Args::parse(args)),
            "SPPF" => Layer::Sppf {
                k: count(1, 5),
                reps: count(2, 3),
                shortcut: flag(args, 3, false),
                cv1_act: args.len() <= 2,
            },
            "C2PSA" => Layer::C2psa { e: number(1, 0.5) },
            "Concat" => Layer::Concat {
                dim: args.first().and_then(Value::as_i64).unwrap_or(1),
            },
            "Upsample" => Layer::Upsample {
                scale: number(1, 2.0),
                mode: args
                    .get(2)
                    .and_then(Value::as_str)
                    .unwrap_or("nearest")
                    .to_string(),
            },
            "Detect" | "Pose" => Layer::Head {
                pose: module == "Pose",
                nc: args.first().and_then(Value::as_u64).map(|n| n as usize),
                kpt_shape: args.get(1).and_then(Value::as_array).and_then(|a| {
                    Some((a.first()?.as_u64()? as usize, a.get(1)?.as_u64()? as usize))
                }),
            },
            _ => return None,
        })
    }

    /// Whether `parse_model` repeats the block inside the module (`n` inner blocks) rather
    /// than stacking `n` copies of it.
    pub(crate) fn repeats_inside(&self) -> bool {
        matches!(
            self,
            Layer::C2f { .. } | Layer::C3k2(_) | Layer::C2psa { .. }
        )
    }
}

/// A flag argument, with Python's truthiness for 0/1.
fn flag(args: &[Value], i: usize, default: bool) -> bool {
    match args.get(i) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        _ => default,
    }
}

/// C3k2's arguments as the architecture lists them (from `c2` on), in either of
/// ultralytics' layouts: 8.3's `C3k2(c1, c2, n, c3k=False, e=0.5, g=1, shortcut=True)` and
/// 8.4's, which inserts `attn=False` before `g`. The plan and [`crate::synthetic`] both read
/// them here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct C3k2Args {
    pub c3k: bool,
    pub e: f64,
    pub attn: bool,
    pub groups: usize,
    pub shortcut: bool,
}

impl C3k2Args {
    pub(crate) fn parse(args: &[Value]) -> C3k2Args {
        let flag = |i: usize, default: bool| flag(args, i, default);
        let count = |i: usize| {
            args.get(i)
                .and_then(Value::as_u64)
                .map_or(1, |v| v as usize)
        };
        // 8.4's layout has a flag (`attn`) where 8.3's has the group count, or a sixth value.
        let v8_4 = matches!(args.get(3), Some(Value::Bool(_))) || args.len() > 5;
        let (attn, groups, shortcut) = if v8_4 {
            (flag(3, false), count(4), flag(5, true))
        } else {
            (false, count(3), flag(4, true))
        };
        C3k2Args {
            c3k: flag(1, false),
            e: args.get(2).and_then(Value::as_f64).unwrap_or(0.5),
            attn,
            groups,
            shortcut,
        }
    }
}

/// A `from` entry of layer `i`: negative counts back; -1 at layer 0 is the input image.
pub(crate) fn resolve_from(v: &Value, i: usize) -> Option<Input> {
    let f = v.as_i64()?;
    if f < 0 {
        let j = i as i64 + f;
        if j < 0 {
            Some(Input::Image)
        } else {
            Some(Input::Layer(j as usize))
        }
    } else if (f as usize) < i {
        Some(Input::Layer(f as usize))
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

/// Takes a checkpoint's tensors into the conv table, block by block.
struct Loader<'a> {
    ck: &'a mut Checkpoint,
    convs: Vec<ConvWeights>,
}

impl Loader<'_> {
    fn bad(&self, msg: String) -> ModelError {
        ModelError::BadCheckpoint {
            path: self.ck.path.clone(),
            message: msg,
        }
    }

    fn c_out(&self, id: ConvId) -> usize {
        self.convs[id].c_out
    }

    /// Outputs of a branch's last convolution.
    fn last_out(&self, branch: &[ConvId]) -> usize {
        self.c_out(*branch.last().expect("branches are nonempty"))
    }

    /// Loads a `Conv` block (`{p}.conv`, `{p}.bn`) or a plain `nn.Conv2d` (`{p}.weight`).
    fn conv(
        &mut self,
        p: &str,
        c_in: usize,
        stride: usize,
        act: bool,
    ) -> Result<ConvId, ModelError> {
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
        self.convs.push(ConvWeights {
            c_in,
            c_out,
            k: kh,
            stride,
            pad: kh / 2,
            groups,
            act,
            weight,
            bias,
        });
        Ok(self.convs.len() - 1)
    }

    fn vec(&mut self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        let t = self.ck.take(name)?;
        let v: Vec<f32> = t.to_vec().map_err(|e| self.bad(format!("{name}: {e:?}")))?;
        if v.len() != len {
            return Err(self.bad(format!("{name} has {} values, expected {len}", v.len())));
        }
        Ok(v)
    }

    fn bottleneck(&mut self, p: &str, c: usize, shortcut: bool) -> Result<Bottleneck, ModelError> {
        let cv1 = self.conv(&format!("{p}.cv1"), c, 1, true)?;
        let cv2 = self.conv(&format!("{p}.cv2"), self.c_out(cv1), 1, true)?;
        let add = shortcut && self.c_out(cv2) == c;
        Ok(Bottleneck { cv1, cv2, add })
    }

    fn c3k(&mut self, p: &str, c: usize, shortcut: bool) -> Result<C3k, ModelError> {
        let cv1 = self.conv(&format!("{p}.cv1"), c, 1, true)?;
        let cv2 = self.conv(&format!("{p}.cv2"), c, 1, true)?;
        let mut m = Vec::new();
        let mut j = 0;
        while self.ck.has(&format!("{p}.m.{j}.cv1.conv.weight")) {
            m.push(self.bottleneck(&format!("{p}.m.{j}"), self.c_out(cv1), shortcut)?);
            j += 1;
        }
        let cv3 = self.conv(
            &format!("{p}.cv3"),
            self.c_out(cv1) + self.c_out(cv2),
            1,
            true,
        )?;
        Ok(C3k { cv1, cv2, cv3, m })
    }

    fn psa_block(&mut self, p: &str, c: usize) -> Result<PsaBlock, ModelError> {
        let num_heads = (c / 64).max(1);
        let head_dim = c / num_heads;
        let qkv = self.conv(&format!("{p}.attn.qkv"), c, 1, false)?;
        // qkv has c + 2 * num_heads * key_dim outputs.
        let qkv_out = self.c_out(qkv);
        let key_dim = (qkv_out.saturating_sub(c)) / (2 * num_heads);
        if key_dim == 0 || c + 2 * num_heads * key_dim != qkv_out {
            return Err(self.bad(format!(
                "{p}.attn.qkv: {qkv_out} outputs do not fit {c} channels"
            )));
        }
        let proj = self.conv(&format!("{p}.attn.proj"), c, 1, false)?;
        let pe = self.conv(&format!("{p}.attn.pe"), c, 1, false)?;
        let ffn1 = self.conv(&format!("{p}.ffn.0"), c, 1, true)?;
        let ffn2 = self.conv(&format!("{p}.ffn.1"), self.c_out(ffn1), 1, false)?;
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
    fn branch(&mut self, p: &str, mut c_in: usize) -> Result<Vec<ConvId>, ModelError> {
        let mut out = Vec::new();
        let mut j = 0;
        loop {
            let q = format!("{p}.{j}");
            if self.ck.has(&format!("{q}.conv.weight")) || self.ck.has(&format!("{q}.weight")) {
                let act = self.ck.has(&format!("{q}.conv.weight"));
                let c = self.conv(&q, c_in, 1, act)?;
                c_in = self.c_out(c);
                out.push(c);
            } else if self.ck.has(&format!("{q}.0.conv.weight"))
                || self.ck.has(&format!("{q}.0.weight"))
            {
                let inner = self.branch(&q, c_in)?;
                c_in = inner.last().map(|&c| self.c_out(c)).unwrap_or(c_in);
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
    ) -> Result<Head, ModelError> {
        let mut levels = Vec::new();
        for (i, &c) in chs.iter().enumerate() {
            let boxes = self.branch(&format!("{p}.cv2.{i}"), c)?;
            let classes = self.branch(&format!("{p}.cv3.{i}"), c)?;
            let keypoints = if pose {
                Some(self.branch(&format!("{p}.cv4.{i}"), c)?)
            } else {
                None
            };
            levels.push(HeadLevel {
                boxes,
                classes,
                keypoints,
            });
        }
        let box_out = self.last_out(&levels[0].boxes);
        let nc = self.last_out(&levels[0].classes);
        if !box_out.is_multiple_of(4) {
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
            let nk = self.last_out(levels[0].keypoints.as_deref().expect("pose"));
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
            levels,
            nc,
            reg_max,
            task,
        })
    }
}
