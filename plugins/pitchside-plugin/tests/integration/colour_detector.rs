//! The example colour detector on a real football photo (assets/messi5.jpg, 548x342), loaded
//! as a shared library and used directly: both must find the ball and the player, and agree
//! exactly.

use colour_ball_detector::{CLASS_BALL, CLASS_PLAYER, ColourBallDetector};
use pitchside_plugin::host::{self, SharedDetector};
use pitchside_plugin::sdk::DetectorPlugin;
use pitchside_plugin::serde_json::json;
use pitchside_plugin::{Detection, Detector, FrameRef, PixelFormat};

use crate::support;

/// The photo as packed BGR, the engine's format.
fn messi_bgr() -> (Vec<u8>, u32, u32) {
    let path = support::workspace_root().join("assets/messi5.jpg");
    let rgb = image::open(&path)
        .unwrap_or_else(|e| panic!("decode {}: {e}", path.display()))
        .to_rgb8();
    let (w, h) = rgb.dimensions();
    let mut bgr = rgb.into_raw();
    for px in bgr.chunks_exact_mut(3) {
        px.swap(0, 2);
    }
    (bgr, w, h)
}

fn frame(data: &[u8], w: u32, h: u32, n: u64) -> FrameRef<'_> {
    FrameRef {
        data,
        width: w,
        height: h,
        row_stride: w as usize * 3,
        format: PixelFormat::Bgr8,
        frame_number: n,
    }
}

fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let area = |r: [f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter)
}

/// Hand-measured on the photo: the yellow ball at Messi's feet, and his left leg and boot
/// on the grass (the pitch is only the bottom quarter of this close-up; the rest of him is
/// against the crowd).
const BALL: [f32; 4] = [338.0, 290.0, 387.0, 335.0];
const LEFT_LEG: [f32; 4] = [220.0, 271.0, 305.0, 335.0];

fn check_finds_ball_and_player(dets: &[Detection]) {
    let ball = dets
        .iter()
        .filter(|d| d.class_id == CLASS_BALL)
        .max_by(|a, b| a.score.total_cmp(&b.score))
        .unwrap_or_else(|| panic!("no ball in {dets:?}"));
    assert!(iou(ball.bbox, BALL) > 0.8, "ball {ball:?}");
    assert!(ball.score > 0.6, "ball {ball:?}");
    let player = dets
        .iter()
        .filter(|d| d.class_id == CLASS_PLAYER)
        .max_by(|a, b| iou(a.bbox, LEFT_LEG).total_cmp(&iou(b.bbox, LEFT_LEG)))
        .unwrap_or_else(|| panic!("no player in {dets:?}"));
    assert!(iou(player.bbox, LEFT_LEG) > 0.6, "player {player:?}");
    // Nothing is found in the crowd above the pitch.
    assert!(dets.iter().all(|d| d.bbox[3] > 250.0), "{dets:?}");
}

#[test]
fn shared_library_and_direct_use_agree_on_a_real_photo() {
    let (bgr, w, h) = messi_bgr();
    let frames = [frame(&bgr, w, h, 0), frame(&bgr, w, h, 1)];

    let mut direct = ColourBallDetector::from_params(&json!({})).unwrap();
    let direct_out = direct.detect(&frames).unwrap();

    let lib = support::debug().lib("colour_ball_detector");
    let desc = host::inspect(&lib).unwrap();
    assert_eq!(desc.info, direct.info());
    let mut shared = SharedDetector::load(&lib, &json!({})).unwrap();
    let shared_out = shared.detect(&frames).unwrap();

    assert_eq!(shared_out, direct_out);
    // Nothing needed clipping or dropping.
    assert_eq!(shared.report(), Default::default());
    for dets in &shared_out {
        check_finds_ball_and_player(dets);
    }
    println!("{:#?}", shared_out[0]);
}

#[test]
fn params_reach_the_plugin() {
    let (bgr, w, h) = messi_bgr();
    let lib = support::debug().lib("colour_ball_detector");
    // A ball larger than 1000 pixels is not a ball any more.
    let mut d = host::load_detector(&lib, &json!({"ball_max_area": 1000})).unwrap();
    let out = d.detect(&[frame(&bgr, w, h, 0)]).unwrap();
    assert!(out[0].iter().all(|d| d.class_id != CLASS_BALL), "{out:?}");
    // A typo is an error, reported with the plugin's words.
    let err = host::load_detector(&lib, &json!({"ball_max_aera": 1000}))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("unknown field `ball_max_aera`"),
        "{err}"
    );
}
