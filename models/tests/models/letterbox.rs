//! The letterbox against ultralytics' `LetterBox` as `predict` uses it
//! (tests/fixtures/detect/letterbox.json, written by tools/golden/make_detect_fixtures.py):
//! the geometry for many source sizes, and the exact output bytes (resize + padding) for a
//! random image. Cases with a non-square `imgsz` are not Pitchside's (its `imgsz` is one
//! number) and are skipped.

use base64::Engine;
use pitchside_models::Letterbox;
use pitchside_models::preprocess::letterbox_bytes;
use pitchside_plugin::{FrameRef, PixelFormat};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::fixture;

fn n(v: &Value) -> u32 {
    v.as_u64().unwrap() as u32
}

fn pair(v: &Value) -> [u32; 2] {
    [n(&v[0]), n(&v[1])]
}

/// The fixture case's letterbox when its `imgsz` is square.
fn letterbox_of(case: &Value) -> Option<Letterbox> {
    let [ih, iw] = pair(&case["imgsz"]);
    (ih == iw).then(|| {
        Letterbox::new(
            n(&case["src_w"]),
            n(&case["src_h"]),
            ih,
            case["auto"].as_bool().unwrap(),
            32,
        )
    })
}

fn check_geometry(case: &Value, lb: &Letterbox) {
    let ctx = format!(
        "{}x{} (w x h) at {} auto {}",
        case["src_w"], case["src_h"], case["imgsz"], case["auto"]
    );
    assert_eq!(
        [lb.new_h, lb.new_w],
        pair(&case["new_unpad_hw"]),
        "{ctx}: resized size"
    );
    let pad: Vec<u32> = case["pad_tblr"].as_array().unwrap().iter().map(n).collect();
    assert_eq!(
        vec![lb.top, lb.bottom, lb.left, lb.right],
        pad,
        "{ctx}: padding"
    );
    assert_eq!(
        [lb.out_h(), lb.out_w()],
        pair(&case["out_hw"]),
        "{ctx}: output size"
    );
}

#[test]
fn geometry_matches_ultralytics() {
    let fx = fixture("letterbox.json");
    let mut checked = 0;
    for case in fx["cases"].as_array().unwrap() {
        if let Some(lb) = letterbox_of(case) {
            check_geometry(case, &lb);
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} square cases");
}

#[test]
fn pixels_match_ultralytics_byte_for_byte() {
    let fx = fixture("letterbox.json");
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut checked = 0;
    for pc in fx["pixel_cases"].as_array().unwrap() {
        let src = b64.decode(pc["src_b64"].as_str().unwrap()).unwrap();
        assert_eq!(
            hex(&Sha256::digest(&src)),
            pc["src_sha256"].as_str().unwrap()
        );
        let (w, h) = (n(&pc["src_w"]), n(&pc["src_h"]));
        let frame = FrameRef {
            data: &src,
            width: w,
            height: h,
            row_stride: w as usize * 3,
            // Channel order does not matter to letterboxing: bytes out as they came in.
            format: PixelFormat::Bgr8,
            frame_number: 0,
        };
        for out in pc["outputs"].as_array().unwrap() {
            let Some(lb) = letterbox_of(out) else {
                continue;
            };
            check_geometry(out, &lb);
            let ctx = format!("{w}x{h} at {} auto {}", out["imgsz"], out["auto"]);
            let got = letterbox_bytes(&frame, &lb).unwrap();
            let ow = lb.out_w() as usize;
            for s in out["samples"].as_array().unwrap() {
                let (x, y) = (
                    s["x"].as_u64().unwrap() as usize,
                    s["y"].as_u64().unwrap() as usize,
                );
                let want: Vec<u8> = s["v"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| n(v) as u8)
                    .collect();
                assert_eq!(
                    &got[(y * ow + x) * 3..][..3],
                    &want[..],
                    "{ctx}: pixel ({x}, {y})"
                );
            }
            if let Some(want) = out.get("out_b64").and_then(Value::as_str) {
                assert!(
                    got == b64.decode(want).unwrap(),
                    "{ctx}: output bytes differ"
                );
            }
            assert_eq!(
                hex(&Sha256::digest(&got)),
                out["out_sha256"].as_str().unwrap(),
                "{ctx}: output sha256"
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} pixel cases");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
