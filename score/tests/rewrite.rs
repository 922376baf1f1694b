//! The validator's rewrite of an answer before it stores it (`optimize_response_data`)
//! against the validator's own code: tests/fixtures/rewrite.json holds answers probing it
//! (Python's `round(float(x), 2)` on ties, near-midpoint doubles and long decimal strings,
//! `float()` of strings and booleans, frames and objects of the wrong type, answers it
//! cannot store) and what the Python stored of each, written by tools/score/golden.py
//! (`--rewrite-cases`). Every stored number must be the same double.

use std::path::PathBuf;

use pitchside_score::ScoreError;
use pitchside_score::rewrite::optimize_response_data;
use serde_json::Value;

/// Equal JSON, numbers compared as doubles bit for bit (-0.0 is not 0.0).
fn same(a: &Value, b: &Value, at: &str, diffs: &mut Vec<String>) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            if x.to_bits() != y.to_bits() {
                diffs.push(format!("{at}: pitchside {x:e} vs validator {y:e}"));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                same(x, y, &format!("{at}[{i}]"), diffs);
            }
        }
        (Value::Object(x), Value::Object(y)) if x.len() == y.len() => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => same(v, w, &format!("{at}.{k}"), diffs),
                    None => diffs.push(format!("{at}: {k} only in pitchside's")),
                }
            }
        }
        _ if a == b => {}
        _ => diffs.push(format!("{at}: pitchside {a} vs validator {b}")),
    }
}

#[test]
fn rewrite_stores_what_the_validator_stores() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rewrite.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = fixture["cases"].as_object().unwrap();
    assert!(cases.len() >= 15, "{} cases", cases.len());
    let mut diffs = Vec::new();
    let mut numbers = 0;
    for (name, case) in cases {
        let body = case["body"].as_str().unwrap();
        match (optimize_response_data(body.as_bytes()), &case["stored"]) {
            (Ok(stored), want @ Value::Array(_)) => {
                numbers += body.matches(',').count();
                same(&stored.to_json(), want, name, &mut diffs);
            }
            (Err(ScoreError::NotStored(_)), Value::Null) => {}
            (got, _) => diffs.push(format!(
                "{name}: pitchside {got:?}, validator {}",
                case.get("store_error").unwrap_or(&case["stored"])
            )),
        }
    }
    assert!(
        numbers > 2000,
        "the round() case holds thousands of numbers"
    );
    assert!(
        diffs.is_empty(),
        "stored forms differ:\n{}",
        diffs.join("\n")
    );
}
