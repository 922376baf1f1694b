//! The parts of a Score Vision answer the keypoint score reads, as the validator's Python
//! sees them: the stored form of the answer (`crate::rewrite`), filtered by
//! `evaluate_response` (`validator/evaluation/evaluation.py`).
//!
//! A frame's keypoints remember how long the stored list was and whether it was all
//! `[0.0, 0.0]`, because the validator's behaviour depends on both.

use std::collections::HashMap;

use serde_json::Value;

use crate::ScoreError;
use crate::rewrite::{StoredFrame, StoredObject, optimize_response_data};

/// An error the validator's Python would raise inside `validate_keypoints`, which catches
/// everything and scores the answer 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Raise(pub String);

impl Raise {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// One frame of the answer.
#[derive(Debug, Clone)]
pub struct Frame {
    /// `None` when the frame has no `keypoints` key.
    pub keypoints: Option<Keypoints>,
    /// `frame.get("objects", [])`.
    pub objects: Vec<Object>,
}

/// `np.array(frame["keypoints"]).reshape(-1, 2)` and what the validator reads of the raw list.
#[derive(Debug, Clone)]
pub struct Keypoints {
    /// The `(N, 2)` array, or the reason numpy would fail to build it.
    pub points: Result<Vec<[f64; 2]>, Raise>,
    /// `len(frame["keypoints"])`: the number of entries (pairs, for the usual `[[x, y], ...]`).
    pub raw_len: usize,
    /// `all(p == [0.0, 0.0] for p in keypoints)`: true for an empty list.
    pub all_zero_pairs: bool,
}

/// One object of a frame.
#[derive(Debug, Clone)]
pub struct Object {
    /// `obj.get("class_id")` as a number (`None` when absent or not a number).
    pub class_id: Option<f64>,
    /// `obj["id"]` as a dictionary key (its JSON text), `None` when absent.
    pub id: Option<String>,
    /// `obj["bbox"]`; `None` when absent.
    pub bbox: Option<Vec<f64>>,
}

impl Object {
    /// `obj.get("class_id") == 2`.
    pub fn is_player(&self) -> bool {
        self.class_id == Some(2.0)
    }

    /// The centre of `bbox[0..4]`, as `detect_scene_transitions` and friends compute it.
    pub fn center(&self) -> Result<[f64; 2], Raise> {
        let b = self
            .bbox
            .as_ref()
            .ok_or_else(|| Raise::new("KeyError: 'bbox'"))?;
        if b.len() < 4 {
            return Err(Raise::new("IndexError: bbox has fewer than 4 numbers"));
        }
        Ok([(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0])
    }

    /// `x1, y1, x2, y2 = obj["bbox"]` (exactly four numbers).
    pub fn corners(&self) -> Result<[f64; 4], Raise> {
        let b = self
            .bbox
            .as_ref()
            .ok_or_else(|| Raise::new("KeyError: 'bbox'"))?;
        <[f64; 4]>::try_from(b.as_slice()).map_err(|_| {
            Raise::new(format!(
                "ValueError: bbox of {} numbers unpacked into 4",
                b.len()
            ))
        })
    }

    /// `obj["id"]`.
    pub fn player_id(&self) -> Result<&str, Raise> {
        self.id
            .as_deref()
            .ok_or_else(|| Raise::new("KeyError: 'id'"))
    }
}

/// The frames the keypoint score sees: the answer's frames whose number is in
/// `frames_to_validate`, keyed by `str(k)`, in the order Python's dict keeps them.
#[derive(Debug, Clone, Default)]
pub struct Frames {
    entries: Vec<(String, Result<Frame, Raise>)>,
    index: HashMap<String, usize>,
}

impl Frames {
    /// The frames in insertion order (`frames.items()`); a frame the validator could not
    /// read as a dict carries the error it would raise.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Result<Frame, Raise>)> {
        self.entries.iter().map(|(k, f)| (k.as_str(), f))
    }

    /// `frames[key]`.
    pub fn get(&self, key: &str) -> Option<&Result<Frame, Raise>> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A dict assignment: a repeated key keeps its first position and takes the new value.
    fn insert(&mut self, key: String, frame: Result<Frame, Raise>) {
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = frame,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, frame));
            }
        }
    }
}

/// The frames the keypoint score sees, from the answer as the miner sent it: the stored
/// form (`rewrite::optimize_response_data`), then `evaluate_response`'s
/// `{str(k): v for k, v in frames.items() if int(k) in frames_to_validate}`. Also returns
/// why the stored form is empty when the rewrite dropped the answer's frames.
pub fn parse_answer(
    json: &[u8],
    frames_to_validate: &[i64],
) -> Result<(Frames, Option<String>), ScoreError> {
    let stored = optimize_response_data(json)?;
    let wanted: std::collections::HashSet<i64> = frames_to_validate.iter().copied().collect();
    let mut frames = Frames::default();
    for (key, frame) in &stored.frames {
        // int(k) runs outside validate_keypoints' try block: a key it rejects fails the
        // evaluation of the whole response rather than scoring it 0.
        let n = python_int_str(key).ok_or_else(|| {
            ScoreError::Answer(format!(
                "frame key {key:?} (str of its frame_number): the validator's \
                 evaluate_response raises on int({key:?}) and scores nothing"
            ))
        })?;
        if wanted.contains(&n) {
            frames.insert(key.clone(), stored_frame(frame));
        }
    }
    Ok((frames, stored.dropped))
}

fn stored_frame(f: &StoredFrame) -> Result<Frame, Raise> {
    Ok(Frame {
        keypoints: f.keypoints.as_deref().map(keypoints),
        // frame.get("objects", []): a stored frame without objects has none.
        objects: f
            .objects
            .iter()
            .flatten()
            .map(object)
            .collect::<Result<_, _>>()?,
    })
}

/// `np.array(keypoints).reshape(-1, 2)` of the stored (all-float) keypoints.
fn keypoints(list: &[Vec<f64>]) -> Keypoints {
    let all_zero_pairs = list
        .iter()
        .all(|p| p.len() == 2 && p[0] == 0.0 && p[1] == 0.0);
    // np.array needs every entry of one length (numpy >= 1.24 raises on a ragged list).
    let rectangular = list.windows(2).all(|w| w[0].len() == w[1].len());
    let numbers: Vec<f64> = list.iter().flatten().copied().collect();
    let points = if !rectangular {
        Err(Raise::new(
            "ValueError: keypoints of different lengths (an inhomogeneous array)",
        ))
    } else if !numbers.len().is_multiple_of(2) {
        Err(Raise::new(
            "ValueError: cannot reshape keypoints into (-1, 2)",
        ))
    } else {
        Ok(numbers.chunks(2).map(|c| [c[0], c[1]]).collect())
    };
    Keypoints {
        points,
        raw_len: list.len(),
        all_zero_pairs,
    }
}

fn object(o: &StoredObject) -> Result<Object, Raise> {
    match o {
        StoredObject::Dict { fields, bbox } => Ok(Object {
            class_id: fields.get("class_id").and_then(Value::as_f64),
            id: fields.get("id").map(Value::to_string),
            bbox: bbox.clone(),
        }),
        StoredObject::List(_) => Err(Raise::new(
            "AttributeError: 'list' object has no attribute 'get' (an object is a list)",
        )),
    }
}

/// `int(s)` for a string: surrounding whitespace, a sign, digits with single underscores.
pub(crate) fn python_int_str(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let v: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kp(f: &Frames, key: &str) -> Keypoints {
        f.get(key)
            .unwrap()
            .as_ref()
            .unwrap()
            .keypoints
            .clone()
            .unwrap()
    }

    #[test]
    fn stored_frames_filtered_by_frames_to_validate() {
        let json = br#"{"frames": [
            {"frame_number": 0, "keypoints": [[1.5, 2], [0, 0]], "objects": []},
            {"frame_number": 5, "keypoints": [[1, 2]]},
            {"frame_number": " 9", "keypoints": []}
        ]}"#;
        let (f, dropped) = parse_answer(json, &[0, 9]).unwrap();
        assert_eq!(dropped, None);
        let keys: Vec<_> = f.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(
            keys,
            ["0", " 9"],
            "str(frame_number) is the key, int(key) the filter"
        );
        let zero = kp(&f, "0");
        assert_eq!(zero.raw_len, 2);
        assert_eq!(zero.points.unwrap(), vec![[1.5, 2.0], [0.0, 0.0]]);
        assert!(
            kp(&f, " 9").all_zero_pairs,
            "all() of an empty list is true"
        );
    }

    #[test]
    fn integer_keypoints_are_floats_once_stored() {
        let json = br#"{"frames": [{"frame_number": 3, "keypoints": [[0, 0], [10, 11]]}]}"#;
        let (f, _) = parse_answer(json, &[3]).unwrap();
        let three = kp(&f, "3");
        assert!(!three.all_zero_pairs);
        assert_eq!(three.points.unwrap(), vec![[0.0, 0.0], [10.0, 11.0]]);
    }

    #[test]
    fn numpy_shapes() {
        let json = br#"{"frames": [
            {"frame_number": 1, "keypoints": [[1, 2], [3]]},
            {"frame_number": 2, "keypoints": [[1, 2, 3]]},
            {"frame_number": 3, "keypoints": [[1], [2]]}
        ]}"#;
        let (f, _) = parse_answer(json, &[1, 2, 3]).unwrap();
        assert!(kp(&f, "1").points.is_err(), "ragged");
        assert!(kp(&f, "2").points.is_err(), "3 numbers");
        assert_eq!(kp(&f, "3").points.unwrap(), vec![[1.0, 2.0]]);
    }

    #[test]
    fn a_key_int_rejects_fails_the_evaluation() {
        let json = br#"{"frames": [{"frame_number": 1.0, "keypoints": []}]}"#;
        let err = parse_answer(json, &[1]).unwrap_err().to_string();
        assert!(err.contains("int(\"1.0\")"), "{err}");
    }

    #[test]
    fn python_int_accepts_what_python_accepts() {
        assert_eq!(python_int_str(" 07 "), Some(7));
        assert_eq!(python_int_str("-1_0"), Some(-10));
        assert_eq!(python_int_str("1.0"), None);
        assert_eq!(python_int_str("_1"), None);
    }
}
