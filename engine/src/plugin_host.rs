//! The plugin host: turns a deployment's detector and tracker entries into `dyn Detector`
//! and `dyn Tracker`. Built-in plugins and shared libraries come out the same.

use std::sync::{Arc, Mutex};

use pitchside_models::{NmsOptions, PredictOptions, StageTimes};
use pitchside_plugin::{Detector, PluginInfo, PluginKind, Tracker};
use pitchside_yolo::YoloDetector;

use crate::config::{Deployment, EffectiveConfig, PluginRef, Role};
use crate::device::Backend;

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
    /// Stage timings of built-in YOLO detectors (shared with the detector).
    pub yolo_times: Option<Arc<Mutex<StageTimes>>>,
}

/// Forwards to a `YoloDetector` and publishes its stage times.
struct TimedYolo {
    inner: YoloDetector,
    times: Arc<Mutex<StageTimes>>,
}

impl Detector for TimedYolo {
    fn info(&self) -> PluginInfo {
        self.inner.info()
    }
    fn num_keypoints(&self) -> usize {
        self.inner.num_keypoints()
    }
    fn detect(
        &mut self,
        frames: &[pitchside_plugin::FrameRef<'_>],
    ) -> Result<Vec<Vec<pitchside_plugin::Detection>>, pitchside_plugin::PluginError> {
        // The detector's own times are cumulative; the shared ones are what the pipeline
        // has not yet reported (it resets them after each run), so add this call's.
        self.inner.times = Default::default();
        let r = self.inner.detect(frames);
        *self.times.lock().unwrap_or_else(|e| e.into_inner()) += self.inner.times;
        r
    }
}

/// Creates the deployment's detectors on `backend`.
pub fn build_detectors(
    deployment: &Deployment,
    effective: &EffectiveConfig,
    backend: Backend,
) -> Result<Vec<DetectorSlot>, HostError> {
    let mut out = Vec::new();
    for d in &effective.pipeline.detectors {
        let err = |message: String| HostError::Detector {
            role: d.role,
            message,
        };
        if let Some(lib) = &d.library {
            let path = deployment.resolve_path(lib);
            let detector = pitchside_plugin::host::load_detector(&path, &d.params)
                .map_err(|e| err(e.to_string()))?;
            out.push(DetectorSlot {
                role: d.role,
                detector,
                yolo_times: None,
            });
            continue;
        }
        let model_role = d.model.unwrap_or(d.role);
        let model = effective
            .models
            .get(&model_role)
            .ok_or_else(|| err(format!("model `{model_role}` is not configured")))?;
        let p = &effective.profile;
        let opts = PredictOptions {
            imgsz: model.imgsz,
            nms: NmsOptions {
                conf: p.conf_threshold,
                iou: p.iou_threshold,
                max_det: p.max_detections as usize,
                agnostic: p.agnostic_nms,
            },
            rect: true,
        };
        let device = crate::model_device(backend, p.half);
        let yolo = YoloDetector::load(&model.path, device, opts, model.class_map.clone())
            .map_err(|e| err(e.to_string()))?;
        if model_role == Role::Pitch && yolo.num_keypoints() == 0 {
            return Err(err(format!(
                "{} is not a pose model: the pitch role needs keypoints",
                model.path.display()
            )));
        }
        let times = Arc::new(Mutex::new(StageTimes::default()));
        out.push(DetectorSlot {
            role: d.role,
            detector: Box::new(TimedYolo {
                inner: yolo,
                times: times.clone(),
            }),
            yolo_times: Some(times),
        });
    }
    Ok(out)
}

/// Creates a tracker for one video; `frame_rate` is the rate of processed frames.
pub fn build_tracker(
    deployment: &Deployment,
    r: &PluginRef,
    frame_rate: f64,
) -> Result<Box<dyn Tracker>, HostError> {
    let what = r
        .plugin
        .clone()
        .or_else(|| r.library.as_ref().map(|l| l.display().to_string()))
        .unwrap_or_default();
    let err = |message: String| HostError::Tracker {
        what: format!("tracker {what}"),
        message,
    };
    if let Some(lib) = &r.library {
        return pitchside_plugin::host::load_tracker(deployment.resolve_path(lib), &r.params)
            .map_err(|e| err(e.to_string()));
    }
    match r.plugin.as_deref() {
        Some("bytetrack") => {
            let mut params = match &r.params {
                serde_json::Value::Null => serde_json::json!({}),
                p => p.clone(),
            };
            // The video decides the frame rate unless the deployment pins it.
            if let Some(obj) = params.as_object_mut()
                && !obj.contains_key("frame_rate")
            {
                obj.insert("frame_rate".into(), serde_json::json!(frame_rate));
            }
            let t = pitchside_bytetrack::ByteTrack::from_json(&params)
                .map_err(|e| err(e.to_string()))?;
            Ok(Box::new(t))
        }
        other => Err(err(format!("unknown tracker plugin {other:?}"))),
    }
}

/// A row of `pitchside plugins list`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginListing {
    pub source: String,
    pub info: PluginInfo,
    pub abi_version: Option<u32>,
}

/// Built-in plugins, then the libraries a deployment names.
pub fn list_plugins(deployment: Option<&Deployment>) -> Vec<Result<PluginListing, String>> {
    let mut out = vec![
        Ok(PluginListing {
            source: "built-in".into(),
            info: PluginInfo {
                name: "yolo".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                kind: PluginKind::Detector,
            },
            abi_version: None,
        }),
        Ok(PluginListing {
            source: "built-in".into(),
            info: PluginInfo {
                name: "bytetrack".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                kind: PluginKind::Tracker,
            },
            abi_version: None,
        }),
    ];
    if let Some(d) = deployment {
        let p = &d.file.pipeline;
        let libs = p
            .detectors
            .iter()
            .filter_map(|d| d.library.clone())
            .chain(p.tracker.library.clone())
            .chain(p.ball_tracker.as_ref().and_then(|t| t.library.clone()));
        for lib in libs {
            let path = d.resolve_path(&lib);
            out.push(
                pitchside_plugin::host::inspect(&path)
                    .map(|desc| PluginListing {
                        source: path.display().to_string(),
                        info: desc.info,
                        abi_version: Some(desc.abi_version),
                    })
                    .map_err(|e| e.to_string()),
            );
        }
    }
    out
}
