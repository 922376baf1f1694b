//! The parts of a Score Vision answer the keypoint score reads, parsed the way the
//! validator's Python sees them (`evaluate_response` in `validator/evaluation/evaluation.py`).
//!
//! The answer is kept close to the JSON: a frame's keypoints remember whether numpy would
//! have made an integer array of them and how long the raw list was, because the
//! validator's behaviour depends on both.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::Value;

use crate::ScoreError;

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
    /// `None` when `objects` is present but not a list (the validator fails on it when used).
    pub objects: Option<Vec<Object>>,
}

/// `np.array(frame["keypoints"]).reshape(-1, 2)` and what the validator reads of the raw list.
#[derive(Debug, Clone)]
pub struct Keypoints {
    /// The `(N, 2)` array, or the reason numpy would fail to build it.
    pub points: Result<Vec<[f64; 2]>, Raise>,
    /// numpy makes an int64 array when every number is a JSON integer; OpenCV's
    /// `perspectiveTransform` then rejects it (see `scoring::estimate_homography_ransac`).
    pub integer_dtype: bool,
    /// `len(frame["keypoints"])`: pairs for the usual `[[x, y], ...]`, numbers for a flat list.
    pub raw_len: usize,
    /// `all(p == [0.0, 0.0] for p in keypoints)`: true for an empty list, false for a flat one.
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

/// A JSON object with its keys in document order (serde_json's own map sorts them unless
/// the workspace-wide `preserve_order` feature is on, which this crate does not impose).
struct OrderedMap(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for OrderedMap {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedMap, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FramesDoc {
    List(Vec<Value>),
    Map(OrderedMap),
}

#[derive(Deserialize)]
struct AnswerDoc {
    frames: Option<FramesDoc>,
}

/// A frame key of `temp_frames` before `str(k)`: `frame_number` can be any JSON value.
#[derive(PartialEq)]
enum TempKey {
    Num(f64),
    Str(String),
}

impl TempKey {
    fn from_value(v: &Value) -> Result<Self, ScoreError> {
        match v {
            Value::Number(n) => Ok(Self::Num(n.as_f64().unwrap_or(f64::NAN))),
            Value::String(s) => Ok(Self::Str(s.clone())),
            other => Err(ScoreError::Answer(format!(
                "frame_number {other} is not a number or string"
            ))),
        }
    }

    /// Python's `str(k)`.
    fn python_str(&self, raw: &Value) -> String {
        match (self, raw) {
            (Self::Str(s), _) => s.clone(),
            (Self::Num(_), Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            (Self::Num(x), _) => python_float_repr(*x),
        }
    }

    /// Python's `int(k)`; the validator calls it outside its try block, so a key that is
    /// not a number fails the whole response rather than scoring 0.
    fn python_int(&self) -> Result<i64, ScoreError> {
        match self {
            Self::Num(x) if x.is_finite() => Ok(x.trunc() as i64),
            Self::Num(x) => Err(ScoreError::Answer(format!("frame key {x} is not finite"))),
            Self::Str(s) => python_int_str(s)
                .ok_or_else(|| ScoreError::Answer(format!("invalid literal for int(): {s:?}"))),
        }
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

fn python_float_repr(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

/// Parse an answer and keep the frames the validator keeps: `response_data.get("frames", {})`,
/// the legacy list converted by `frame_number` (or position), then
/// `{str(k): v for k, v in frames.items() if int(k) in frames_to_validate}`.
pub fn parse_answer(json: &[u8], frames_to_validate: &[i64]) -> Result<Frames, ScoreError> {
    let doc: AnswerDoc =
        serde_json::from_slice(json).map_err(|e| ScoreError::Answer(e.to_string()))?;
    // Python dict semantics for `temp_frames`: keys compared by value (12 == 12.0).
    let mut temp: Vec<(TempKey, Value, Value)> = Vec::new();
    let mut put = |k: TempKey, raw: Value, v: Value| match temp.iter_mut().find(|(t, _, _)| *t == k)
    {
        Some(slot) => slot.2 = v,
        None => temp.push((k, raw, v)),
    };
    match doc.frames {
        None => {}
        Some(FramesDoc::Map(m)) => {
            for (k, v) in m.0 {
                put(TempKey::Str(k.clone()), Value::String(k), v);
            }
        }
        Some(FramesDoc::List(list)) => {
            for (i, v) in list.into_iter().enumerate() {
                // evaluate_response's legacy conversion keeps every entry under
                // `frame.get('frame_number', str(i))`; a non-dict entry fails there,
                // outside the try block that would score it 0.
                let Some(o) = v.as_object() else {
                    return Err(ScoreError::Answer(format!("frame {i} is not an object")));
                };
                let raw = o
                    .get("frame_number")
                    .cloned()
                    .unwrap_or_else(|| Value::String(i.to_string()));
                put(TempKey::from_value(&raw)?, raw, v);
            }
        }
    }
    let wanted: std::collections::HashSet<i64> = frames_to_validate.iter().copied().collect();
    let mut frames = Frames::default();
    for (k, raw, v) in temp {
        if wanted.contains(&k.python_int()?) {
            frames.insert(k.python_str(&raw), parse_frame(&v));
        }
    }
    Ok(frames)
}

fn parse_frame(v: &Value) -> Result<Frame, Raise> {
    let o = v
        .as_object()
        .ok_or_else(|| Raise::new("AttributeError: a frame is not a dict"))?;
    let keypoints = o.get("keypoints").map(parse_keypoints);
    let objects = match o.get("objects") {
        None => Some(Vec::new()),
        Some(Value::Array(a)) => Some(a.iter().map(parse_object).collect::<Result<_, _>>()?),
        Some(_) => None,
    };
    Ok(Frame { keypoints, objects })
}

fn parse_keypoints(v: &Value) -> Keypoints {
    let Value::Array(list) = v else {
        return Keypoints {
            points: Err(Raise::new("keypoints is not a list")),
            integer_dtype: false,
            raw_len: 0,
            all_zero_pairs: false,
        };
    };
    let all_zero_pairs = list.iter().all(|p| match p {
        Value::Array(xy) => xy.len() == 2 && xy.iter().all(|c| c.as_f64() == Some(0.0)),
        _ => false,
    });
    // np.array needs a rectangular array of numbers: all scalars, or all lists of one length.
    let mut numbers: Vec<&Value> = Vec::new();
    let mut shape_ok = true;
    let nested = list.first().is_some_and(Value::is_array);
    let inner_len = list.first().and_then(Value::as_array).map(Vec::len);
    for p in list {
        match (p, nested) {
            (Value::Array(xy), true) if Some(xy.len()) == inner_len => numbers.extend(xy.iter()),
            (Value::Number(_), false) => numbers.push(p),
            _ => shape_ok = false,
        }
    }
    let all_numbers = numbers.iter().all(|n| n.is_number());
    let integer_dtype = numbers.iter().all(|n| n.is_i64() || n.is_u64());
    let points = if !shape_ok || !all_numbers {
        Err(Raise::new(
            "keypoints are not a rectangular list of numbers",
        ))
    } else if !numbers.len().is_multiple_of(2) {
        Err(Raise::new(
            "ValueError: cannot reshape keypoints into (-1, 2)",
        ))
    } else {
        Ok(numbers
            .chunks(2)
            .map(|c| {
                [
                    c[0].as_f64().unwrap_or(f64::NAN),
                    c[1].as_f64().unwrap_or(f64::NAN),
                ]
            })
            .collect())
    };
    Keypoints {
        points,
        integer_dtype,
        raw_len: list.len(),
        all_zero_pairs,
    }
}

fn parse_object(v: &Value) -> Result<Object, Raise> {
    let o = v
        .as_object()
        .ok_or_else(|| Raise::new("AttributeError: an object is not a dict"))?;
    let bbox = match o.get("bbox") {
        None => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|n| {
                    n.as_f64()
                        .ok_or_else(|| Raise::new("TypeError: bbox holds a non-number"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err(Raise::new("TypeError: bbox is not a list")),
    };
    Ok(Object {
        class_id: o.get("class_id").and_then(Value::as_f64),
        id: o.get("id").map(Value::to_string),
        bbox,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_list_keys_by_frame_number_and_filters() {
        let json = br#"{"frames": [
            {"frame_number": 0, "keypoints": [[1.5, 2], [0, 0]], "objects": []},
            {"frame_number": 5, "keypoints": [[1, 2]]},
            {"frame_number": 9, "keypoints": []}
        ]}"#;
        let f = parse_answer(json, &[0, 9]).unwrap();
        let keys: Vec<_> = f.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(keys, ["0", "9"]);
        let kp = f
            .get("0")
            .unwrap()
            .as_ref()
            .unwrap()
            .keypoints
            .clone()
            .unwrap();
        assert!(!kp.integer_dtype);
        assert_eq!(kp.raw_len, 2);
        assert_eq!(kp.points.unwrap(), vec![[1.5, 2.0], [0.0, 0.0]]);
        let empty = f
            .get("9")
            .unwrap()
            .as_ref()
            .unwrap()
            .keypoints
            .clone()
            .unwrap();
        assert!(empty.all_zero_pairs, "all() of an empty list is true");
    }

    #[test]
    fn dict_form_keeps_document_order_and_integer_dtype() {
        let json = br#"{"frames": {"3": {"keypoints": [[0, 0], [1, 1]]}, "1": {"keypoints": [1.0, 2.0]}}}"#;
        let f = parse_answer(json, &[1, 3]).unwrap();
        let keys: Vec<_> = f.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(keys, ["3", "1"]);
        let three = f
            .get("3")
            .unwrap()
            .as_ref()
            .unwrap()
            .keypoints
            .clone()
            .unwrap();
        assert!(three.integer_dtype);
        let one = f
            .get("1")
            .unwrap()
            .as_ref()
            .unwrap()
            .keypoints
            .clone()
            .unwrap();
        assert!(
            !one.all_zero_pairs,
            "a flat list never compares equal to [0.0, 0.0]"
        );
        assert_eq!(one.raw_len, 2);
    }

    #[test]
    fn python_int_accepts_what_python_accepts() {
        assert_eq!(python_int_str(" 07 "), Some(7));
        assert_eq!(python_int_str("-1_0"), Some(-10));
        assert_eq!(python_int_str("1.0"), None);
        assert_eq!(python_int_str("_1"), None);
    }
}
