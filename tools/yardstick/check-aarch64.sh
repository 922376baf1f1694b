#!/usr/bin/env bash
# Type-checks the CPU executor (models/src/{plan,exec}.rs and models/src/nhwc/) for
# aarch64-unknown-linux-gnu, i.e. its non-x86 fallback (row-major weights, the `gemm`
# crate, no AVX-512 kernels). Run by hand, not by tests: the models crate as a whole does
# not cross-check, because the opencv crate's build script needs an aarch64 OpenCV, so this
# builds a scratch crate in /tmp from the real sources with a stand-in for the checkpoint
# reader (burn's TensorData is the only thing the plan takes from it).
#
#   rustup target add aarch64-unknown-linux-gnu   # once
#   tools/yardstick/check-aarch64.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
scratch=${SCRATCH:-/tmp/pitchside-nhwc-aarch64}
mkdir -p "$scratch/src"
cat > "$scratch/Cargo.toml" <<TOML
[package]
name = "pitchside-nhwc-aarch64-check"
version = "0.0.0"
edition = "2024"
publish = false

[workspace]

[dependencies]
gemm = { version = "0.19", default-features = false, features = ["std", "rayon", "f16", "x86-v4"] }
half = "2"
rayon = "1"
serde_json = "1"
thiserror = "2"
tracing = "0.1"
TOML
cat > "$scratch/src/lib.rs" <<RS
#![allow(dead_code)]
#[path = "$root/models/src/plan.rs"]
pub mod plan;
#[path = "$root/models/src/exec.rs"]
pub mod exec;
#[path = "$root/models/src/nhwc/mod.rs"]
pub mod nhwc;

/// Stand-in for models/src/checkpoint.rs: what plan.rs reads of a checkpoint.
pub mod checkpoint {
    use std::collections::{BTreeMap, HashMap};
    use std::path::PathBuf;

    #[derive(Debug, Clone)]
    pub struct TensorData {
        pub shape: Vec<usize>,
        values: Vec<f32>,
    }
    impl TensorData {
        pub fn to_vec<T: From<f32>>(&self) -> Result<Vec<T>, String> {
            Ok(self.values.iter().map(|&v| T::from(v)).collect())
        }
    }
    pub struct Checkpoint {
        pub path: PathBuf,
        pub arch: serde_json::Value,
        pub names: BTreeMap<u32, String>,
        pub tensors: HashMap<String, TensorData>,
        pub attrs: HashMap<String, f64>,
        pub classes: HashMap<String, String>,
    }
    impl Checkpoint {
        pub fn take(&mut self, name: &str) -> Result<TensorData, crate::ModelError> {
            self.tensors.remove(name).ok_or_else(|| crate::ModelError::MissingTensor {
                path: self.path.clone(),
                name: name.to_string(),
            })
        }
        pub fn has(&self, name: &str) -> bool {
            self.tensors.contains_key(name)
        }
        pub fn shape(&self, name: &str) -> Option<&[usize]> {
            self.tensors.get(name).map(|t| &t.shape[..])
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {message}")]
    BadCheckpoint { path: std::path::PathBuf, message: String },
    #[error("{path}: tensor {name} is missing")]
    MissingTensor { path: std::path::PathBuf, name: String },
    #[error("{path}: layer {layer} uses module {module}")]
    UnsupportedModule { path: std::path::PathBuf, layer: usize, module: String },
}
RS
cd "$scratch"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/pitchside/target}
cargo check --target aarch64-unknown-linux-gnu
echo "aarch64: the CPU executor type-checks"
