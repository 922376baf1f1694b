//! The plugin host: turns a deployment's detector and tracker entries into `dyn Detector`
//! and `dyn Tracker`. Built-in plugins (the [`registry`](crate::registry)) and shared
//! libraries come out the same, each built from its context and `params:`.

use std::fmt::Write as _;

use pitchside_models::{NmsOptions, PredictOptions};
use pitchside_plugin::{Detector, PluginInfo, Tracker};

use crate::config::{Deployment, DeviceId, EffectiveConfig, PluginSource, Role, TrackerConfig};
use crate::device::Backend;
use crate::registry::{self, DetectorContext, TrackerContext};

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("detector for role {role}: {message}")]
    Detector { role: Role, message: String },
    #[error("{what}: {message}")]
    Tracker { what: String, message: String },
}

/// A detector of the pipeline, with the role its output fills.
pub struct DetectorSlot {
    pub role: Role,
    pub detector: Box<dyn Detector>,
}

/// Creates the deployment's detectors on `backend` (its first device).
pub fn build_detectors(
    deployment: &Deployment,
    effective: &EffectiveConfig,
    backend: Backend,
) -> Result<Vec<DetectorSlot>, HostError> {
    build_detectors_on(deployment, effective, DeviceId::new(backend, 0))
}

/// Creates the deployment's detectors on one device (`cuda:1`).
pub fn build_detectors_on(
    deployment: &Deployment,
    effective: &EffectiveConfig,
    device: DeviceId,
) -> Result<Vec<DetectorSlot>, HostError> {
    let mut out = Vec::new();
    for d in &effective.pipeline.detectors {
        let err = |message: String| HostError::Detector {
            role: d.role,
            message,
        };
        let detector = match &d.source {
            PluginSource::Library(lib) => {
                let path = deployment.resolve_path(lib);
                pitchside_plugin::host::load_detector(&path, &d.params)
                    .map_err(|e| err(e.to_string()))?
            }
            PluginSource::Builtin(builtin) => {
                let model_role = d.model_role();
                let model = effective.models.get(&model_role);
                if builtin.needs_model && model.is_none() {
                    return Err(err(format!("model `{model_role}` is not configured")));
                }
                let p = &effective.profile;
                let ctx = DetectorContext {
                    model: model.map(|m| m.spec()),
                    predict: PredictOptions {
                        imgsz: model.map_or(p.imgsz.get(d.role).get(), |m| m.imgsz.get()),
                        nms: NmsOptions {
                            conf: p.conf_threshold,
                            iou: p.iou_threshold,
                            max_det: p.max_detections as usize,
                            agnostic: p.agnostic_nms,
                        },
                        rect: true,
                    },
                    device: device.model_device(p.half),
                };
                let detector = (builtin.build)(&ctx, &d.params).map_err(|e| match model {
                    Some(_) => err(format!("model `{model_role}`: {e}")),
                    None => err(e.to_string()),
                })?;
                if d.role == Role::Pitch && detector.num_keypoints() == 0 {
                    return Err(err(match model {
                        Some(m) => format!(
                            "model `{model_role}` ({}) has no keypoints: the pitch role needs a pose model",
                            m.path.display()
                        ),
                        None => format!(
                            "the {} detector has no keypoints: the pitch role needs a pose model",
                            builtin.name
                        ),
                    }));
                }
                detector
            }
        };
        out.push(DetectorSlot {
            role: d.role,
            detector,
        });
    }
    Ok(out)
}

/// Creates a tracker for one video; `frame_rate` is the rate of processed frames.
pub fn build_tracker(
    deployment: &Deployment,
    t: &TrackerConfig,
    frame_rate: f64,
) -> Result<Box<dyn Tracker>, HostError> {
    let err = |message: String| HostError::Tracker {
        what: format!("tracker {}", t.source.describe()),
        message,
    };
    match &t.source {
        PluginSource::Library(lib) => {
            pitchside_plugin::host::load_tracker(deployment.resolve_path(lib), &t.params)
                .map_err(|e| err(e.to_string()))
        }
        PluginSource::Builtin(builtin) => {
            (builtin.build)(&TrackerContext { frame_rate }, &t.params)
                .map_err(|e| err(e.to_string()))
        }
    }
}

/// A row of `pitchside plugins list`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginListing {
    /// `built-in`, or the library's path.
    pub source: String,
    pub info: PluginInfo,
    pub abi_version: Option<u32>,
    /// What a built-in plugin is (libraries describe themselves by name only).
    pub description: Option<&'static str>,
}

/// Built-in plugins, then the libraries a deployment names.
pub fn list_plugins(deployment: Option<&Deployment>) -> Vec<Result<PluginListing, String>> {
    let mut out: Vec<_> = registry::BUILTINS
        .iter()
        .map(|b| {
            Ok(PluginListing {
                source: "built-in".into(),
                info: PluginInfo {
                    name: b.name().into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    kind: b.kind(),
                },
                abi_version: None,
                description: Some(b.description()),
            })
        })
        .collect();
    if let Some(d) = deployment {
        for (lib, _) in d.file.pipeline.libraries() {
            let path = d.resolve_path(lib);
            out.push(
                pitchside_plugin::host::inspect(&path)
                    .map(|desc| PluginListing {
                        source: path.display().to_string(),
                        info: desc.info,
                        abi_version: Some(desc.abi_version),
                        description: None,
                    })
                    .map_err(|e| e.to_string()),
            );
        }
    }
    out
}

/// The text of `pitchside plugins list`: one row per plugin of [`list_plugins`].
pub fn plugins_table(deployment: Option<&Deployment>) -> String {
    let mut s = format!(
        "{:<10} {:<12} {:<9} {:<4} source\n",
        "kind", "name", "version", "abi"
    );
    for row in list_plugins(deployment) {
        // Writing to a String cannot fail.
        let _ = match row {
            Ok(p) => writeln!(
                s,
                "{:<10} {:<12} {:<9} {:<4} {}{}",
                p.info.kind.to_string(),
                p.info.name,
                p.info.version,
                p.abi_version
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into()),
                p.source,
                p.description.map(|d| format!(": {d}")).unwrap_or_default()
            ),
            Err(e) => writeln!(s, "error: {e}"),
        };
    }
    s
}

#[cfg(test)]
mod tests;
