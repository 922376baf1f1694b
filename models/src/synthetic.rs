//! Random-weight checkpoints from an architecture description alone, like ultralytics'
//! `YOLO("yolov8x.yaml")`: GPU benchmarks need sizes we have no trained weights for.
//!
//! Channel counts follow ultralytics 8.4.190's `parse_model` and module constructors
//! exactly, so the tensors have the names and shapes a real checkpoint of the architecture
//! has, and `Plan::take_from` loads them like one.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::tensor::TensorData;
use serde_json::Value;

use crate::ModelError;
use crate::checkpoint::Checkpoint;
use crate::plan::Layer;

/// ultralytics' `initialize_weights` sets every BatchNorm's eps to this.
const BN_EPS: f64 = 1e-3;
/// Scale of every BatchNorm's output (before the random gamma): well inside SiLU's
/// ReLU-like range, where the network is nearly positively homogeneous, so that a scale
/// error anywhere (the estimates below, an input unlike the assumed one) passes through
/// the remaining layers about unchanged. Near unit scale SiLU amplifies such errors by
/// ~1.17 per layer: 100 layers turn a 10% error into vanishing or exploding features.
const PRE_ACT: f64 = 5.0;
/// A `Conv` block's output statistics when its BatchNorm statistics fit its input:
/// `PRE_ACT` times a unit normal, times the random gamma / sqrt(var / input mean square),
/// plus beta, then SiLU or not (sampled once with the venv: 20M draws).
const ACT: Stat = Stat {
    mean: 1.945,
    m2: 14.66,
};
const LINEAR: Stat = Stat {
    mean: 0.0,
    m2: 29.75,
};
/// The network input: RGB in [0, 1].
const INPUT: Stat = Stat {
    mean: 0.5,
    m2: 1.0 / 3.0,
};

/// Mean and mean square of a feature map (over all its values), tracked through the
/// network to set each BatchNorm's running statistics.
#[derive(Debug, Clone, Copy)]
struct Stat {
    mean: f64,
    m2: f64,
}

impl Stat {
    /// Sum of two nearly independent maps (a residual): their means add, so the positive
    /// means of SiLU outputs make the mean square grow faster than the variances alone.
    fn add(self, o: Stat) -> Stat {
        Stat {
            mean: self.mean + o.mean,
            m2: self.m2 + o.m2 + 2.0 * self.mean * o.mean,
        }
    }

    /// Channel concatenation of `(channels, stat)` parts.
    fn cat(parts: &[(usize, Stat)]) -> Stat {
        let c: usize = parts.iter().map(|p| p.0).sum();
        let avg = |f: fn(&Stat) -> f64| {
            parts.iter().map(|p| p.0 as f64 * f(&p.1)).sum::<f64>() / c as f64
        };
        Stat {
            mean: avg(|s| s.mean),
            m2: avg(|s| s.m2),
        }
    }
}

/// Reads an ultralytics model YAML as ultralytics' `yaml_model_load` does: a scaled name
/// that does not exist (`yolov8x.yaml`, `yolov8x-pose.yaml`) falls back to the unscaled file
/// beside it (`yolov8.yaml`, `yolov8-pose.yaml`), and the scale letter is guessed from the
/// name (`x`) as `guess_model_scale` does; without one, the first of `scales` in file order
/// (ultralytics' choice, with a warning). The scale is written into the result as `scale`,
/// the path as `yaml_file`.
///
/// To change the classes or keypoints, edit the result before
/// [`synthetic_checkpoint`]: `arch["nc"] = 4.into()`,
/// `arch["kpt_shape"] = serde_json::json!([32, 3])`.
pub fn load_arch_yaml(path: impl AsRef<Path>) -> Result<Value, ModelError> {
    let path = path.as_ref();
    let file = if path.is_file() {
        path.to_path_buf()
    } else {
        unscaled_path(path)
            .filter(|p| p.is_file())
            .ok_or_else(|| ModelError::NotFound(path.to_path_buf()))?
    };
    let bad = |message: String| ModelError::BadCheckpoint {
        path: file.clone(),
        message,
    };
    let text = std::fs::read_to_string(&file).map_err(|e| bad(e.to_string()))?;
    // The YAML value keeps the file's key order (JSON objects here are sorted), which
    // decides the default scale.
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| bad(format!("invalid YAML: {e}")))?;
    let first_scale = yaml
        .get("scales")
        .and_then(serde_yaml_ng::Value::as_mapping)
        .and_then(|m| m.keys().next())
        .and_then(serde_yaml_ng::Value::as_str)
        .map(str::to_string);
    let mut arch: Value = serde_yaml_ng::from_value(yaml)
        .map_err(|e| bad(format!("not a model description: {e}")))?;
    let obj = arch
        .as_object_mut()
        .ok_or_else(|| bad("not a model description (expected a mapping)".into()))?;
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    // ultralytics keeps a guessed scale even without `scales` (it still picks C3k2's
    // blocks).
    let scale = guess_model_scale(name)
        .map(str::to_string)
        .or(first_scale.filter(|_| obj.contains_key("scales")));
    if let Some(scale) = scale {
        obj.insert("scale".into(), Value::String(scale));
    }
    obj.insert(
        "yaml_file".into(),
        Value::String(path.display().to_string()),
    );
    Ok(arch)
}

/// `yolov8x-pose.yaml` → `yolov8-pose.yaml`: ultralytics' `re.sub(r"(\d+)([nslmx])(.+)?$",
/// r"\1\3", ...)`, applied to the file name only.
fn unscaled_path(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j < b.len() && b"nslmx".contains(&b[j]) {
                return Some(path.with_file_name(format!("{}{}", &name[..j], &name[j + 1..])));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    None
}

/// ultralytics' `guess_model_scale`: `re.search(r"yolo(e-)?[v]?\d+([nslmx])", stem)`.
fn guess_model_scale(stem: &str) -> Option<&str> {
    stem.match_indices("yolo").find_map(|(i, _)| {
        let rest = &stem[i + 4..];
        let rest = rest.strip_prefix("e-").unwrap_or(rest);
        let rest = rest.strip_prefix('v').unwrap_or(rest);
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let c = rest.get(digits..digits + 1)?;
        (digits > 0 && "nslmx".contains(c)).then_some(c)
    })
}

/// A checkpoint with random weights for `arch` (an ultralytics model description as JSON:
/// from [`load_arch_yaml`] or a checkpoint's `arch`), at `scale` (overriding the
/// description's `scale`; needed when it has `scales` and names none), deterministic in
/// `seed`. Class `i` is named `class{i}`.
///
/// Weights are uniform with variance 1/fan-in, and each BatchNorm's running statistics are
/// set as if measured on its input (from the input statistics tracked through the
/// network), so features keep about the same scale at every depth, as in a trained
/// network, and the output is finite and depends on the input. The head's final biases are
/// ultralytics' `bias_init`, so scores start low, as in an untrained ultralytics model.
pub fn synthetic_checkpoint(
    mut arch: Value,
    scale: Option<&str>,
    seed: u64,
) -> Result<Checkpoint, ModelError> {
    let path = PathBuf::from(format!(
        "<synthetic {} seed {seed}>",
        arch.get("yaml_file")
            .and_then(Value::as_str)
            .unwrap_or("architecture")
    ));
    let bad = |message: String| ModelError::BadCheckpoint {
        path: path.clone(),
        message,
    };
    let obj = arch
        .as_object_mut()
        .ok_or_else(|| bad("the architecture is not a JSON object".into()))?;
    let named = scale.is_some();
    let scale = scale
        .map(str::to_string)
        .or_else(|| obj.get("scale").and_then(Value::as_str).map(str::to_string))
        .filter(|s| !s.is_empty());
    let (depth, width, max_channels) = match (obj.get("scales").and_then(Value::as_object), &scale)
    {
        (Some(scales), Some(s)) => {
            let v = scales
                .get(s)
                .and_then(Value::as_array)
                .filter(|v| v.len() == 3)
                .and_then(|v| Some((v[0].as_f64()?, v[1].as_f64()?, v[2].as_f64()?)))
                .ok_or_else(|| {
                    bad(format!(
                        "scale `{s}` is not one of `scales` [depth, width, max_channels]"
                    ))
                })?;
            obj.insert("scale".into(), Value::String(s.clone()));
            // `Plan::take_from` reads `depth_multiple` before `scales`: keep the two consistent.
            for (key, value) in [("depth_multiple", v.0), ("width_multiple", v.1)] {
                if obj.contains_key(key) {
                    obj.insert(key.into(), value.into());
                }
            }
            v
        }
        (Some(_), None) => {
            // JSON objects are sorted, so ultralytics' "first scale" is unknown here.
            return Err(bad(
                "the architecture has `scales` but names no scale: pass one".into(),
            ));
        }
        (None, Some(s)) if named => {
            return Err(bad(format!(
                "scale `{s}` given, but the architecture has no `scales`"
            )));
        }
        (None, _) => (
            num(obj, "depth_multiple"),
            num(obj, "width_multiple"),
            f64::INFINITY,
        ),
    };
    let nc = obj
        .get("nc")
        .and_then(Value::as_u64)
        .filter(|&n| n > 0)
        .ok_or_else(|| bad("the architecture has no positive `nc`".into()))? as usize;
    let reg_max = obj.get("reg_max").and_then(Value::as_u64).unwrap_or(16) as usize;
    let end2end = obj.get("end2end").and_then(Value::as_bool).unwrap_or(false);
    let kpt_shape = obj.get("kpt_shape").cloned();
    let in_ch = ["channels", "ch"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_u64))
        .unwrap_or(3) as usize;
    let act_class = match obj.get("activation").and_then(Value::as_str) {
        // "nn.SiLU()", "torch.nn.ReLU()" → the class name, for `Plan::take_from` to judge.
        Some(a) => a
            .trim_end_matches("()")
            .rsplit('.')
            .next()
            .unwrap_or(a)
            .to_string(),
        None => "SiLU".to_string(),
    };

    let layers = crate::plan::arch_layers(obj).map_err(bad)?;

    let mut g = Gen {
        rng: Rng::new(seed),
        tensors: HashMap::new(),
        attrs: HashMap::new(),
        classes: HashMap::new(),
        act: act_class,
    };
    // Per layer: output channels, statistics, stride.
    let mut outs: Vec<(usize, Stat, usize)> = Vec::with_capacity(layers.len());
    let input = (in_ch, INPUT, 1);
    let mut legacy = true;
    let mut pose = false;
    let mut head_classes = nc;
    let mut head_seen = false;
    let count = layers.len();
    for (i, spec) in layers.iter().enumerate() {
        let (spec, module) = crate::plan::layer_spec(spec, i).map_err(bad)?;
        // `from` read as the plan reads it.
        let from_layer = |v: &Value| match crate::plan::resolve_from(v, i)? {
            crate::plan::Input::Image => Some(input),
            crate::plan::Input::Layer(j) => outs.get(j).copied(),
        };
        let from: Vec<(usize, Stat, usize)> = match &spec[0] {
            Value::Array(a) => a.iter().map(from_layer).collect::<Option<_>>(),
            v => from_layer(v).map(|f| vec![f]),
        }
        .filter(|f| !f.is_empty())
        .ok_or_else(|| bad(format!("layer {i}: bad `from` {}", spec[0])))?;
        let repeats = spec[1]
            .as_i64()
            .filter(|&n| n >= 1)
            .ok_or_else(|| bad(format!("layer {i}: bad repeats {}", spec[1])))?;
        let n = crate::plan::scaled_repeats(repeats, depth);
        let args: Vec<Value> = spec[3]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|a| match a.as_str() {
                // parse_model evaluates names of its locals.
                Some("nc") => Value::from(nc),
                Some("kpt_shape") => kpt_shape.clone().unwrap_or(Value::Null),
                Some("reg_max") => Value::from(reg_max),
                _ => a,
            })
            .collect();
        let unsupported = |what: &str| ModelError::UnsupportedModule {
            path: path.clone(),
            layer: i,
            module: what.to_string(),
        };
        let (c1, xs, stride) = from[0];
        let p = i.to_string();
        // Base modules: `make_divisible(min(c2, max_channels) * width, 8)`.
        let c2 = || -> Result<usize, ModelError> {
            let c = args
                .first()
                .and_then(Value::as_f64)
                .ok_or_else(|| bad(format!("layer {i} ({module}): no output channels")))?;
            Ok(((c.min(max_channels) * width) / 8.0).ceil() as usize * 8)
        };
        let layer = Layer::parse(module, &args).ok_or_else(|| unsupported(module))?;
        if n > 1 && !layer.repeats_inside() {
            // ultralytics would stack `n` copies in a Sequential; `Plan::take_from` has none.
            return Err(unsupported(&format!("{module} x{n}")));
        }
        g.class(&p, module);
        let out = match layer {
            Layer::Conv {
                k,
                s,
                groups,
                dilation,
                act,
            } => {
                let c2 = c2()?;
                if dilation != 1 {
                    return Err(unsupported("Conv with dilation"));
                }
                (
                    c2,
                    g.conv(&p, "Conv", c1, c2, k, groups, act, xs),
                    stride * s,
                )
            }
            Layer::C2f {
                shortcut,
                groups,
                e,
            } => {
                let c2 = c2()?;
                let inner = Inner::Bottleneck { e: 1.0 };
                (
                    c2,
                    g.c2f(&p, c1, c2, n, shortcut, groups, e, inner, xs),
                    stride,
                )
            }
            Layer::C3k2(a) => {
                // parse_model forces c3k for the m/l/x scales.
                legacy = false;
                if a.attn {
                    return Err(unsupported("C3k2 with attention"));
                }
                let c2 = c2()?;
                let inner = if matches!(scale.as_deref(), Some("m" | "l" | "x")) || a.c3k {
                    Inner::C3k
                } else {
                    Inner::Bottleneck { e: 0.5 }
                };
                (
                    c2,
                    g.c2f(&p, c1, c2, n, a.shortcut, a.groups, a.e, inner, xs),
                    stride,
                )
            }
            Layer::Sppf {
                k,
                reps,
                shortcut,
                cv1_act,
            } => {
                let c2 = c2()?;
                if k % 2 != 1 {
                    return Err(bad(format!("layer {i}: SPPF kernel {k} must be odd")));
                }
                (c2, g.sppf(&p, c1, c2, reps, shortcut, cv1_act, xs), stride)
            }
            Layer::C2psa { e } => {
                let c2 = c2()?;
                if c2 != c1 {
                    return Err(bad(format!(
                        "layer {i}: C2PSA needs c1 == c2, has {c1} and {c2}"
                    )));
                }
                (c2, g.c2psa(&p, c1, n, e, xs), stride)
            }
            Layer::Concat { dim } => {
                if dim != 1 {
                    return Err(unsupported("Concat over a dim other than 1"));
                }
                let parts: Vec<(usize, Stat)> = from.iter().map(|f| (f.0, f.1)).collect();
                (parts.iter().map(|p| p.0).sum(), Stat::cat(&parts), stride)
            }
            Layer::Upsample { scale: f, .. } => {
                if f.fract() != 0.0 || f < 1.0 || stride % f as usize != 0 {
                    return Err(unsupported(&format!("Upsample by {f}")));
                }
                (c1, xs, stride / f as usize)
            }
            Layer::Head {
                pose: is_pose,
                nc: head_nc,
                kpt_shape,
            } => {
                if i + 1 != count {
                    return Err(bad(format!("layer {i}: the head must be the last layer")));
                }
                let head_nc = head_nc.unwrap_or(nc);
                head_classes = head_nc;
                head_seen = true;
                let kpt = if is_pose {
                    pose = true;
                    let ks = kpt_shape.ok_or_else(|| {
                        bad(format!("layer {i}: Pose needs kpt_shape [keypoints, dims]"))
                    })?;
                    Some(ks.0 * ks.1)
                } else {
                    None
                };
                let head = HeadSpec {
                    nc: head_nc,
                    reg_max,
                    nk: kpt,
                    legacy,
                    end2end,
                };
                g.head(&p, &from, &head);
                (0, LINEAR, stride)
            }
        };
        outs.push(out);
    }
    // The head is accepted as the last layer only.
    if !head_seen {
        return Err(bad(
            "the architecture does not end with a Detect or Pose head".into(),
        ));
    }
    g.classes.insert(
        String::new(),
        if pose { "PoseModel" } else { "DetectionModel" }.into(),
    );
    g.classes.insert("model".into(), "Sequential".into());
    Ok(Checkpoint {
        path: path.clone(),
        arch,
        names: (0..head_classes as u32)
            .map(|i| (i, format!("class{i}")))
            .collect::<BTreeMap<_, _>>(),
        tensors: g.tensors,
        attrs: g.attrs,
        classes: g.classes,
    })
}

fn num(obj: &serde_json::Map<String, Value>, key: &str) -> f64 {
    obj.get(key).and_then(Value::as_f64).unwrap_or(1.0)
}

/// Statistics after the `j`-th (from 0) of SPPF's chained 5x5 max-pools: the mean square
/// grows about 4x, 1.75x, 1.33x (measured on yolov8x and yolo11m features of a real
/// photo; being homogeneous, an error here only rescales what follows).
fn max_pooled(x: Stat, j: usize) -> Stat {
    let gain = 1.0 + 3.0 / ((j + 1) * (j + 1)) as f64;
    let m2 = x.m2 * gain;
    Stat {
        mean: (x.mean * gain.sqrt()).min(m2.sqrt()),
        m2,
    }
}

/// Statistics of attention's output: at these scales the softmax is nearly one-hot, so
/// each position takes one position's `v`.
fn attended(v: Stat) -> Stat {
    v
}

/// A small xorshift64* generator: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // SplitMix64 of the seed, so nearby seeds give unrelated streams (and never 0).
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [lo, hi).
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
}

enum Inner {
    Bottleneck { e: f64 },
    C3k,
}

struct HeadSpec {
    nc: usize,
    reg_max: usize,
    /// Keypoint values per anchor (Pose).
    nk: Option<usize>,
    /// v8-style class branch (two 3x3 Convs) rather than YOLO11's DWConv pairs.
    legacy: bool,
    end2end: bool,
}

struct Gen {
    rng: Rng,
    tensors: HashMap<String, TensorData>,
    attrs: HashMap<String, f64>,
    classes: HashMap<String, String>,
    /// The default activation's class name.
    act: String,
}

impl Gen {
    fn class(&mut self, p: &str, c: &str) {
        self.classes.insert(p.to_string(), c.to_string());
    }

    fn uniform(&mut self, name: String, shape: Vec<usize>, lo: f32, hi: f32) {
        let len = shape.iter().product();
        let values: Vec<f32> = (0..len).map(|_| self.rng.uniform(lo, hi)).collect();
        self.tensors.insert(name, TensorData::new(values, shape));
    }

    /// An ultralytics `Conv` (bias-free conv, BatchNorm, activation) `p` (class `class`:
    /// `Conv` or `DWConv`) on input `x`; returns the output's statistics.
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        p: &str,
        class: &str,
        c1: usize,
        c2: usize,
        k: usize,
        groups: usize,
        act: bool,
        x: Stat,
    ) -> Stat {
        let fan_in = c1 / groups * k * k;
        // Uniform with variance 1/fan_in: the conv output's mean square is then the input's
        // (zero-mean weights: in expectation, whatever the input's correlations).
        let a = (3.0 / fan_in as f64).sqrt() as f32;
        self.uniform(
            format!("{p}.conv.weight"),
            vec![c2, c1 / groups, k, k],
            -a,
            a,
        );
        let bn = format!("{p}.bn");
        self.uniform(format!("{bn}.weight"), vec![c2], 0.5, 1.5);
        self.uniform(format!("{bn}.bias"), vec![c2], -0.1, 0.1);
        // Running statistics as if measured on this input (its expected mean square, over
        // PRE_ACT squared): every block's output has about the same scale however deep it
        // sits (statistics that ignore the input let features grow or shrink
        // geometrically with depth).
        let sd = x.m2.sqrt() as f32;
        let var = (x.m2 / (PRE_ACT * PRE_ACT)) as f32;
        self.uniform(format!("{bn}.running_mean"), vec![c2], -0.1 * sd, 0.1 * sd);
        self.uniform(format!("{bn}.running_var"), vec![c2], 0.5 * var, 1.5 * var);
        self.attrs.insert(format!("{bn}.eps"), BN_EPS);
        self.class(p, class);
        self.class(&format!("{p}.conv"), "Conv2d");
        self.class(&bn, "BatchNorm2d");
        let act_class = if act {
            self.act.clone()
        } else {
            "Identity".to_string()
        };
        self.class(&format!("{p}.act"), &act_class);
        if act { ACT } else { LINEAR }
    }

    /// A plain `nn.Conv2d` 1x1 with bias (the heads' last layers) on input `x`: PyTorch's
    /// default init for unit-scale inputs, so the outputs are O(1) whatever `x`'s scale.
    fn conv2d(&mut self, p: &str, c1: usize, c2: usize, bias: Option<f32>, x: Stat) {
        let a = 1.0 / (c1 as f64 * x.m2).sqrt() as f32;
        self.uniform(format!("{p}.weight"), vec![c2, c1, 1, 1], -a, a);
        match bias {
            Some(b) => {
                self.tensors
                    .insert(format!("{p}.bias"), TensorData::new(vec![b; c2], vec![c2]));
            }
            None => self.uniform(format!("{p}.bias"), vec![c2], -a, a),
        }
        self.class(p, "Conv2d");
    }

    /// Bottleneck(c1, c2, shortcut, g, k, e): hidden `int(c2 * e)`.
    #[allow(clippy::too_many_arguments)]
    fn bottleneck(
        &mut self,
        p: &str,
        c1: usize,
        c2: usize,
        shortcut: bool,
        groups: usize,
        e: f64,
        x: Stat,
    ) -> Stat {
        let c_ = (c2 as f64 * e) as usize;
        let a = self.conv(&format!("{p}.cv1"), "Conv", c1, c_, 3, 1, true, x);
        let b = self.conv(&format!("{p}.cv2"), "Conv", c_, c2, 3, groups, true, a);
        self.class(p, "Bottleneck");
        if shortcut && c1 == c2 { b.add(x) } else { b }
    }

    /// C3k(c1, c2, n, shortcut, g, e=0.5, k=3): C3's convs with `n` 3x3 Bottlenecks (e=1.0).
    #[allow(clippy::too_many_arguments)]
    fn c3k(
        &mut self,
        p: &str,
        c1: usize,
        c2: usize,
        n: usize,
        shortcut: bool,
        groups: usize,
        x: Stat,
    ) -> Stat {
        let c_ = c2 / 2;
        let mut a = self.conv(&format!("{p}.cv1"), "Conv", c1, c_, 1, 1, true, x);
        let b = self.conv(&format!("{p}.cv2"), "Conv", c1, c_, 1, 1, true, x);
        for j in 0..n {
            a = self.bottleneck(&format!("{p}.m.{j}"), c_, c_, shortcut, groups, 1.0, a);
        }
        self.class(&format!("{p}.m"), "Sequential");
        self.class(p, "C3k");
        self.conv(
            &format!("{p}.cv3"),
            "Conv",
            2 * c_,
            c2,
            1,
            1,
            true,
            Stat::cat(&[(c_, a), (c_, b)]),
        )
    }

    /// C2f / C3k2: cv1 to `2c` (`c = int(c2 * e)`), `n` inner blocks on the last half,
    /// cv2 over all `(2 + n) c` channels.
    #[allow(clippy::too_many_arguments)]
    fn c2f(
        &mut self,
        p: &str,
        c1: usize,
        c2: usize,
        n: usize,
        shortcut: bool,
        groups: usize,
        e: f64,
        inner: Inner,
        x: Stat,
    ) -> Stat {
        let c = (c2 as f64 * e) as usize;
        let y = self.conv(&format!("{p}.cv1"), "Conv", c1, 2 * c, 1, 1, true, x);
        let mut parts = vec![(2 * c, y)];
        let mut last = y;
        for j in 0..n {
            let q = format!("{p}.m.{j}");
            last = match inner {
                Inner::Bottleneck { e } => self.bottleneck(&q, c, c, shortcut, groups, e, last),
                Inner::C3k => self.c3k(&q, c, c, 2, shortcut, groups, last),
            };
            parts.push((c, last));
        }
        self.class(&format!("{p}.m"), "ModuleList");
        self.conv(
            &format!("{p}.cv2"),
            "Conv",
            (2 + n) * c,
            c2,
            1,
            1,
            true,
            Stat::cat(&parts),
        )
    }

    /// SPPF(c1, c2, k, n, shortcut): cv1 to `c1 // 2`, `n` max-pools, cv2 over all.
    #[allow(clippy::too_many_arguments)]
    fn sppf(
        &mut self,
        p: &str,
        c1: usize,
        c2: usize,
        n: usize,
        shortcut: bool,
        cv1_act: bool,
        x: Stat,
    ) -> Stat {
        let c_ = c1 / 2;
        let y = self.conv(&format!("{p}.cv1"), "Conv", c1, c_, 1, 1, cv1_act, x);
        let mut parts = vec![(c_, y)];
        for j in 0..n {
            parts.push((c_, max_pooled(parts[j].1, j)));
        }
        self.class(&format!("{p}.m"), "MaxPool2d");
        let out = self.conv(
            &format!("{p}.cv2"),
            "Conv",
            c_ * (n + 1),
            c2,
            1,
            1,
            true,
            Stat::cat(&parts),
        );
        if shortcut && c1 == c2 {
            out.add(x)
        } else {
            out
        }
    }

    /// C2PSA(c1, c2, n, e): cv1 to `2c` (`c = int(c1 * e)`), `n` PSABlocks on the second
    /// half, cv2 back to `c1`.
    fn c2psa(&mut self, p: &str, c1: usize, n: usize, e: f64, x: Stat) -> Stat {
        let c = (c1 as f64 * e) as usize;
        let y = self.conv(&format!("{p}.cv1"), "Conv", c1, 2 * c, 1, 1, true, x);
        let mut b = y;
        for j in 0..n {
            b = self.psa_block(&format!("{p}.m.{j}"), c, b);
        }
        self.class(&format!("{p}.m"), "Sequential");
        self.conv(
            &format!("{p}.cv2"),
            "Conv",
            2 * c,
            c1,
            1,
            1,
            true,
            Stat::cat(&[(c, y), (c, b)]),
        )
    }

    /// PSABlock(c, attn_ratio=0.5, num_heads=max(c // 64, 1)): attention and a feed-forward
    /// pair, both residual.
    fn psa_block(&mut self, p: &str, c: usize, x: Stat) -> Stat {
        let heads = (c / 64).max(1);
        let head_dim = c / heads;
        let key_dim = head_dim / 2;
        let a = format!("{p}.attn");
        let v = self.conv(
            &format!("{a}.qkv"),
            "Conv",
            c,
            c + 2 * key_dim * heads,
            1,
            1,
            false,
            x,
        );
        let pe = self.conv(&format!("{a}.pe"), "Conv", c, c, 3, c, false, v);
        let attn = self.conv(
            &format!("{a}.proj"),
            "Conv",
            c,
            c,
            1,
            1,
            false,
            attended(v).add(pe),
        );
        self.class(&a, "Attention");
        let x = x.add(attn);
        let f = self.conv(&format!("{p}.ffn.0"), "Conv", c, 2 * c, 1, 1, true, x);
        let f = self.conv(&format!("{p}.ffn.1"), "Conv", 2 * c, c, 1, 1, false, f);
        self.class(&format!("{p}.ffn"), "Sequential");
        self.class(p, "PSABlock");
        x.add(f)
    }

    /// Detect / Pose heads as ultralytics 8.4.190 builds them.
    fn head(&mut self, p: &str, from: &[(usize, Stat, usize)], h: &HeadSpec) {
        let ch0 = from[0].0;
        let c2 = 16.max(ch0 / 4).max(h.reg_max * 4);
        let c3 = ch0.max(h.nc.min(100));
        for (i, &(x, xs, stride)) in from.iter().enumerate() {
            let q = format!("{p}.cv2.{i}");
            let a = self.conv(&format!("{q}.0"), "Conv", x, c2, 3, 1, true, xs);
            let a = self.conv(&format!("{q}.1"), "Conv", c2, c2, 3, 1, true, a);
            // ultralytics' bias_init: box logits 2.0, class scores ~0.01 objects per image.
            self.conv2d(&format!("{q}.2"), c2, 4 * h.reg_max, Some(2.0), a);
            self.class(&q, "Sequential");

            let q = format!("{p}.cv3.{i}");
            let b = if h.legacy {
                let b = self.conv(&format!("{q}.0"), "Conv", x, c3, 3, 1, true, xs);
                self.conv(&format!("{q}.1"), "Conv", c3, c3, 3, 1, true, b)
            } else {
                let b = self.conv(&format!("{q}.0.0"), "DWConv", x, x, 3, x, true, xs);
                let b = self.conv(&format!("{q}.0.1"), "Conv", x, c3, 1, 1, true, b);
                let b = self.conv(&format!("{q}.1.0"), "DWConv", c3, c3, 3, c3, true, b);
                self.class(&format!("{q}.0"), "Sequential");
                self.class(&format!("{q}.1"), "Sequential");
                self.conv(&format!("{q}.1.1"), "Conv", c3, c3, 1, 1, true, b)
            };
            let prior = (5.0 / h.nc as f64 / (640.0 / stride as f64).powi(2)).ln() as f32;
            self.conv2d(&format!("{q}.2"), c3, h.nc, Some(prior), b);
            self.class(&q, "Sequential");

            if let Some(nk) = h.nk {
                let c4 = (ch0 / 4).max(nk);
                let q = format!("{p}.cv4.{i}");
                let k = self.conv(&format!("{q}.0"), "Conv", x, c4, 3, 1, true, xs);
                let k = self.conv(&format!("{q}.1"), "Conv", c4, c4, 3, 1, true, k);
                self.conv2d(&format!("{q}.2"), c4, nk, None, k);
                self.class(&q, "Sequential");
            }
        }
        for branch in ["cv2", "cv3", "cv4"] {
            if branch != "cv4" || h.nk.is_some() {
                self.class(&format!("{p}.{branch}"), "ModuleList");
            }
        }
        if h.reg_max > 1 {
            // DFL's fixed conv: the bin indices.
            let bins: Vec<f32> = (0..h.reg_max).map(|b| b as f32).collect();
            self.tensors.insert(
                format!("{p}.dfl.conv.weight"),
                TensorData::new(bins, vec![1, h.reg_max, 1, 1]),
            );
            self.class(&format!("{p}.dfl"), "DFL");
            self.class(&format!("{p}.dfl.conv"), "Conv2d");
        }
        if h.end2end {
            // The one-to-one branches start as deep copies of the one-to-many ones.
            let copies: Vec<(String, TensorData)> = self
                .tensors
                .iter()
                .filter_map(|(k, v)| {
                    let rest = k.strip_prefix(p)?.strip_prefix('.')?;
                    ["cv2.", "cv3.", "cv4."]
                        .iter()
                        .any(|b| rest.starts_with(b))
                        .then(|| (format!("{p}.one2one_{rest}"), v.clone()))
                })
                .collect();
            for (k, v) in copies {
                let eps = k.strip_suffix(".running_var").map(|bn| format!("{bn}.eps"));
                if let Some(eps) = eps {
                    self.attrs.insert(eps, BN_EPS);
                }
                self.tensors.insert(k, v);
            }
        }
    }
}
