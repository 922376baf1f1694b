//! The YOLO family: ultralytics checkpoints (YOLOv8, YOLO11; detect and pose) loaded
//! directly, with ultralytics-exact letterbox, decode and NMS.
//!
//! A checkpoint (or [`synthetic`] weights) becomes one backend-free [`plan::Plan`]; executors
//! compile it and run it through the block structure and graph walk of [`exec`]: the
//! Burn executor ([`burn_net`], any Burn backend) and the NHWC CPU executor ([`nhwc`]).
//! [`runtime::YoloModel`] holds the compiled network behind [`network::Network`].
//! A new executor (a GPU one, say) is one new module that compiles a `Plan` and implements
//! [`exec::Kernels`], plus its arm in `YoloModel::from_plan`.

pub mod burn_net;
pub mod checkpoint;
pub mod cuda_driver;
pub mod detector;
pub mod device;
pub mod exec;
pub mod kernel_cache;
pub mod network;
#[cfg(feature = "cpu")]
pub mod nhwc;
pub mod pickle;
pub mod plan;
pub mod postprocess;
pub mod preprocess;
pub mod runtime;
pub mod synthetic;
#[cfg(feature = "torch")]
pub mod torch;
pub mod wgpu_adapter;

use std::path::PathBuf;

pub use burn_net::BurnNet;
pub use checkpoint::Checkpoint;
pub use device::{ModelDevice, TorchDevice};
pub use network::Network;
pub use plan::{Plan, YoloTask};
pub use postprocess::NmsOptions;
pub use preprocess::Letterbox;
pub use runtime::{ComparisonBackend, PredictOptions, StageTimes, YoloModel};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {0} does not exist")]
    NotFound(PathBuf),
    #[error("{path}: {message}")]
    BadCheckpoint { path: PathBuf, message: String },
    #[error("{path}: tensor `{name}` is missing (not an ultralytics model of a supported kind?)")]
    MissingTensor { path: PathBuf, name: String },
    #[error("{path}: layer {layer} uses module `{module}`, which Pitchside does not support yet")]
    UnsupportedModule {
        path: PathBuf,
        layer: usize,
        module: String,
    },
    #[error("image: {0}")]
    Image(String),
    #[error("device `{0}` is not compiled into this build")]
    DeviceNotCompiled(&'static str),
    #[error("inference failed: {0}")]
    Inference(String),
    /// LibTorch is missing a device, or is not the one Pitchside was built against.
    #[error("{0}")]
    Torch(String),
}
