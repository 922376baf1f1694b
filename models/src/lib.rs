//! The YOLO family on Burn: ultralytics checkpoints (YOLOv8, YOLO11; detect and pose)
//! loaded directly, with ultralytics-exact letterbox, decode and NMS.

pub mod checkpoint;
#[cfg(feature = "cpu")]
pub mod nhwc;
pub mod pickle;
pub mod postprocess;
pub mod preprocess;
pub mod runtime;
pub mod synthetic;
pub mod yolo;

use std::path::PathBuf;

pub use checkpoint::Checkpoint;
pub use postprocess::NmsOptions;
pub use preprocess::Letterbox;
pub use runtime::{ModelDevice, PredictOptions, StageTimes, YoloModel};
pub use yolo::{Yolo, YoloTask};

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
}
