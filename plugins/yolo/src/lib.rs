//! The built-in `yolo` detector plugin: an ultralytics checkpoint on Burn, behind the same
//! `Detector` trait that shared-library plugins implement.

use std::collections::BTreeMap;
use std::path::Path;

use pitchside_models::{ModelDevice, ModelError, PredictOptions, StageTimes, YoloModel};
use pitchside_plugin::{Detection, Detector, FrameRef, PluginError, PluginInfo, PluginKind};

pub use pitchside_models;

/// A YOLO model plus the deployment's settings for it.
pub struct YoloDetector {
    model: YoloModel,
    opts: PredictOptions,
    /// Model class -> output class; `None` keeps model classes.
    class_map: Option<BTreeMap<u32, u32>>,
    /// Accumulated stage times, for `pitchside bench`.
    pub times: StageTimes,
}

impl YoloDetector {
    pub fn load(
        path: &Path,
        device: ModelDevice,
        opts: PredictOptions,
        class_map: Option<BTreeMap<u32, u32>>,
    ) -> Result<YoloDetector, ModelError> {
        let model = YoloModel::load(path, device)?;
        Ok(YoloDetector {
            model,
            opts,
            class_map,
            times: StageTimes::default(),
        })
    }

    pub fn model(&self) -> &YoloModel {
        &self.model
    }

    pub fn options(&self) -> &PredictOptions {
        &self.opts
    }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_map_renames_and_drops() {
        let d = |c| Detection {
            bbox: [0.0; 4],
            score: 0.5,
            class_id: c,
            keypoints: vec![],
        };
        let mut dets = vec![d(0), d(2), d(5)];
        apply_class_map(&mut dets, &BTreeMap::from([(2, 2), (5, 0)]));
        assert_eq!(
            dets.iter().map(|d| d.class_id).collect::<Vec<_>>(),
            vec![2, 0]
        );
    }
}
