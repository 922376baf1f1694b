//! The built-in plugins: one table of name, kind, description and constructor, which the
//! configuration checks names against, the plugin host builds from, and
//! `pitchside plugins list` prints. A new built-in plugin is one entry here.
//!
//! Constructors take what the deployment gives the plugin besides its `params:` (a
//! context) and the `params:` themselves, the way shared-library plugins get theirs.
//! This module depends on no other engine module, so that the configuration can use it.

use std::fmt;

use pitchside_models::detector::{ModelSpec, YoloDetector};
use pitchside_models::{Letterbox, ModelDevice, PredictOptions};
use pitchside_plugin::{
    Detection, Detector, FrameRef, PluginError, PluginInfo, PluginKind, Tracker,
};

/// What the deployment gives a built-in detector besides its `params:`.
#[derive(Debug, Clone)]
pub struct DetectorContext {
    /// The `models:` entry the detector runs (`None` for a detector that needs none).
    pub model: Option<ModelSpec>,
    /// The profile's inference settings for that model.
    pub predict: PredictOptions,
    pub device: ModelDevice,
}

/// What the video gives a built-in tracker besides its `params:`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerContext {
    /// Frames per second of the processed frames (the video's rate / frame stride).
    pub frame_rate: f64,
}

pub type DetectorConstructor =
    fn(&DetectorContext, &serde_json::Value) -> Result<Box<dyn Detector>, PluginError>;
pub type TrackerConstructor =
    fn(&TrackerContext, &serde_json::Value) -> Result<Box<dyn Tracker>, PluginError>;

/// A built-in plugin of one kind; `C` is its kind's constructor type.
#[derive(Clone, Copy)]
pub struct BuiltinPlugin<C> {
    /// What `plugin:` names in a deployment.
    pub name: &'static str,
    pub description: &'static str,
    pub build: C,
    /// Detectors: whether it runs a `models:` entry (the deployment must have one).
    pub needs_model: bool,
}

pub type BuiltinDetector = BuiltinPlugin<DetectorConstructor>;
pub type BuiltinTracker = BuiltinPlugin<TrackerConstructor>;

impl<C> fmt::Debug for BuiltinPlugin<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BuiltinPlugin({})", self.name)
    }
}

/// Names are unique in the table, so a name is the plugin.
impl<C> PartialEq for BuiltinPlugin<C> {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// One row of the table.
#[derive(Debug)]
pub enum Builtin {
    Detector(BuiltinDetector),
    Tracker(BuiltinTracker),
}

impl Builtin {
    pub fn name(&self) -> &'static str {
        match self {
            Builtin::Detector(p) => p.name,
            Builtin::Tracker(p) => p.name,
        }
    }

    pub fn kind(&self) -> PluginKind {
        match self {
            Builtin::Detector(_) => PluginKind::Detector,
            Builtin::Tracker(_) => PluginKind::Tracker,
        }
    }

    pub fn description(&self) -> &'static str {
        match self {
            Builtin::Detector(p) => p.description,
            Builtin::Tracker(p) => p.description,
        }
    }
}

/// Every built-in plugin.
pub static BUILTINS: &[Builtin] = &[
    Builtin::Detector(BuiltinPlugin {
        name: "yolo",
        description: "ultralytics YOLO checkpoint (detect, pose) from `models:`; params: conf_threshold, iou_threshold, max_detections, agnostic_nms",
        build: build_yolo,
        needs_model: true,
    }),
    Builtin::Detector(BuiltinPlugin {
        name: "null",
        description: "no model: one box per frame, at once, for benchmarks of decoding and the pipeline; asks for frames at the letterbox size of the profile's imgsz; params: class_id (default 2), box (x1, y1, x2, y2 as fractions of the frame)",
        build: build_null,
        needs_model: false,
    }),
    Builtin::Tracker(BuiltinPlugin {
        name: "bytetrack",
        description: "ByteTrack as supervision's sv.ByteTrack; frame_rate defaults to the processed-frame rate",
        build: build_bytetrack,
        needs_model: false,
    }),
];

/// The built-in detector called `name`.
pub fn detector(name: &str) -> Option<&'static BuiltinDetector> {
    BUILTINS.iter().find_map(|b| match b {
        Builtin::Detector(p) if p.name == name => Some(p),
        _ => None,
    })
}

/// The built-in tracker called `name`.
pub fn tracker(name: &str) -> Option<&'static BuiltinTracker> {
    BUILTINS.iter().find_map(|b| match b {
        Builtin::Tracker(p) if p.name == name => Some(p),
        _ => None,
    })
}

/// The names of the built-in plugins of one kind, for error messages.
pub fn names(kind: PluginKind) -> Vec<&'static str> {
    BUILTINS
        .iter()
        .filter(|b| b.kind() == kind)
        .map(Builtin::name)
        .collect()
}

fn build_yolo(
    ctx: &DetectorContext,
    params: &serde_json::Value,
) -> Result<Box<dyn Detector>, PluginError> {
    let model = ctx
        .model
        .as_ref()
        .ok_or_else(|| PluginError::InvalidParams("the yolo detector needs a model".into()))?;
    let d = YoloDetector::from_params(model, ctx.predict, params, ctx.device)?;
    Ok(Box::new(d))
}

/// The `null` detector's `params:`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct NullParams {
    class_id: u32,
    /// `[x1, y1, x2, y2]` as fractions of the frame's width and height.
    r#box: [f32; 4],
}

impl Default for NullParams {
    fn default() -> Self {
        NullParams {
            class_id: 2,
            r#box: [0.25, 0.25, 0.75, 0.75],
        }
    }
}

/// Answers at once with one box per frame and reads no pixel: what is left of a run is
/// decoding, conversion, tracking and assembly. It asks for frames at the size a YOLO model
/// of the profile's `imgsz` would letterbox them to, so that the conversion costs what it
/// costs in production.
struct NullDetector {
    params: NullParams,
    imgsz: u32,
}

impl Detector for NullDetector {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "null".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Detector,
        }
    }

    fn input_size(&self, src_width: u32, src_height: u32) -> Option<(u32, u32)> {
        let lb = Letterbox::yolo(src_width, src_height, self.imgsz, true);
        Some((lb.new_w, lb.new_h))
    }

    fn detect(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Vec<Detection>>, PluginError> {
        let [x1, y1, x2, y2] = self.params.r#box;
        Ok(frames
            .iter()
            .map(|f| {
                let (w, h) = (f.width as f32, f.height as f32);
                vec![Detection {
                    bbox: [x1 * w, y1 * h, x2 * w, y2 * h],
                    score: 0.9,
                    class_id: self.params.class_id,
                    keypoints: Vec::new(),
                }]
            })
            .collect())
    }
}

fn build_null(
    ctx: &DetectorContext,
    params: &serde_json::Value,
) -> Result<Box<dyn Detector>, PluginError> {
    let params: NullParams = match params {
        serde_json::Value::Null => NullParams::default(),
        p => serde_json::from_value(p.clone())
            .map_err(|e| PluginError::InvalidParams(format!("null detector: {e}")))?,
    };
    let [x1, y1, x2, y2] = params.r#box;
    let unit = |v: f32| (0.0..=1.0).contains(&v);
    if !(unit(x1) && unit(y1) && unit(x2) && unit(y2) && x1 < x2 && y1 < y2) {
        return Err(PluginError::InvalidParams(format!(
            "null detector: box {:?} must be x1 < x2 and y1 < y2 within [0, 1]",
            params.r#box
        )));
    }
    Ok(Box::new(NullDetector {
        params,
        imgsz: ctx.predict.imgsz,
    }))
}

fn build_bytetrack(
    ctx: &TrackerContext,
    params: &serde_json::Value,
) -> Result<Box<dyn Tracker>, PluginError> {
    let t = pitchside_bytetrack::ByteTrack::new(bytetrack_params(ctx, params)?)?;
    Ok(Box::new(t))
}

/// ByteTrack's parameters for a video. `frame_rate` scales how long a lost track is kept;
/// unless `params:` pin it, it is the processed-frame rate, so that `lost_track_buffer`
/// means the same time at any video rate and stride. That is a deliberate deviation from
/// the Python miner, whose `sv.ByteTrack()` assumes 30 whatever the video: a deployment
/// that must match the miner pins `frame_rate: 30` (configs/score-vision.yaml does).
pub fn bytetrack_params(
    ctx: &TrackerContext,
    params: &serde_json::Value,
) -> Result<pitchside_bytetrack::ByteTrackParams, PluginError> {
    let mut params = match params {
        serde_json::Value::Null => serde_json::json!({}),
        p => p.clone(),
    };
    if let Some(obj) = params.as_object_mut()
        && !obj.contains_key("frame_rate")
    {
        obj.insert("frame_rate".into(), serde_json::json!(ctx.frame_rate));
    }
    serde_json::from_value(params)
        .map_err(|e| PluginError::InvalidParams(format!("invalid ByteTrack parameters: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found_by_kind() {
        let mut all: Vec<_> = BUILTINS.iter().map(Builtin::name).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), BUILTINS.len());
        assert_eq!(names(PluginKind::Detector), vec!["yolo", "null"]);
        assert_eq!(names(PluginKind::Tracker), vec!["bytetrack"]);
        assert_eq!(detector("yolo").unwrap().name, "yolo");
        // A name of the other kind is not found.
        assert!(detector("bytetrack").is_none());
        assert!(tracker("yolo").is_none());
        assert!(tracker("sort").is_none());
    }

    #[test]
    fn bytetrack_frame_rate_follows_the_video_unless_pinned() {
        let ctx = TrackerContext { frame_rate: 12.5 };
        let p = bytetrack_params(&ctx, &serde_json::Value::Null).unwrap();
        assert_eq!(p.frame_rate, 12.5);
        assert_eq!(p.lost_track_buffer, 30);
        let p = bytetrack_params(
            &ctx,
            &serde_json::json!({"frame_rate": 30, "lost_track_buffer": 60}),
        )
        .unwrap();
        assert_eq!((p.frame_rate, p.lost_track_buffer), (30.0, 60));
        let err = bytetrack_params(&ctx, &serde_json::json!({"buffer": 1})).unwrap_err();
        assert!(err.to_string().contains("unknown field `buffer`"), "{err}");
    }

    fn null_ctx() -> DetectorContext {
        DetectorContext {
            model: None,
            predict: PredictOptions {
                imgsz: 640,
                ..Default::default()
            },
            device: ModelDevice::Cpu,
        }
    }

    #[test]
    fn the_null_detector_gives_one_box_per_frame_at_the_letterbox_size() {
        let null = detector("null").unwrap();
        assert!(!null.needs_model && detector("yolo").unwrap().needs_model);
        let mut d = (null.build)(&null_ctx(), &serde_json::Value::Null).unwrap();
        assert_eq!(d.input_size(1920, 1080), Some((640, 360)));
        assert_eq!(d.input_size(768, 576), Some((640, 480)));
        let data = vec![0u8; 640 * 360 * 3];
        let frame = FrameRef {
            data: &data,
            width: 640,
            height: 360,
            row_stride: 640 * 3,
            format: pitchside_plugin::PixelFormat::Bgr8,
            frame_number: 4,
        };
        let out = d.detect(&[frame, frame]).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), 1);
        assert_eq!(out[0][0].bbox, [160.0, 90.0, 480.0, 270.0]);
        assert_eq!(out[0][0].class_id, 2);
    }

    #[test]
    fn the_null_detector_checks_its_params() {
        let build = detector("null").unwrap().build;
        let err = build(
            &null_ctx(),
            &serde_json::json!({"box": [0.5, 0.0, 0.4, 1.0]}),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("x1 < x2"), "{err}");
        let err = build(&null_ctx(), &serde_json::json!({"boxes": 1}))
            .err()
            .unwrap();
        assert!(err.to_string().contains("unknown field `boxes`"), "{err}");
        let d = build(&null_ctx(), &serde_json::json!({"class_id": 0})).unwrap();
        assert_eq!(d.info().name, "null");
    }

    #[test]
    fn bytetrack_validates_its_params() {
        let ctx = TrackerContext { frame_rate: 25.0 };
        let build = tracker("bytetrack").unwrap().build;
        let err = build(
            &ctx,
            &serde_json::json!({"track_activation_threshold": 2.0}),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("within [0, 1]"), "{err}");
        let t = build(&ctx, &serde_json::Value::Null).unwrap();
        assert_eq!(t.info().name, "bytetrack");
    }
}
