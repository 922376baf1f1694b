//! A detector plugin that misbehaves on request, for the host's failure tests.
//!
//! Params: `{"mode": M, "fail_on_frame": N, "num_keypoints": K}`. Modes:
//! * `ok` (default): one box per frame, the frame's centre half, score 0.9, class 0;
//! * `error_in_create` / `panic_in_create`: fail or panic in the constructor;
//! * `error` / `panic`: fail or panic in `detect` (only on frame `fail_on_frame` if given);
//! * `out_of_frame`: boxes partly outside, wholly outside, inverted, and one inside;
//! * `nan`: a NaN score, an infinite coordinate, a NaN keypoint, and one valid box;
//! * `bad_keypoints`: declares `num_keypoints` but returns one fewer per detection.

use pitchside_plugin::sdk::{DetectorPlugin, detector_info};
use pitchside_plugin::serde_json::Value;
use pitchside_plugin::{Detection, Detector, FrameRef, PluginError, PluginInfo};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    Error,
    Panic,
    OutOfFrame,
    Nan,
    BadKeypoints,
}

pub struct Misbehaving {
    mode: Mode,
    fail_on_frame: Option<u64>,
    num_keypoints: usize,
}

impl Misbehaving {
    fn centre(&self, f: &FrameRef<'_>, keypoints: usize) -> Detection {
        let (w, h) = (f.width as f32, f.height as f32);
        Detection {
            bbox: [w / 4.0, h / 4.0, w * 0.75, h * 0.75],
            score: 0.9,
            class_id: 0,
            keypoints: (0..keypoints)
                .map(|k| [w / 2.0, h / 2.0 + k as f32, 1.0])
                .collect(),
        }
    }

    fn triggered(&self, frame: &FrameRef<'_>) -> bool {
        self.fail_on_frame.is_none_or(|n| n == frame.frame_number)
    }
}

impl Detector for Misbehaving {
    fn info(&self) -> PluginInfo {
        detector_info::<Self>()
    }

    fn num_keypoints(&self) -> usize {
        self.num_keypoints
    }

    fn detect(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Vec<Detection>>, PluginError> {
        let nk = self.num_keypoints;
        let mut lists = Vec::with_capacity(frames.len());
        for f in frames {
            let list = match self.mode {
                Mode::Ok => vec![self.centre(f, nk)],
                Mode::Error if self.triggered(f) => {
                    return Err(PluginError::Failed(format!(
                        "asked to fail on frame {}",
                        f.frame_number
                    )));
                }
                Mode::Panic if self.triggered(f) => {
                    panic!("asked to panic on frame {}", f.frame_number)
                }
                Mode::Error | Mode::Panic => vec![self.centre(f, nk)],
                Mode::OutOfFrame => {
                    let (w, h) = (f.width as f32, f.height as f32);
                    let d = |bbox, score| Detection {
                        bbox,
                        score,
                        class_id: 2,
                        keypoints: vec![[0.0, 0.0, 1.0]; nk],
                    };
                    vec![
                        // Partly outside: clipped to [0, 0, 10, 10].
                        d([-5.0, -5.0, 10.0, 10.0], 0.5),
                        // Wholly outside: empty after clipping.
                        d([w + 1.0, h + 1.0, w + 20.0, h + 20.0], 0.6),
                        // Inverted.
                        d([20.0, 20.0, 10.0, 10.0], 0.7),
                        // Inside, and overlapping the right/bottom edges: clipped to w, h.
                        d([w - 10.0, h - 10.0, w + 10.0, h + 10.0], 0.8),
                        d([1.0, 2.0, 3.0, 4.0], 0.9),
                    ]
                }
                Mode::Nan => {
                    let mut nan_score = self.centre(f, nk);
                    nan_score.score = f32::NAN;
                    let mut inf_box = self.centre(f, nk);
                    inf_box.bbox[2] = f32::INFINITY;
                    let mut list = vec![nan_score, inf_box];
                    if nk > 0 {
                        let mut nan_kp = self.centre(f, nk);
                        nan_kp.keypoints[0][1] = f32::NAN;
                        list.push(nan_kp);
                    }
                    let mut valid = self.centre(f, nk);
                    valid.score = 0.25;
                    list.push(valid);
                    list
                }
                Mode::BadKeypoints => vec![self.centre(f, nk.saturating_sub(1))],
            };
            lists.push(list);
        }
        Ok(lists)
    }
}

impl DetectorPlugin for Misbehaving {
    const NAME: &'static str = "misbehaving-detector";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn from_params(params: &Value) -> Result<Self, PluginError> {
        let mode = params.get("mode").and_then(Value::as_str).unwrap_or("ok");
        let fail_on_frame = params.get("fail_on_frame").and_then(Value::as_u64);
        let num_keypoints = params
            .get("num_keypoints")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        let mode = match mode {
            "ok" => Mode::Ok,
            "error_in_create" => {
                return Err(PluginError::Failed("asked to fail in create".to_owned()));
            }
            "panic_in_create" => panic!("asked to panic in create"),
            "error" => Mode::Error,
            "panic" => Mode::Panic,
            "out_of_frame" => Mode::OutOfFrame,
            "nan" => Mode::Nan,
            "bad_keypoints" => Mode::BadKeypoints,
            other => {
                return Err(PluginError::InvalidParams(format!(
                    "unknown mode `{other}`"
                )));
            }
        };
        Ok(Misbehaving {
            mode,
            fail_on_frame,
            num_keypoints,
        })
    }
}

pitchside_plugin::export_detector!(Misbehaving);
