//! What the validator takes from the video itself: its size, the frames it can read and,
//! for every frame, the pitch-line segments of `detect_pitch_lines_tophat`
//! (`validator/evaluation/keypoint_scoring.py`), computed with the same OpenCV calls.

use std::collections::HashMap;
use std::path::Path;

use opencv::core::{self, Mat, Point, Scalar, Size, Vec4i, Vector};
use opencv::imgproc;
use opencv::prelude::*;
use opencv::videoio::{self, VideoCapture};

use crate::ScoreError;

/// A pitch-line segment `(x1, y1, x2, y2)` in pixels, as `HoughLinesP` returns it.
pub type Segment = [i32; 4];

/// The video side of the score: everything `evaluate_pending_responses` computes before
/// it looks at any answer.
#[derive(Debug, Clone)]
pub struct VideoEvidence {
    pub width: u32,
    pub height: u32,
    /// The frames the keypoint score validates. The validator keeps the frames its CLIP
    /// model calls "a football pitch"; CLIP cannot run here, so these are all the frames
    /// that decode (what the validator gets when CLIP accepts every frame).
    pub frames_to_validate: Vec<i64>,
    /// `pitch_lines_by_frame`: the kept segments of every decoded frame.
    pub lines: HashMap<i64, Vec<Segment>>,
}

impl VideoEvidence {
    /// Decode the video and detect the pitch lines of every frame.
    ///
    /// The validator loops `for idx in range(CAP_PROP_FRAME_COUNT)` with a seek
    /// (`CAP_PROP_POS_FRAMES`) before each read; this reads sequentially, which decodes the
    /// same frames for intra-coded and well-indexed files (checked on assets/vtest.avi:
    /// all 795 frames identical both ways) without a seek per frame.
    pub fn from_video(path: &Path) -> Result<Self, ScoreError> {
        let video_err = |m: String| ScoreError::Video(format!("{}: {m}", path.display()));
        let mut cap = VideoCapture::from_file(path, videoio::CAP_ANY)
            .map_err(|e| video_err(e.to_string()))?;
        if !cap.is_opened().unwrap_or(false) {
            return Err(video_err("cannot open".into()));
        }
        // `int(cap.get(...))`: truncation, as Python's int() of a float.
        let count = cap.get(videoio::CAP_PROP_FRAME_COUNT)?.max(0.0) as i64;
        let width = cap.get(videoio::CAP_PROP_FRAME_WIDTH)? as u32;
        let height = cap.get(videoio::CAP_PROP_FRAME_HEIGHT)? as u32;
        let mut frames_to_validate = Vec::new();
        let mut lines = HashMap::new();
        let mut frame = Mat::default();
        for idx in 0..count {
            if !cap.read(&mut frame)? || frame.empty() {
                break;
            }
            lines.insert(idx, detect_pitch_lines_tophat(&frame)?);
            frames_to_validate.push(idx);
        }
        Ok(Self {
            width,
            height,
            frames_to_validate,
            lines,
        })
    }
}

/// `detect_pitch_lines_tophat(frame)[5]` (`final_kept`): white top-hat lines on grass,
/// Canny + probabilistic Hough, kept when they lie on grass, drawn into a mask whose
/// border is cleared, kept when their midpoint is on that mask, then density-filtered.
///
/// `HoughLinesP` is randomised, but OpenCV seeds it with a local `RNG((uint64)-1)` on
/// every call (as it does RANSAC in `findHomography`), so no global state needs setting
/// for the results to match cv2's.
pub fn detect_pitch_lines_tophat(frame: &Mat) -> Result<Vec<Segment>, ScoreError> {
    const BORDER_IGNORE: i32 = 3;
    let (h, w) = (frame.rows(), frame.cols());
    let mut gray = Mat::default();
    imgproc::cvt_color_def(frame, &mut gray, imgproc::COLOR_BGR2GRAY)?;

    // 1) grass mask
    let mut hsv = Mat::default();
    imgproc::cvt_color_def(frame, &mut hsv, imgproc::COLOR_BGR2HSV)?;
    let mut grass_raw = Mat::default();
    core::in_range(
        &hsv,
        &Scalar::new(35.0, 40.0, 40.0, 0.0),
        &Scalar::new(85.0, 255.0, 255.0, 0.0),
        &mut grass_raw,
    )?;
    let ones = Mat::new_rows_cols_with_default(5, 5, core::CV_8U, Scalar::all(1.0))?;
    let mut grass = Mat::default();
    imgproc::morphology_ex_def(&grass_raw, &mut grass, imgproc::MORPH_OPEN, &ones)?;

    // 2) white lines: top-hat, threshold
    let kernel = imgproc::get_structuring_element_def(imgproc::MORPH_RECT, Size::new(31, 31))?;
    let mut tophat = Mat::default();
    imgproc::morphology_ex_def(&gray, &mut tophat, imgproc::MORPH_TOPHAT, &kernel)?;
    let mut white_lines = Mat::default();
    imgproc::threshold(
        &tophat,
        &mut white_lines,
        30.0,
        255.0,
        imgproc::THRESH_BINARY,
    )?;

    // 3) restricted to grass
    let mut masked = Mat::default();
    core::bitwise_and_def(&white_lines, &grass, &mut masked)?;

    // 4) Canny + HoughP
    let mut blur = Mat::default();
    imgproc::gaussian_blur_def(&masked, &mut blur, Size::new(5, 5), 0.0)?;
    let mut edges = Mat::default();
    imgproc::canny_def(&blur, &mut edges, 30.0, 100.0)?;
    let mut lines: Vector<Vec4i> = Vector::new();
    imgproc::hough_lines_p(
        &edges,
        &mut lines,
        1.0,
        std::f64::consts::PI / 360.0,
        30,
        10.0,
        15.0,
    )?;

    // 5) only segments whose 30 samples all lie on grass, drawn 2 px wide into the mask
    let mut line_mask = Mat::new_rows_cols_with_default(h, w, core::CV_8U, Scalar::all(0.0))?;
    let mut kept = Vec::new();
    for l in lines.iter() {
        let [x1, y1, x2, y2] = l.0;
        if line_on_mask(x1, y1, x2, y2, &grass, 30)? {
            imgproc::line(
                &mut line_mask,
                Point::new(x1, y1),
                Point::new(x2, y2),
                Scalar::all(255.0),
                2,
                imgproc::LINE_8,
                0,
            )?;
            kept.push([x1, y1, x2, y2]);
        }
    }

    // 6) clear the borders
    let b = BORDER_IGNORE.min(h).min(w);
    for r in (0..b).chain((h - b).max(0)..h) {
        line_mask.row_mut(r)?.set_to_def(&Scalar::all(0.0))?;
    }
    for c in (0..b).chain((w - b).max(0)..w) {
        line_mask.col_mut(c)?.set_to_def(&Scalar::all(0.0))?;
    }

    // 7) keep a segment when the mask is set at its midpoint (integer division)
    let mut final_kept = Vec::new();
    for s @ [x1, y1, x2, y2] in kept {
        let (mx, my) = ((x1 + x2).div_euclid(2), (y1 + y2).div_euclid(2));
        if (0..w).contains(&mx) && (0..h).contains(&my) && *line_mask.at_2d::<u8>(my, mx)? > 0 {
            final_kept.push(s);
        }
    }
    Ok(filter_by_density(&final_kept, 80.0, 80))
}

/// `line_on_mask`: `samples` points at `np.linspace(0, 1, samples)`, truncated to ints.
fn line_on_mask(
    x1: i32,
    y1: i32,
    x2: i32,
    y2: i32,
    mask: &Mat,
    samples: usize,
) -> Result<bool, ScoreError> {
    for t in linspace01(samples) {
        let x = (f64::from(x1) + f64::from(x2 - x1) * t) as i32;
        let y = (f64::from(y1) + f64::from(y2 - y1) * t) as i32;
        if *mask.at_2d::<u8>(y, x)? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `np.linspace(0, 1, n)`: `i * (1 / (n - 1))`, the last value exactly 1.
pub(crate) fn linspace01(n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![0.0];
    }
    let step = 1.0 / (n - 1) as f64;
    (0..n)
        .map(|i| if i == n - 1 { 1.0 } else { i as f64 * step })
        .collect()
}

/// `filter_by_density`: drop segments with more than `max_neighbors` midpoints (itself
/// included) within `radius` on both axes.
fn filter_by_density(kept: &[Segment], radius: f64, max_neighbors: usize) -> Vec<Segment> {
    let mids: Vec<(f64, f64)> = kept
        .iter()
        .map(|&[x1, y1, x2, y2]| (f64::from(x1 + x2) / 2.0, f64::from(y1 + y2) / 2.0))
        .collect();
    kept.iter()
        .zip(&mids)
        .filter(|(_, (mx, my))| {
            mids.iter()
                .filter(|(ux, uy)| (ux - mx).abs() < radius && (uy - my).abs() < radius)
                .count()
                <= max_neighbors
        })
        .map(|(s, _)| *s)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_matches_numpy() {
        let v = linspace01(30);
        assert_eq!(v.len(), 30);
        assert_eq!(v[0], 0.0);
        assert_eq!(v[29], 1.0);
        assert_eq!(v[1], 1.0 / 29.0);
    }

    #[test]
    fn segments_equal_the_validators_on_a_small_image() {
        // Grass (BGR 40,140,40) over a grey band, two greenish-white lines 3 px wide. The
        // expected segments are what the validator's detect_pitch_lines_tophat returns on
        // this image (opencv-python 4.6.0.66). Pure white lines would give none: white is
        // not in the grass hue/saturation range, so only lines tinted by the grass survive.
        let mut img = Mat::new_rows_cols_with_default(
            200,
            300,
            core::CV_8UC3,
            Scalar::new(40.0, 140.0, 40.0, 0.0),
        )
        .unwrap();
        let grey = core::Rect::new(0, 150, 300, 50);
        imgproc::rectangle(&mut img, grey, Scalar::all(128.0), -1, imgproc::LINE_8, 0).unwrap();
        let tint = Scalar::new(195.0, 235.0, 190.0, 0.0);
        imgproc::line(
            &mut img,
            Point::new(20, 60),
            Point::new(280, 70),
            tint,
            3,
            imgproc::LINE_8,
            0,
        )
        .unwrap();
        imgproc::line(
            &mut img,
            Point::new(20, 175),
            Point::new(280, 175),
            tint,
            3,
            imgproc::LINE_8,
            0,
        )
        .unwrap();
        let segs = detect_pitch_lines_tophat(&img).unwrap();
        let expected: Vec<Segment> = vec![
            [161, 68, 281, 72],
            [20, 177, 280, 177],
            [19, 58, 277, 67],
            [47, 63, 141, 67],
            [19, 62, 65, 64],
            [173, 68, 186, 68],
        ];
        assert_eq!(segs, expected);
    }
}
