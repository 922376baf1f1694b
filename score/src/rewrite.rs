//! What the validator stores of an answer, which is what it scores: score-vision's
//! `validator/challenge/send_challenge.py` passes every miner response through
//! `optimize_response_data` before `store_response` writes it, and `evaluate_response`
//! later reads that stored form back (`get_pending_responses`). At 1791fe19 this is the only
//! writer of responses, so the JSON a miner sends is never scored as sent:
//!
//! 1. the `frames` list becomes a dict keyed by `str(frame["frame_number"])` (a later frame
//!    with the same key replaces the earlier one in its place); a `frames` that is not a list
//!    (a dict, say) becomes `{}`, and so does a response without `frames`;
//! 2. each stored frame keeps only `keypoints` (when a list) and `objects` (when a list),
//!    every keypoint and bbox number becoming `round(float(x), 2)`: integer keypoints turn
//!    into floats, and unrounded coordinates move to the nearest hundredth;
//! 3. anything in there that Python cannot do (a frame without `frame_number`, a keypoint
//!    that `float()` rejects, ...) raises inside the validator's `try`, whose `finally:
//!    return` drops the exception: the response is never stored and never scored.
//!
//! `json.dumps`/`json.loads` on the way through the database change nothing (keys are
//! strings already, floats round-trip).

use serde_json::{Map, Value};

use crate::ScoreError;

/// Why the validator would not store an answer (an exception in `optimize_response_data`).
fn not_stored(why: impl std::fmt::Display) -> ScoreError {
    ScoreError::NotStored(why.to_string())
}

/// One frame as stored: `frame_data` of `optimize_response_data`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFrame {
    /// `optimize_keypoints(frame["keypoints"])`: each entry a list of rounded floats; `None`
    /// when the answer's `keypoints` is absent or not a list (the key is then missing).
    pub keypoints: Option<Vec<Vec<f64>>>,
    /// The objects, `None` when the answer's `objects` is absent or not a list.
    pub objects: Option<Vec<StoredObject>>,
}

/// One object as stored: `obj.copy()` with its `bbox` rounded.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredObject {
    /// A dict: its other fields as sent, and the rounded `bbox` (`None` when absent).
    Dict {
        fields: Map<String, Value>,
        bbox: Option<Vec<f64>>,
    },
    /// A list (lists have `copy()` too), kept as sent; the scoring raises on it later.
    List(Vec<Value>),
}

/// The stored response: its frames dict, in Python's insertion order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stored {
    pub frames: Vec<(String, StoredFrame)>,
    /// Why nothing was stored when the answer has frames the validator drops as a whole
    /// (a `frames` that is not a list); `None` otherwise.
    pub dropped: Option<String>,
}

impl Stored {
    /// The stored frames as JSON (numbers the validator rounded as floats, non-finite ones as
    /// the strings "NaN", "Infinity", "-Infinity"), the frame order kept as a list of
    /// `[key, frame]` pairs: for comparing with the Python's stored form in tests.
    pub fn to_json(&self) -> Value {
        fn num(x: f64) -> Value {
            serde_json::Number::from_f64(x).map_or_else(
                || {
                    Value::String(
                        if x.is_nan() {
                            "NaN"
                        } else if x > 0.0 {
                            "Infinity"
                        } else {
                            "-Infinity"
                        }
                        .into(),
                    )
                },
                Value::Number,
            )
        }
        let nums = |v: &[f64]| Value::Array(v.iter().map(|&x| num(x)).collect());
        Value::Array(
            self.frames
                .iter()
                .map(|(k, f)| {
                    let mut o = Map::new();
                    if let Some(kp) = &f.keypoints {
                        o.insert(
                            "keypoints".into(),
                            Value::Array(kp.iter().map(|p| nums(p)).collect()),
                        );
                    }
                    if let Some(objs) = &f.objects {
                        let objs = objs
                            .iter()
                            .map(|obj| match obj {
                                StoredObject::Dict { fields, bbox } => {
                                    let mut m = fields.clone();
                                    if let Some(b) = bbox {
                                        m.insert("bbox".into(), nums(b));
                                    }
                                    Value::Object(m)
                                }
                                StoredObject::List(l) => Value::Array(l.clone()),
                            })
                            .collect();
                        o.insert("objects".into(), Value::Array(objs));
                    }
                    Value::Array(vec![Value::String(k.clone()), Value::Object(o)])
                })
                .collect(),
        )
    }

    /// An order-sensitive digest of the stored numbers, each as its hundredths
    /// (`round(v * 100)`), and the frame keys: equal digests mean equal stored answers.
    /// `tools/score/golden.py` computes the same (`stored_digest`).
    pub fn digest(&self) -> u64 {
        let mut h: u64 = 0;
        let mut mix = |n: i64| h = h.wrapping_mul(1_000_003).wrapping_add(n as u64);
        let hundredths = |v: f64| -> i64 {
            if v.is_nan() {
                i64::MIN + 1
            } else if v.is_infinite() {
                if v > 0.0 { i64::MAX } else { i64::MIN }
            } else {
                // Saturating for absurd magnitudes, as the Python side clamps too.
                (v * 100.0).round().clamp(-1e18, 1e18) as i64
            }
        };
        for (k, f) in &self.frames {
            for b in k.bytes() {
                mix(i64::from(b));
            }
            mix(-1);
            for p in f.keypoints.iter().flatten() {
                for &v in p {
                    mix(hundredths(v));
                }
                mix(-2);
            }
            mix(-3);
            for o in f.objects.iter().flatten() {
                if let StoredObject::Dict { bbox: Some(b), .. } = o {
                    for &v in b {
                        mix(hundredths(v));
                    }
                }
                mix(-4);
            }
            mix(-5);
        }
        h
    }
}

/// `optimize_response_data(response.json())`, with `send_challenge`'s `None` body
/// (`{"frames": {}}`) and its exceptions (an answer it does not store).
pub fn optimize_response_data(json: &[u8]) -> Result<Stored, ScoreError> {
    let doc: Value = serde_json::from_slice(json).map_err(|e| {
        not_stored(format!(
            "the answer is not JSON ({e}): response.json() fails"
        ))
    })?;
    // `"frames" in response_data and isinstance(response_data["frames"], list)`, on whatever
    // JSON value the body is.
    let frames = match &doc {
        Value::Null => None, // replaced by {"frames": {}, ...}
        Value::Object(o) => o.get("frames"),
        Value::Array(a) => {
            if a.iter().any(|v| v.as_str() == Some("frames")) {
                return Err(not_stored(
                    "TypeError: the answer is a list holding \"frames\" (list indices must be integers)",
                ));
            }
            None
        }
        Value::String(s) => {
            if s.contains("frames") {
                return Err(not_stored(
                    "TypeError: the answer is a string containing \"frames\" (string indices must be integers)",
                ));
            }
            None
        }
        Value::Number(_) | Value::Bool(_) => {
            return Err(not_stored(format!(
                "TypeError: the answer is {}, not an object (argument of type '{}' is not iterable)",
                doc,
                python_type(&doc)
            )));
        }
    };
    let list = match frames {
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Ok(Stored {
                frames: Vec::new(),
                dropped: Some(format!(
                    "the answer's `frames` is a {}, not a list: the validator's \
                     optimize_response_data keeps only a list of frames, so it stores none \
                     and the answer scores 0",
                    json_type(other)
                )),
            });
        }
        None => return Ok(Stored::default()),
    };
    let mut out: Vec<(String, StoredFrame)> = Vec::new();
    for (i, frame) in list.iter().enumerate() {
        let Value::Object(frame) = frame else {
            return Err(not_stored(format!(
                "TypeError: frame {i} is a {}, not an object",
                json_type(frame)
            )));
        };
        let frame_num = frame
            .get("frame_number")
            .ok_or_else(|| not_stored(format!("KeyError: frame {i} has no 'frame_number'")))?;
        let key = python_str(frame_num);
        let keypoints = match frame.get("keypoints") {
            Some(Value::Array(kps)) => Some(
                kps.iter()
                    .enumerate()
                    .map(|(j, kp)| {
                        optimize_coordinates(kp)
                            .map_err(|e| not_stored(format!("frame {i}, keypoint {j}: {e}")))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => None,
        };
        let objects = match frame.get("objects") {
            Some(Value::Array(objs)) => Some(
                objs.iter()
                    .enumerate()
                    .map(|(j, obj)| {
                        optimize_object(obj)
                            .map_err(|e| not_stored(format!("frame {i}, object {j}: {e}")))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => None,
        };
        let stored = StoredFrame { keypoints, objects };
        // frames[frame_num] = frame_data: a repeated key keeps its place, takes the new value.
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = stored,
            None => out.push((key, stored)),
        }
    }
    Ok(Stored {
        frames: out,
        dropped: None,
    })
}

fn optimize_object(obj: &Value) -> Result<StoredObject, String> {
    match obj {
        Value::Object(fields) => {
            let mut fields = fields.clone();
            let bbox = fields
                .remove("bbox")
                .map(|b| optimize_coordinates(&b).map_err(|e| format!("bbox: {e}")))
                .transpose()?;
            Ok(StoredObject::Dict { fields, bbox })
        }
        Value::Array(items) => {
            // `"bbox" in obj` is a membership test on a list; obj["bbox"] then raises.
            if items.iter().any(|v| v.as_str() == Some("bbox")) {
                return Err(
                    "TypeError: a list object holding \"bbox\" is indexed by a string".into(),
                );
            }
            Ok(StoredObject::List(items.clone()))
        }
        other => Err(format!(
            "AttributeError: '{}' object has no attribute 'copy'",
            python_type(other)
        )),
    }
}

/// `optimize_coordinates`: `[round(float(x), 2) for x in coords]`.
fn optimize_coordinates(coords: &Value) -> Result<Vec<f64>, String> {
    python_iter(coords)?
        .iter()
        .map(|x| python_float(x).map(python_round2))
        .collect()
}

/// What `for x in v` yields: a list's items, a string's characters, a dict's keys.
fn python_iter(v: &Value) -> Result<Vec<Value>, String> {
    match v {
        Value::Array(a) => Ok(a.clone()),
        Value::String(s) => Ok(s.chars().map(|c| Value::String(c.to_string())).collect()),
        Value::Object(o) => Ok(o.keys().map(|k| Value::String(k.clone())).collect()),
        other => Err(format!(
            "TypeError: '{}' object is not iterable",
            python_type(other)
        )),
    }
}

/// Python's `float(x)` of a JSON value.
fn python_float(v: &Value) -> Result<f64, String> {
    match v {
        // serde_json reads JSON numbers correctly rounded (feature float_roundtrip, as
        // Python's json does), and an integer converts to the nearest double as int() does.
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| format!("OverflowError: float({n})")),
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => python_float_str(s)
            .ok_or_else(|| format!("ValueError: could not convert string to float: {s:?}")),
        other => Err(format!(
            "TypeError: float() argument must be a string or a real number, not '{}'",
            python_type(other)
        )),
    }
}

/// `float(s)` for a string: surrounding whitespace, underscores between digits, the
/// decimal and exponent forms, and `inf`/`infinity`/`nan` in any case, with a sign.
pub fn python_float_str(s: &str) -> Option<f64> {
    let t = s.trim();
    let b = t.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            let digit = |j: Option<usize>| j.and_then(|j| b.get(j)).is_some_and(u8::is_ascii_digit);
            if !digit(i.checked_sub(1)) || !digit(Some(i + 1)) {
                return None;
            }
        }
    }
    let t = t.replace('_', "");
    // Rust's grammar is Python's for ASCII input (both correctly rounded), except that
    // Python has no hexadecimal or other prefixes either; Rust accepts nothing more.
    t.parse::<f64>().ok()
}

/// Python's `round(x, 2)` for a float: the double nearest to the decimal with two digits
/// after the point that is nearest to `x`'s exact binary value, ties to even (CPython's
/// `double_round`: dtoa mode 3, then strtod). So 2.675 (2.67499999…) gives 2.67, 1.005
/// gives 1.0, the exact tie 0.125 gives 0.12 and 0.375 gives 0.38; non-finite values and
/// zeros come back as they are, signs kept (round(-0.001, 2) is -0.0).
pub fn python_round2(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 || x.fract() == 0.0 {
        // An integral double is its own rounding (every double of 2^52 or more is one).
        return x;
    }
    let bits = x.to_bits();
    let exp_bits = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    // x = m × 2^e exactly, with e < 0 here (x is not an integer).
    let (m, e) = if exp_bits == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), exp_bits - 1075)
    };
    let shift = -e; // ≥ 1
    let scaled = u128::from(m) * 100; // < 2^60
    let n: u128 = if shift >= 100 {
        0 // far below half a hundredth
    } else {
        let q = scaled >> shift;
        let r = scaled & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        if r > half || (r == half && q & 1 == 1) {
            q + 1
        } else {
            q
        }
    };
    let magnitude = if n < (1u128 << 53) {
        // n and 100 are exact doubles: one correctly rounded division.
        n as f64 / 100.0
    } else {
        format!("{n}e-2").parse::<f64>().unwrap_or(f64::NAN)
    };
    magnitude.copysign(x)
}

/// Python's `str(v)` of a JSON value (as the dict key of a frame).
fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => python_float_repr(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        // A list or dict key never survives int(k) in evaluate_response, which names it;
        // its JSON text stands in for Python's repr.
        other => other.to_string(),
    }
}

/// Python's `repr(float)`: the shortest round-tripping digits, in fixed notation for
/// exponents -4..16 (with at least one decimal), scientific otherwise ("1e+16", "1e-05").
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sci = format!("{x:e}"); // shortest digits: "-1.2345e17"
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let s = format!("{x}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn python_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values checked against CPython 3.11's round(x, 2) (python3 -c 'print(round(x, 2))').
    #[test]
    fn round2_is_pythons_round() {
        for (x, want) in [
            (2.675_f64, 2.67_f64),
            (1.005, 1.0),
            (0.125, 0.12),
            (0.375, 0.38),
            (-2.675, -2.67),
            (0.135, 0.14),
            (1e300, 1e300),
            (5e-324, 0.0),
            (2_500_000_000_000_000.0, 2_500_000_000_000_000.0),
            (123.456_789_012_345_67, 123.46),
            (0.005, 0.01),
            (0.015, 0.01),
            (0.025, 0.03),
            (1.115, 1.11),
            (1.125, 1.12),
            (1.135, 1.14),
            (10.0, 10.0),
            (4_503_599_627_370_495.5, 4_503_599_627_370_495.5),
        ] {
            let got = python_round2(x);
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "round({x}, 2): {got} vs {want}"
            );
        }
        assert!(python_round2(-0.001).is_sign_negative() && python_round2(-0.001) == 0.0);
        assert!(python_round2(f64::NAN).is_nan());
        assert_eq!(python_round2(f64::NEG_INFINITY), f64::NEG_INFINITY);
    }

    #[test]
    fn float_of_a_string_is_pythons() {
        assert_eq!(python_float_str(" 1_0.5\n"), Some(10.5));
        assert_eq!(python_float_str("-InFinity"), Some(f64::NEG_INFINITY));
        assert_eq!(python_float_str("1."), Some(1.0));
        assert_eq!(python_float_str(".5"), Some(0.5));
        for bad in ["1__0", "_1", "1_", "1_.5", "1._5", "0x10", "1e", "", "-"] {
            assert_eq!(python_float_str(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn float_repr_is_pythons() {
        for (x, want) in [
            (1e16, "1e+16"),
            (1e-5, "1e-05"),
            (123_456_789_012_345_680.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (-0.0, "-0.0"),
            (12.0, "12.0"),
            (12.5, "12.5"),
        ] {
            assert_eq!(python_float_repr(x), want);
        }
    }

    #[test]
    fn frames_list_becomes_a_rounded_dict() {
        let stored = optimize_response_data(
            br#"{"frames": [
                {"frame_number": 3, "keypoints": [[1, 2], [0.125, "2.675"], []],
                 "objects": [{"id": 7, "class_id": 2, "bbox": [1.005, 2, 3.999, true], "x": 1}],
                 "extra": 1},
                {"frame_number": "1", "keypoints": {"a": 1}, "objects": 5},
                {"frame_number": 3, "keypoints": [[9.999, 0]]}
            ]}"#,
        )
        .unwrap();
        assert_eq!(stored.dropped, None);
        let keys: Vec<&str> = stored.frames.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["3", "1"], "a repeated key keeps its first place");
        assert_eq!(
            stored.frames[0].1,
            StoredFrame {
                keypoints: Some(vec![vec![10.0, 0.0]]),
                objects: None
            },
            "the later frame 3 replaces the earlier"
        );
        assert_eq!(
            stored.frames[1].1,
            StoredFrame {
                keypoints: None,
                objects: None
            }
        );
        let first = optimize_response_data(
            br#"{"frames": [{"frame_number": 3, "keypoints": [[1, 2], [0.125, "2.675"], []],
                 "objects": [{"id": 7, "class_id": 2, "bbox": [1.005, 2, 3.999, true]}]}]}"#,
        )
        .unwrap();
        let f = &first.frames[0].1;
        assert_eq!(
            f.keypoints,
            Some(vec![vec![1.0, 2.0], vec![0.12, 2.67], vec![]]),
            "integers become floats, the tie 0.125 goes to even, the string \"2.675\" is \
             the double 2.67499…"
        );
        let StoredObject::Dict { bbox, fields } = &f.objects.as_ref().unwrap()[0] else {
            panic!("a dict object")
        };
        assert_eq!(bbox.as_deref(), Some(&[1.0, 2.0, 4.0, 1.0][..]));
        assert_eq!(fields.get("id"), Some(&Value::from(7)));
    }

    #[test]
    fn what_the_validator_cannot_store() {
        for (json, why) in [
            (&br#"{"frames": [{"keypoints": []}]}"#[..], "frame_number"),
            (br#"{"frames": [[1]]}"#, "frame 0 is a list"),
            (
                br#"{"frames": [{"frame_number": 0, "keypoints": [5]}]}"#,
                "not iterable",
            ),
            (
                br#"{"frames": [{"frame_number": 0, "keypoints": [["x", 1]]}]}"#,
                "could not convert",
            ),
            (
                br#"{"frames": [{"frame_number": 0, "keypoints": [[null, 1]]}]}"#,
                "NoneType",
            ),
            (
                br#"{"frames": [{"frame_number": 0, "objects": ["a"]}]}"#,
                "copy",
            ),
            (
                br#"{"frames": [{"frame_number": 0, "objects": [{"bbox": null}]}]}"#,
                "not iterable",
            ),
            (
                br#"{"frames": [{"frame_number": 0, "objects": [["bbox"]]}]}"#,
                "indexed by a string",
            ),
            (br#"7"#, "not an object"),
            (br#""frames""#, "string containing"),
            (br#"{"frames": "#, "not JSON"),
        ] {
            match optimize_response_data(json) {
                Err(ScoreError::NotStored(msg)) => {
                    assert!(
                        msg.contains(why),
                        "{}: {msg}",
                        String::from_utf8_lossy(json)
                    )
                }
                other => panic!("{}: {other:?}", String::from_utf8_lossy(json)),
            }
        }
    }

    #[test]
    fn frames_not_a_list_store_nothing() {
        let dict = optimize_response_data(br#"{"frames": {"0": {"keypoints": []}}}"#).unwrap();
        assert!(dict.frames.is_empty());
        assert!(dict.dropped.unwrap().contains("is a dict, not a list"));
        for json in [&br#"{}"#[..], b"null", b"[1, 2]", br#""hello""#] {
            let s = optimize_response_data(json).unwrap();
            assert_eq!(s, Stored::default(), "{}", String::from_utf8_lossy(json));
        }
    }
}
