//! The Score Vision response: what `pitchside run` prints, what the miner service answers
//! and what the annotator draws.
//!
//! One entry per source frame; box corners and keypoints in source pixels, rounded to 2
//! decimals as the Python miner does; `processing_time` in seconds, to 3 decimals. Unseen or
//! low-confidence keypoints are `[0, 0]`, so every frame has the same number of them.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// Keypoints below this confidence are reported as `[0, 0]`, as the miner does.
pub const KEYPOINT_MIN_CONF: f32 = 0.5;
/// Keypoints per frame when no pitch model is configured (the Score Vision model's count).
pub const DEFAULT_KEYPOINTS: usize = 32;
/// Class id of the ball.
pub const BALL_CLASS: u32 = 0;

/// The challenge id, echoed as it was given: validators send a string or a number.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ChallengeId {
    Text(String),
    Number(serde_json::Number),
}

impl From<String> for ChallengeId {
    fn from(s: String) -> ChallengeId {
        ChallengeId::Text(s)
    }
}

impl From<&str> for ChallengeId {
    fn from(s: &str) -> ChallengeId {
        ChallengeId::Text(s.to_owned())
    }
}

impl fmt::Display for ChallengeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChallengeId::Text(s) => f.write_str(s),
            ChallengeId::Number(n) => write!(f, "{n}"),
        }
    }
}

impl PartialEq<&str> for ChallengeId {
    fn eq(&self, other: &&str) -> bool {
        matches!(self, ChallengeId::Text(s) if s == other)
    }
}

/// One tracked object in the response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectResult {
    pub id: u64,
    pub bbox: [f64; 4],
    pub class_id: u32,
}

impl ObjectResult {
    /// An object with its box `[x1, y1, x2, y2]` rounded to 2 decimals.
    pub fn new(id: u64, bbox: [f32; 4], class_id: u32) -> ObjectResult {
        ObjectResult {
            id,
            bbox: bbox.map(round2),
            class_id,
        }
    }
}

/// One source frame in the response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameResult {
    pub frame_number: u64,
    pub keypoints: Vec<[f64; 2]>,
    pub objects: Vec<ObjectResult>,
}

impl FrameResult {
    /// A frame with its keypoints `[x, y]` rounded to 2 decimals.
    pub fn new(
        frame_number: u64,
        keypoints: &[[f32; 2]],
        objects: Vec<ObjectResult>,
    ) -> FrameResult {
        FrameResult {
            frame_number,
            keypoints: keypoints
                .iter()
                .map(|p| [round2(p[0]), round2(p[1])])
                .collect(),
            objects,
        }
    }
}

/// The Score Vision response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    pub challenge_id: ChallengeId,
    pub frames: Vec<FrameResult>,
    /// Seconds, to 3 decimals (see [`processing_time`]).
    pub processing_time: f64,
    /// Present (true) when the result stops before the end of the video.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// Why the result is partial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `processing_time` for a wall time: seconds, rounded to 3 decimals.
pub fn processing_time(wall: Duration) -> f64 {
    (wall.as_secs_f64() * 1000.0).round() / 1000.0
}

/// A coordinate as the response carries it: widened to f64 first, then rounded to 2
/// decimals (rounding in f32 would give values like 12.340000152587891).
fn round2(v: f32) -> f64 {
    (v as f64 * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_in_field_order_with_two_decimals() {
        let r = Response {
            challenge_id: "c-1".into(),
            frames: vec![FrameResult::new(
                0,
                &[[1.234_567, 12.34], [0.0, 0.0]],
                // 10.005_f32 is 10.00500011…: it rounds up, as the miner's float64 would.
                vec![ObjectResult::new(3, [0.123, 10.005, 99.999, 5.5], 2)],
            )],
            processing_time: processing_time(Duration::from_micros(1_234_567)),
            partial: false,
            error: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"challenge_id":"c-1","frames":[{"frame_number":0,"keypoints":[[1.23,12.34],[0.0,0.0]],"objects":[{"id":3,"bbox":[0.12,10.01,100.0,5.5],"class_id":2}]}],"processing_time":1.235}"#
        );
    }

    #[test]
    fn partial_results_say_why_and_numeric_ids_stay_numbers() {
        let r = Response {
            challenge_id: ChallengeId::Number(42.into()),
            frames: Vec::new(),
            processing_time: 0.5,
            partial: true,
            error: Some("cancelled".into()),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"challenge_id":42,"frames":[],"processing_time":0.5,"partial":true,"error":"cancelled"}"#
        );
        assert_eq!(r.challenge_id.to_string(), "42");
        assert_eq!(ChallengeId::from("x"), "x");
    }
}
