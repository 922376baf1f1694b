//! The built-in `yolo` detector plugin: an ultralytics checkpoint on Burn, behind the same
//! `Detector` trait that shared-library plugins implement. It lives with the models it runs
//! (this crate sits above the plugin ABI and below the engine), not among `plugins/`, whose
//! crates depend on the ABI alone.
//!
//! The engine builds it from the deployment: the model entry ([`ModelSpec`]: checkpoint,
//! declared task, class map, class names), the profile's inference settings, and the
//! detector's own `params:` ([`YoloParams`]), which override the profile's NMS settings
//! for this detector. Loading checks the deployment against the checkpoint: the declared
//! task and class names must be the checkpoint's.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::{Letterbox, ModelDevice, ModelError, PredictOptions, YoloModel, YoloTask};
use pitchside_plugin::{
    Detection, Detector, FrameRef, PluginError, PluginInfo, PluginKind, StageTimes,
};
use serde::{Deserialize, Serialize};

/// The task a deployment declares for a checkpoint (`task:` in `models:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Detect,
    Pose,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Detect => "detect",
            Task::Pose => "pose",
        }
    }

    fn of(task: YoloTask) -> Task {
        match task {
            YoloTask::Detect => Task::Detect,
            YoloTask::Pose { .. } => Task::Pose,
        }
    }
}

/// A model as the deployment describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Checkpoint path (`.pt`, or `.safetensors` with its `.json` architecture), or an
    /// ultralytics architecture `.yaml` for random weights (benchmarks).
    pub path: PathBuf,
    /// Must be the checkpoint's task.
    pub task: Task,
    /// Model class -> output class; classes missing from the map are dropped.
    pub class_map: Option<BTreeMap<u32, u32>>,
    /// Class names by model class; checked against the checkpoint's names, or taken as the
    /// model's names when the checkpoint carries none.
    pub names: Option<BTreeMap<u32, String>>,
}

/// The detector's `params:`: per-detector overrides of the profile's NMS settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YoloParams {
    pub conf_threshold: Option<f32>,
    pub iou_threshold: Option<f32>,
    pub max_detections: Option<usize>,
    pub agnostic_nms: Option<bool>,
}

impl YoloParams {
    /// From the deployment's `params:` mapping; `null` means none.
    pub fn from_json(value: &serde_json::Value) -> Result<YoloParams, YoloError> {
        if value.is_null() {
            return Ok(YoloParams::default());
        }
        let p = YoloParams::deserialize(value).map_err(|e| YoloError::Params(e.to_string()))?;
        for (name, v) in [
            ("conf_threshold", p.conf_threshold),
            ("iou_threshold", p.iou_threshold),
        ] {
            if let Some(v) = v
                && !(0.0..=1.0).contains(&v)
            {
                return Err(YoloError::Params(format!(
                    "{name} must be within [0, 1], got {v}"
                )));
            }
        }
        if p.max_detections == Some(0) {
            return Err(YoloError::Params(
                "max_detections must be at least 1, got 0".into(),
            ));
        }
        Ok(p)
    }

    /// The profile's settings with these overrides applied.
    pub fn apply(&self, mut opts: PredictOptions) -> PredictOptions {
        if let Some(v) = self.conf_threshold {
            opts.nms.conf = v;
        }
        if let Some(v) = self.iou_threshold {
            opts.nms.iou = v;
        }
        if let Some(v) = self.max_detections {
            opts.nms.max_det = v;
        }
        if let Some(v) = self.agnostic_nms {
            opts.nms.agnostic = v;
        }
        opts
    }
}

#[derive(Debug, thiserror::Error)]
pub enum YoloError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("invalid yolo parameters: {0}")]
    Params(String),
    #[error(
        "{file} is a {found} checkpoint{note}, but the deployment declares `task: {declared}`",
        file = .path.display(),
        found = .found.as_str(),
        declared = .declared.as_str(),
        note = keypoints_note(*.keypoints)
    )]
    TaskMismatch {
        path: PathBuf,
        declared: Task,
        found: Task,
        keypoints: usize,
    },
    #[error(
        "{file}: the deployment names class {class} `{declared}`, but the checkpoint {found}",
        file = .path.display(),
        found = checkpoint_names(.checkpoint, *.num_classes)
    )]
    NamesMismatch {
        path: PathBuf,
        class: u32,
        declared: String,
        checkpoint: Option<String>,
        num_classes: usize,
    },
}

fn keypoints_note(keypoints: usize) -> String {
    if keypoints > 0 {
        format!(" ({keypoints} keypoints)")
    } else {
        String::new()
    }
}

fn checkpoint_names(name: &Option<String>, num_classes: usize) -> String {
    match name {
        Some(n) => format!("calls it `{n}`"),
        None => format!("has only {num_classes} classes"),
    }
}

impl From<YoloError> for PluginError {
    fn from(e: YoloError) -> Self {
        match e {
            YoloError::Params(_) => PluginError::InvalidParams(e.to_string()),
            _ => PluginError::Failed(e.to_string()),
        }
    }
}

/// A YOLO model plus the deployment's settings for it.
pub struct YoloDetector {
    model: YoloModel,
    opts: PredictOptions,
    /// Model class -> output class; `None` keeps model classes.
    class_map: Option<BTreeMap<u32, u32>>,
    /// Stage times of the `detect` calls not yet taken (`take_stage_times`).
    times: StageTimes,
}

impl YoloDetector {
    /// Loads the checkpoint on `device` and checks it against the deployment's description.
    pub fn load(
        spec: &ModelSpec,
        opts: PredictOptions,
        device: ModelDevice,
    ) -> Result<YoloDetector, YoloError> {
        let mut model = YoloModel::load(&spec.path, device)?;
        check_task(spec, &model)?;
        if let Some(names) = &spec.names {
            check_names(spec, names, &model)?;
            if model.names.is_empty() {
                model.names = names.clone();
            }
        }
        Ok(YoloDetector {
            model,
            opts,
            class_map: spec.class_map.clone(),
            times: StageTimes::default(),
        })
    }

    /// The built-in plugin's constructor: `defaults` from the profile, `params` over them.
    pub fn from_params(
        spec: &ModelSpec,
        defaults: PredictOptions,
        params: &serde_json::Value,
        device: ModelDevice,
    ) -> Result<YoloDetector, YoloError> {
        let params = YoloParams::from_json(params)?;
        Self::load(spec, params.apply(defaults), device)
    }

    pub fn model(&self) -> &YoloModel {
        &self.model
    }

    pub fn options(&self) -> &PredictOptions {
        &self.opts
    }
}

fn check_task(spec: &ModelSpec, model: &YoloModel) -> Result<(), YoloError> {
    let found = Task::of(model.task);
    if found != spec.task {
        return Err(YoloError::TaskMismatch {
            path: spec.path.clone(),
            declared: spec.task,
            found,
            keypoints: model.num_keypoints(),
        });
    }
    Ok(())
}

/// Declared names must be the checkpoint's (ignoring case and surrounding blanks); with a
/// checkpoint that has no names, only the class ids are checked.
fn check_names(
    spec: &ModelSpec,
    names: &BTreeMap<u32, String>,
    model: &YoloModel,
) -> Result<(), YoloError> {
    for (&class, declared) in names {
        let checkpoint = model.names.get(&class);
        let in_range = (class as usize) < model.num_classes;
        let same = match checkpoint {
            Some(n) => n.trim().eq_ignore_ascii_case(declared.trim()),
            None => model.names.is_empty() && in_range,
        };
        if !same {
            return Err(YoloError::NamesMismatch {
                path: spec.path.clone(),
                class,
                declared: declared.clone(),
                checkpoint: checkpoint.cloned(),
                num_classes: model.num_classes,
            });
        }
    }
    Ok(())
}

/// Applies a class map: mapped classes take their new id, unmapped ones are dropped.
pub fn apply_class_map(dets: &mut Vec<Detection>, map: &BTreeMap<u32, u32>) {
    dets.retain_mut(|d| match map.get(&d.class_id) {
        Some(&to) => {
            d.class_id = to;
            true
        }
        None => false,
    });
}

impl Detector for YoloDetector {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "yolo".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Detector,
        }
    }

    fn num_keypoints(&self) -> usize {
        self.model.num_keypoints()
    }

    /// The letterbox's inner size: a frame already at that size is only padded, not
    /// resized again, and its detections scale back to the source by the same gains.
    fn input_size(&self, src_width: u32, src_height: u32) -> Option<(u32, u32)> {
        let lb = Letterbox::yolo(src_width, src_height, self.opts.imgsz, self.opts.rect);
        Some((lb.new_w, lb.new_h))
    }

    /// The letterboxed, padded network input.
    fn network_input(&self, src_width: u32, src_height: u32) -> Option<(u32, u32)> {
        let lb = Letterbox::yolo(src_width, src_height, self.opts.imgsz, self.opts.rect);
        Some((lb.out_w(), lb.out_h()))
    }

    fn detect(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Vec<Detection>>, PluginError> {
        let (mut out, t) = self
            .model
            .predict(frames, &self.opts)
            .map_err(|e| PluginError::Failed(e.to_string()))?;
        self.times += t;
        if let Some(map) = &self.class_map {
            for dets in &mut out {
                apply_class_map(dets, map);
            }
        }
        Ok(out)
    }

    fn take_stage_times(&mut self) -> Option<StageTimes> {
        Some(std::mem::take(&mut self.times))
    }
}

#[cfg(test)]
mod tests;
