//! The `models:` section: which checkpoint fills which role.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::image_size::{ImageSize, ImageSizeError};

/// The task a model is declared to do; loading checks it against the checkpoint.
pub use pitchside_models::detector::Task;

/// Model roles a deployment can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Players, goalkeepers, referees (and the ball, when no ball model is given).
    Players,
    /// Pitch keypoints (a pose model).
    Pitch,
    /// A dedicated ball detector.
    Ball,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Players, Role::Pitch, Role::Ball];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Players => "players",
            Role::Pitch => "pitch",
            Role::Ball => "ball",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One model of the deployment. `S` is the type of its pinned size: `u32` as the YAML
/// parser reads it, [`ImageSize`] once checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig<S = ImageSize> {
    /// Checkpoint path (`.pt` or `.safetensors`), relative to the YAML file.
    pub path: PathBuf,
    pub task: Task,
    /// Class names, by model class index: they must be the checkpoint's (case aside),
    /// which guards class ids passed straight to the output; they name the classes of a
    /// checkpoint that carries no names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<BTreeMap<u32, String>>,
    /// Pins the inference size for this model; otherwise the profile's size for its role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imgsz: Option<S>,
    /// Model class → output class id (0 ball, 1 goalkeeper, 2 player, 3 referee).
    /// Classes missing from a given map are dropped; no map keeps ids as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_map: Option<BTreeMap<u32, u32>>,
}

impl ModelConfig<u32> {
    /// Checks the pinned size.
    pub fn checked(self) -> Result<ModelConfig, ImageSizeError> {
        Ok(ModelConfig {
            imgsz: self.imgsz.map(ImageSize::new).transpose()?,
            path: self.path,
            task: self.task,
            names: self.names,
            class_map: self.class_map,
        })
    }
}

/// A model as the pipeline will run it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectiveModel {
    pub path: PathBuf,
    pub task: Task,
    pub imgsz: ImageSize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names: Option<BTreeMap<u32, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_map: Option<BTreeMap<u32, u32>>,
}

impl EffectiveModel {
    /// What the YOLO detector needs to know about it.
    pub fn spec(&self) -> pitchside_models::detector::ModelSpec {
        pitchside_models::detector::ModelSpec {
            path: self.path.clone(),
            task: self.task,
            class_map: self.class_map.clone(),
            names: self.names.clone(),
        }
    }
}
