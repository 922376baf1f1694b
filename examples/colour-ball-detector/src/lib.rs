//! An example Pitchside detector plugin: finds the ball and players by colour alone.
//!
//! 1. Pixels are thresholded in HSV to find pitch green.
//! 2. The pitch is the large regions of solid green, taken per column from its top to its
//!    bottom edge (edges median-smoothed so players do not dent them).
//! 3. Non-green pixels inside the pitch are opened (removing pitch lines and noise) and
//!    closed (joining fragments), then split into 8-connected components.
//! 4. Small, round, well-filled, bright blobs are the ball (class 0); blobs taller than wide
//!    (within limits) are players (class 2). The score mixes shape (fill ratio, roundness)
//!    with contrast: how much of a ring around the blob is pitch green.
//!
//! Build it as a plugin with `cargo build -p colour-ball-detector --release`; the library is
//! `libcolour_ball_detector.so` (`.dylib`, `.dll`). The type also implements
//! [`Detector`] directly, for tests and in-process use.

use std::f32::consts::FRAC_PI_4;

use pitchside_plugin::sdk::{DetectorPlugin, detector_info};
use pitchside_plugin::{Detection, Detector, FrameRef, PluginError, PluginInfo};

mod params;
pub mod segment;

pub use params::Params;
use segment::{Integral, Mask, classify_colours, components, dilate, erode, pitch_span};

/// Score Vision class ids.
pub const CLASS_BALL: u32 = 0;
pub const CLASS_PLAYER: u32 = 2;

pub struct ColourBallDetector {
    params: Params,
}

impl ColourBallDetector {
    pub fn new(params: Params) -> Self {
        ColourBallDetector { params }
    }

    pub fn params(&self) -> &Params {
        &self.params
    }
}

impl Detector for ColourBallDetector {
    fn info(&self) -> PluginInfo {
        detector_info::<Self>()
    }

    fn detect(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Vec<Detection>>, PluginError> {
        frames
            .iter()
            .map(|f| {
                f.validate()?;
                Ok(detect_frame(f, &self.params))
            })
            .collect()
    }
}

impl DetectorPlugin for ColourBallDetector {
    const NAME: &'static str = "colour-ball-detector";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn from_params(params: &pitchside_plugin::serde_json::Value) -> Result<Self, PluginError> {
        Ok(ColourBallDetector::new(Params::from_json(params)?))
    }
}

pitchside_plugin::export_detector!(ColourBallDetector);

/// Detections in one frame, by descending score.
pub fn detect_frame(frame: &FrameRef<'_>, p: &Params) -> Vec<Detection> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    if w == 0 || h == 0 {
        return Vec::new();
    }
    let colour = classify_colours(frame, p);
    let Some(pitch) = pitch_span(&colour.green, p) else {
        return Vec::new();
    };
    let mut candidates = Mask::new(w, h);
    for y in 0..h {
        for x in 0..w {
            candidates.set(x, y, pitch.contains(x, y) && !colour.green.get(x, y));
        }
    }
    let (open, close) = (p.open_radius as usize, p.close_radius as usize);
    let opened = dilate(&erode(&candidates, open), open);
    let mut blobs = erode(&dilate(&opened, close), close);
    // Closing may spill past the pitch edge; objects are judged on their pitch part.
    for y in 0..h {
        for x in 0..w {
            if !pitch.contains(x, y) {
                blobs.set(x, y, false);
            }
        }
    }
    let (parts, _) = components(&blobs, Some(&colour.value));
    let green = Integral::new(&colour.green);
    let mut detections: Vec<Detection> = parts
        .iter()
        .filter_map(|c| classify(c, &green, w, h, p))
        .collect();
    // Stable, so equal scores keep their (raster) order and output is deterministic.
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    detections
}

/// Ball, player or nothing, with a score in 0..=1.
fn classify(
    c: &segment::Component,
    green: &Integral,
    w: usize,
    h: usize,
    p: &Params,
) -> Option<Detection> {
    let (bw, bh) = (c.width() as f32, c.height() as f32);
    let area = c.area as u32;
    let fill = c.area as f32 / (bw * bh);
    let brightness = c.value_sum as f32 / c.area as f32 / 255.0;
    let elongation = bw.max(bh) / bw.min(bh);
    let contrast = surround_green(c, green, w, h);

    let (class_id, score) = if (p.ball_min_area..=p.ball_max_area).contains(&area)
        && elongation <= p.ball_max_aspect
        && fill >= p.ball_min_fill
        && brightness >= p.ball_min_value
    {
        // A disc fills pi/4 of its box.
        let roundness = 1.0 - ((fill - FRAC_PI_4).abs() / FRAC_PI_4).min(1.0);
        let squareness = 1.0 / elongation;
        (
            CLASS_BALL,
            0.4 * roundness + 0.3 * squareness + 0.3 * contrast,
        )
    } else if (p.player_min_area..=p.player_max_area).contains(&area)
        && (p.player_min_aspect..=p.player_max_aspect).contains(&(bh / bw))
        && fill >= p.player_min_fill
    {
        // A person fills roughly half of their box.
        (CLASS_PLAYER, 0.5 * (fill / 0.5).min(1.0) + 0.5 * contrast)
    } else {
        return None;
    };
    (score >= p.min_score).then(|| Detection {
        bbox: [c.x0 as f32, c.y0 as f32, c.x1 as f32, c.y1 as f32],
        score,
        class_id,
        keypoints: Vec::new(),
    })
}

/// Fraction of a ring around the blob's box (a quarter of its short side wide, at least 2
/// pixels) that is pitch green: an object on the pitch is surrounded by grass.
fn surround_green(c: &segment::Component, green: &Integral, w: usize, h: usize) -> f32 {
    let margin = (c.width().min(c.height()) / 4).max(2);
    let (x0, y0) = (c.x0.saturating_sub(margin), c.y0.saturating_sub(margin));
    let (x1, y1) = ((c.x1 + margin).min(w), (c.y1 + margin).min(h));
    let ring_area = (x1 - x0) * (y1 - y0) - c.width() * c.height();
    if ring_area == 0 {
        return 0.0;
    }
    let ring_green = green.sum(x0, y0, x1, y1) - green.sum(c.x0, c.y0, c.x1, c.y1);
    ring_green as f32 / ring_area as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use pitchside_plugin::PixelFormat;
    use pitchside_plugin::serde_json::json;

    const GRASS: [u8; 3] = [40, 140, 50];
    const BALL: [u8; 3] = [240, 240, 230];
    const KIT: [u8; 3] = [160, 20, 30];
    const STANDS: [u8; 3] = [60, 60, 70];

    /// An RGB scene: stands on top, grass below, a white disc and a red upright rectangle
    /// on the grass.
    struct Scene {
        width: usize,
        height: usize,
        rgb: Vec<u8>,
    }

    impl Scene {
        fn new(width: usize, height: usize) -> Scene {
            let mut s = Scene {
                width,
                height,
                rgb: vec![0; width * height * 3],
            };
            for y in 0..height {
                for x in 0..width {
                    s.put(x, y, if y < height / 4 { STANDS } else { GRASS });
                }
            }
            s
        }

        fn put(&mut self, x: usize, y: usize, c: [u8; 3]) {
            let i = (y * self.width + x) * 3;
            self.rgb[i..i + 3].copy_from_slice(&c);
        }

        fn disc(&mut self, cx: f32, cy: f32, r: f32, c: [u8; 3]) {
            for y in 0..self.height {
                for x in 0..self.width {
                    let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                    if dx * dx + dy * dy <= r * r {
                        self.put(x, y, c);
                    }
                }
            }
        }

        fn rect(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, c: [u8; 3]) {
            for y in y0..y1 {
                for x in x0..x1 {
                    self.put(x, y, c);
                }
            }
        }

        /// The scene in `format`, rows padded to `stride` bytes.
        fn bytes(&self, format: PixelFormat, stride: usize) -> Vec<u8> {
            let mut out = vec![0u8; stride * self.height];
            for y in 0..self.height {
                for x in 0..self.width {
                    let i = (y * self.width + x) * 3;
                    let px = &self.rgb[i..i + 3];
                    let o = y * stride + x * 3;
                    let px = match format {
                        PixelFormat::Rgb8 => [px[0], px[1], px[2]],
                        PixelFormat::Bgr8 => [px[2], px[1], px[0]],
                    };
                    out[o..o + 3].copy_from_slice(&px);
                }
            }
            out
        }
    }

    fn frame<'a>(s: &Scene, data: &'a [u8], format: PixelFormat, stride: usize) -> FrameRef<'a> {
        FrameRef {
            data,
            width: s.width as u32,
            height: s.height as u32,
            row_stride: stride,
            format,
            frame_number: 7,
        }
    }

    fn scene() -> Scene {
        let mut s = Scene::new(320, 200);
        s.disc(100.0, 150.0, 6.0, BALL);
        s.rect(200, 90, 216, 140, KIT);
        // A pitch line: thin, long, white; must not be detected.
        s.rect(0, 180, 320, 182, BALL);
        s
    }

    fn run(s: &Scene, format: PixelFormat, stride: usize) -> Vec<Detection> {
        let data = s.bytes(format, stride);
        let mut d = ColourBallDetector::new(Params::default());
        let mut out = d.detect(&[frame(s, &data, format, stride)]).unwrap();
        out.pop().unwrap()
    }

    #[test]
    fn finds_the_ball_and_the_player() {
        let dets = run(&scene(), PixelFormat::Rgb8, 320 * 3);
        assert_eq!(dets.len(), 2, "{dets:?}");
        let ball = dets.iter().find(|d| d.class_id == CLASS_BALL).unwrap();
        // The opening rounds the disc's edge by a pixel or so.
        let [x1, y1, x2, y2] = ball.bbox;
        assert!(((x1 + x2) / 2.0 - 100.0).abs() <= 1.0 && ((y1 + y2) / 2.0 - 150.0).abs() <= 1.0);
        assert!((9.0..=12.0).contains(&(x2 - x1)), "{ball:?}");
        assert!(ball.score > 0.8, "{ball:?}");
        let player = dets.iter().find(|d| d.class_id == CLASS_PLAYER).unwrap();
        assert_eq!(player.bbox, [200.0, 90.0, 216.0, 140.0]);
        assert!(player.score > 0.8, "{player:?}");
        assert!(dets[0].score >= dets[1].score);
    }

    #[test]
    fn pixel_format_and_stride_do_not_change_the_result() {
        let s = scene();
        let rgb = run(&s, PixelFormat::Rgb8, 320 * 3);
        assert_eq!(run(&s, PixelFormat::Bgr8, 320 * 3), rgb);
        assert_eq!(run(&s, PixelFormat::Bgr8, 320 * 3 + 13), rgb);
    }

    #[test]
    fn objects_off_the_pitch_are_ignored() {
        let mut s = Scene::new(320, 200);
        // A white disc in the stands is not on the pitch.
        s.disc(100.0, 20.0, 6.0, BALL);
        assert!(run(&s, PixelFormat::Rgb8, 320 * 3).is_empty());
    }

    #[test]
    fn no_pitch_means_no_detections() {
        let mut s = Scene::new(64, 64);
        s.rect(0, 0, 64, 64, STANDS);
        s.disc(30.0, 30.0, 6.0, BALL);
        assert!(run(&s, PixelFormat::Rgb8, 64 * 3).is_empty());
    }

    #[test]
    fn batches_give_one_list_per_frame() {
        let s = scene();
        let empty = Scene::new(320, 200);
        let (a, b) = (
            s.bytes(PixelFormat::Bgr8, 960),
            empty.bytes(PixelFormat::Bgr8, 960),
        );
        let mut d = ColourBallDetector::new(Params::default());
        let out = d
            .detect(&[
                frame(&s, &a, PixelFormat::Bgr8, 960),
                frame(&empty, &b, PixelFormat::Bgr8, 960),
            ])
            .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), 2);
        assert!(out[1].is_empty());
    }

    #[test]
    fn short_buffers_are_rejected_not_read() {
        let s = scene();
        let data = s.bytes(PixelFormat::Rgb8, 960);
        let mut d = ColourBallDetector::new(Params::default());
        let f = frame(&s, &data[..data.len() - 1], PixelFormat::Rgb8, 960);
        assert!(matches!(d.detect(&[f]), Err(PluginError::InvalidInput(_))));
    }

    #[test]
    fn params_default_override_and_reject() {
        let d = ColourBallDetector::from_params(&json!({})).unwrap();
        assert_eq!(d.params(), &Params::default());
        let d =
            ColourBallDetector::from_params(&pitchside_plugin::serde_json::Value::Null).unwrap();
        assert_eq!(d.params(), &Params::default());
        let d = ColourBallDetector::from_params(&json!({"ball_max_area": 50})).unwrap();
        assert_eq!(d.params().ball_max_area, 50);
        for bad in [
            json!({"ball_max_aera": 50}),
            json!({"sat_min": 2.0}),
            json!({"hue_min": 200, "hue_max": 100}),
            json!({"ball_min_area": 10, "ball_max_area": 5}),
            json!([1, 2]),
        ] {
            let err = ColourBallDetector::from_params(&bad).err().unwrap();
            assert!(matches!(err, PluginError::InvalidParams(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn a_stricter_ball_size_drops_the_ball() {
        let s = scene();
        let data = s.bytes(PixelFormat::Rgb8, 960);
        let mut d = ColourBallDetector::from_params(&json!({"ball_max_area": 50})).unwrap();
        let out = d
            .detect(&[frame(&s, &data, PixelFormat::Rgb8, 960)])
            .unwrap();
        assert!(out[0].iter().all(|d| d.class_id != CLASS_BALL), "{out:?}");
    }

    #[test]
    fn plugin_info_names_the_plugin() {
        let d = ColourBallDetector::new(Params::default());
        assert_eq!(d.info().name, "colour-ball-detector");
        assert_eq!(d.num_keypoints(), 0);
    }
}
