//! Reading ultralytics checkpoints: the `.pt` zip holds a pickle of the whole model object
//! (nested modules with `_parameters`, `_buffers`, `_modules`) and its architecture dict
//! (`yaml`), plus one file per tensor storage. burn-store 0.21's `PytorchStore` cannot read
//! these (its pickle reader rejects the model object's `builtins.set`), so the pickle is
//! read by `crate::pickle` and the module tree walked here.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use burn::tensor::TensorData;

use crate::ModelError;
use crate::pickle::{self, Value};

/// Everything Pitchside needs from a checkpoint.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub path: PathBuf,
    /// The architecture description (`yaml` attribute of the model), as JSON.
    pub arch: serde_json::Value,
    /// Class names by index.
    pub names: BTreeMap<u32, String>,
    /// Tensors by module path without the leading `model.` (e.g. `0.conv.weight`), as f32.
    pub tensors: HashMap<String, TensorData>,
    /// Scalar attributes of modules that the forward pass needs (BatchNorm `eps`).
    pub attrs: HashMap<String, f64>,
    /// Python class name of each module path (e.g. `22` → `Detect`).
    pub classes: HashMap<String, String>,
}

impl Checkpoint {
    /// Loads a `.pt` (pickle in zip) or `.safetensors` file (with `<stem>.yaml` or `.json`
    /// alongside for the architecture).
    pub fn load(path: &Path) -> Result<Checkpoint, ModelError> {
        if !path.is_file() {
            return Err(ModelError::NotFound(path.to_path_buf()));
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("safetensors") => load_safetensors(path),
            _ => load_pt(path),
        }
    }

    /// Takes a tensor out by name.
    pub fn take(&mut self, name: &str) -> Result<TensorData, ModelError> {
        self.tensors
            .remove(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.path.clone(),
                name: name.to_string(),
            })
    }

    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }
}

fn bad(path: &Path, msg: impl Into<String>) -> ModelError {
    ModelError::BadCheckpoint {
        path: path.to_path_buf(),
        message: msg.into(),
    }
}

fn load_pt(path: &Path) -> Result<Checkpoint, ModelError> {
    let file = std::fs::File::open(path).map_err(|e| bad(path, e.to_string()))?;
    read_pt(std::io::BufReader::new(file), path)
}

/// Reads a `.pt` from any reader; `path` names it in errors. Nothing in the file is
/// executed, and what it may cost is bounded by its size: the pickle's elements
/// ([`pickle::parse`]), the module tree ([`MAX_MODULES`]), the architecture dict
/// ([`MAX_ARCH_NODES`]), each entry's bytes and the tensors' elements ([`pickle::read_entry`],
/// [`pickle::tensor_values`], and at most twice the storages' bytes in all).
pub fn read_pt(
    reader: impl std::io::Read + std::io::Seek,
    path: &Path,
) -> Result<Checkpoint, ModelError> {
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| {
        bad(
            path,
            format!("not a PyTorch zip checkpoint (or truncated): {e}"),
        )
    })?;
    let pkl_name = (0..archive.len())
        .filter_map(|i| archive.name_for_index(i).map(str::to_string))
        .find(|n| n.ends_with("data.pkl"))
        .ok_or_else(|| bad(path, "no data.pkl in the archive: not a PyTorch checkpoint"))?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let pickle = pickle::read_entry(&mut archive, &pkl_name).map_err(|e| bad(path, e))?;
    let root =
        pickle::parse(&pickle).map_err(|e| bad(path, format!("cannot parse {pkl_name}: {e}")))?;
    if !matches!(root, Value::Dict(_)) {
        return Err(bad(
            path,
            "the pickle is not a dict: not an ultralytics checkpoint",
        ));
    }
    // Trainers save `ema` and `model`; stripped checkpoints keep only `model`.
    let model = ["model", "ema"]
        .iter()
        .filter_map(|k| root.get(k))
        .find(|o| !matches!(o, Value::None))
        .ok_or_else(|| bad(path, "no `model` entry: not an ultralytics checkpoint"))?;
    let state = model
        .state()
        .ok_or_else(|| bad(path, "`model` is not a pickled nn.Module"))?;
    let arch = state
        .get("yaml")
        .ok_or_else(|| bad(path, "the model has no `yaml` architecture description"))?;
    let arch = to_json(&arch).ok_or_else(|| {
        bad(
            path,
            format!(
                "the `yaml` architecture description is nested deeper than {MAX_ARCH_DEPTH} \
                 or has more than {MAX_ARCH_NODES} values"
            ),
        )
    })?;
    let names = state
        .get("names")
        .map(|v| parse_names(&v))
        .unwrap_or_default();

    let mut walk = Walk::default();
    walk.module(&model, "", 0);
    if walk.overflow {
        return Err(bad(
            path,
            format!(
                "the module tree is nested deeper than {MAX_MODULE_DEPTH} or has more than \
                 {MAX_MODULES} modules (a malicious file?)"
            ),
        ));
    }
    // Read each storage once; tensors are views into them.
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut tensors = HashMap::new();
    // Tensors may share a storage, but a pickle that points thousands of them at one big
    // storage would multiply the file's size in memory.
    let mut tensor_bytes = 0usize;
    let mut storage_bytes = 0usize;
    for (name, t) in walk.tensors {
        if !storages.contains_key(&t.storage) {
            let entry = format!("{prefix}data/{}", t.storage);
            let bytes = pickle::read_entry(&mut archive, &entry).map_err(|e| {
                bad(
                    path,
                    format!("cannot read tensor {name}: {e} (truncated file?)"),
                )
            })?;
            storage_bytes += bytes.len();
            storages.insert(t.storage.clone(), bytes);
        }
        let values = pickle::tensor_values(&t, &storages[&t.storage])
            .map_err(|e| bad(path, format!("tensor {name}: {e}")))?;
        tensor_bytes += values.len() * 4;
        if tensor_bytes > 2 * storage_bytes.max(1 << 20) {
            return Err(bad(
                path,
                format!(
                    "the tensors ({tensor_bytes} bytes as f32 so far) are more than twice \
                     their storages' size (a malicious file?)"
                ),
            ));
        }
        tensors.insert(strip_one(&name), TensorData::new(values, t.shape.clone()));
    }
    Ok(Checkpoint {
        path: path.to_path_buf(),
        arch,
        names,
        tensors,
        attrs: strip(walk.attrs),
        classes: strip(walk.classes),
    })
}

/// Ultralytics nests the layer list as `model.model.N`: drop the outer `model.`.
fn strip_one(k: &str) -> String {
    k.strip_prefix("model.").unwrap_or(k).to_string()
}

fn strip<V>(m: HashMap<String, V>) -> HashMap<String, V> {
    m.into_iter().map(|(k, v)| (strip_one(&k), v)).collect()
}

/// Bounds of the module walk: ultralytics nests modules 4 deep and has a few hundred; a
/// pickle can make the tree cyclic, or a DAG whose paths double at each level.
pub const MAX_MODULE_DEPTH: usize = 64;
pub const MAX_MODULES: usize = 100_000;
/// Bounds of the architecture dict (a few hundred values, 4 deep), for the same reasons.
pub const MAX_ARCH_DEPTH: usize = 64;
pub const MAX_ARCH_NODES: usize = 1_000_000;

#[derive(Default)]
struct Walk {
    tensors: Vec<(String, Rc<pickle::TensorRef>)>,
    attrs: HashMap<String, f64>,
    classes: HashMap<String, String>,
    visited: usize,
    /// Set when a bound was hit; the walk then stops.
    overflow: bool,
}

impl Walk {
    fn module(&mut self, o: &Value, prefix: &str, depth: usize) {
        if self.overflow {
            return;
        }
        self.visited += 1;
        if depth > MAX_MODULE_DEPTH || self.visited > MAX_MODULES {
            self.overflow = true;
            return;
        }
        let Some(state) = o.state() else {
            return;
        };
        if let Some(c) = o.class_name() {
            self.classes
                .insert(prefix.trim_end_matches('.').to_string(), c.to_string());
        }
        if let Some(Value::Float(eps)) = state.get("eps") {
            self.attrs.insert(format!("{prefix}eps"), eps);
        }
        for group in ["_parameters", "_buffers"] {
            if let Some(Value::Dict(params)) = state.get(group).as_ref() {
                for (k, v) in params.borrow().iter() {
                    if let (Some(k), Value::Tensor(t)) = (k.as_str(), v) {
                        self.tensors.push((format!("{prefix}{k}"), t.clone()));
                    }
                }
            }
        }
        if let Some(Value::Dict(children)) = state.get("_modules").as_ref() {
            for (k, child) in children.borrow().iter() {
                if let Some(k) = k.as_str() {
                    self.module(child, &format!("{prefix}{k}."), depth + 1);
                }
            }
        }
    }
}

fn parse_names(v: &Value) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    match v {
        Value::Dict(d) => {
            for (k, v) in d.borrow().iter() {
                let idx = match k {
                    Value::Int(i) => Some(*i as u32),
                    Value::Str(s) => s.parse().ok(),
                    _ => None,
                };
                if let (Some(i), Some(s)) = (idx, v.as_str()) {
                    out.insert(i, s.to_string());
                }
            }
        }
        Value::List(_) | Value::Tuple(_) => {
            let items = match v {
                Value::List(l) => l.borrow().clone(),
                Value::Tuple(t) => t.as_ref().clone(),
                _ => unreachable!(),
            };
            for (i, s) in items.iter().enumerate() {
                if let Some(s) = s.as_str() {
                    out.insert(i as u32, s.to_string());
                }
            }
        }
        _ => {}
    }
    out
}

/// Converts plain pickled data (the architecture dict) to JSON; `None` past
/// [`MAX_ARCH_DEPTH`] levels or [`MAX_ARCH_NODES`] values (shared or cyclic containers
/// would otherwise expand without end).
pub fn to_json(v: &Value) -> Option<serde_json::Value> {
    let mut budget = MAX_ARCH_NODES;
    to_json_bounded(v, 0, &mut budget)
}

fn to_json_bounded(v: &Value, depth: usize, budget: &mut usize) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    if depth > MAX_ARCH_DEPTH {
        return None;
    }
    *budget = budget.checked_sub(1)?;
    let mut each = |v: &Value| to_json_bounded(v, depth + 1, budget);
    Some(match v {
        Value::None => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .unwrap_or(J::Null),
        Value::Str(s) => J::String(s.clone()),
        Value::Tuple(t) => J::Array(t.iter().map(each).collect::<Option<_>>()?),
        Value::List(l) => J::Array(l.borrow().iter().map(each).collect::<Option<_>>()?),
        Value::Dict(d) => J::Object(
            d.borrow()
                .iter()
                .map(|(k, v)| {
                    // Shallow: a key's Debug form could be a cyclic container.
                    let key = match k {
                        Value::Str(s) => s.clone(),
                        Value::Int(i) => i.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::None => "None".into(),
                        _ => "?".into(),
                    };
                    Some((key, each(v)?))
                })
                .collect::<Option<_>>()?,
        ),
        _ => J::Null,
    })
}

fn load_safetensors(path: &Path) -> Result<Checkpoint, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, e.to_string()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(path, format!("not a safetensors file: {e}")))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let raw = view.data();
        let values: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            safetensors::Dtype::F16 => raw
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            safetensors::Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            safetensors::Dtype::I64 => raw
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            other => {
                return Err(bad(
                    path,
                    format!("tensor {name} has unsupported dtype {other:?}"),
                ));
            }
        };
        let name = name.strip_prefix("model.").unwrap_or(&name).to_string();
        tensors.insert(name, TensorData::new(values, shape));
    }
    // The architecture travels beside the weights: <stem>.json (the `yaml` dict as JSON).
    let json_path = path.with_extension("json");
    let arch_text = std::fs::read_to_string(&json_path).map_err(|e| {
        bad(
            path,
            format!(
                "safetensors weights need the architecture description beside them in {} ({e})",
                json_path.display()
            ),
        )
    })?;
    let mut arch: serde_json::Value = serde_json::from_str(&arch_text)
        .map_err(|e| bad(&json_path, format!("invalid JSON: {e}")))?;
    let names = arch
        .get("names")
        .and_then(serde_json::Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    if let Some(obj) = arch.as_object_mut() {
        obj.remove("names");
    }
    Ok(Checkpoint {
        path: path.to_path_buf(),
        arch,
        names,
        tensors,
        attrs: HashMap::new(),
        classes: HashMap::new(),
    })
}

#[cfg(test)]
mod proptests;
