//! A tracker plugin that gives each detection the id `index + 1`. Params: `{"mode": M}` with
//! `ok` (default), `error`, `panic`, `panic_in_reset`, `nan` (adds an object with a NaN
//! score).

use pitchside_plugin::sdk::{TrackerPlugin, tracker_info};
use pitchside_plugin::serde_json::Value;
use pitchside_plugin::{Detection, PluginError, PluginInfo, TrackedObject, Tracker};

pub struct Echo {
    mode: String,
    resets: u64,
}

impl Tracker for Echo {
    fn info(&self) -> PluginInfo {
        tracker_info::<Self>()
    }

    fn update(
        &mut self,
        frame_number: u64,
        detections: &[Detection],
    ) -> Result<Vec<TrackedObject>, PluginError> {
        match self.mode.as_str() {
            "error" => {
                return Err(PluginError::Failed(format!(
                    "no tracks on frame {frame_number}"
                )));
            }
            "panic" => panic!("tracker panicked on frame {frame_number}"),
            _ => {}
        }
        let mut objects: Vec<TrackedObject> = detections
            .iter()
            .enumerate()
            .map(|(i, d)| TrackedObject {
                // Keypoint counts make it back, so the host's flattening is checked too.
                id: i as u64 + 1 + 1000 * self.resets + 100 * d.keypoints.len() as u64,
                bbox: d.bbox,
                score: d.score,
                class_id: d.class_id,
            })
            .collect();
        if self.mode == "nan" {
            objects.push(TrackedObject {
                id: 99,
                bbox: [0.0, 0.0, 1.0, 1.0],
                score: f32::NAN,
                class_id: 0,
            });
        }
        Ok(objects)
    }

    fn reset(&mut self) {
        if self.mode == "panic_in_reset" {
            panic!("reset refused");
        }
        self.resets += 1;
    }
}

impl TrackerPlugin for Echo {
    const NAME: &'static str = "echo-tracker";
    const VERSION: &'static str = "0.0.1";

    fn from_params(params: &Value) -> Result<Self, PluginError> {
        Ok(Echo {
            mode: params
                .get("mode")
                .and_then(Value::as_str)
                .unwrap_or("ok")
                .to_owned(),
            resets: 0,
        })
    }
}

pitchside_plugin::export_tracker!(Echo);
