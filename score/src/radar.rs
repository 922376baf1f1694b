//! The radar: a bird's-eye view of the pitch (true geometry, `template::markings`) with each
//! object of one frame as a dot where the analytics put it: players in their team's shirt
//! colour, referees black with a yellow rim, the ball white with a black rim, players
//! without a team grey; the camera's view a faint outline. [`overlay`] puts it into a video
//! frame (`--annotate`), with a ring in the same colour under each box.

use opencv::core::{Mat, Point, Rect, Scalar, Size, Vector};
use opencv::imgproc;
use opencv::prelude::*;

use crate::ScoreError;
use crate::analytics::{Analytics, FrameAnalytics, ObjectPosition};
use crate::scoring::Homography;
use crate::teams::{BALL, REFEREE};
use crate::template::{PITCH_LENGTH_M, PITCH_WIDTH_M, markings};

/// Margin around the pitch, in metres.
const MARGIN_M: f64 = 5.0;
/// The inset's width, as a share of the video frame's width.
const INSET_SHARE: f64 = 0.32;
/// How much of the inset is the radar (the rest the video under it).
const INSET_OPACITY: f64 = 0.85;

const GRASS: (f64, f64, f64) = (60.0, 120.0, 50.0);

fn bgr(c: [u8; 3]) -> Scalar {
    Scalar::new(f64::from(c[0]), f64::from(c[1]), f64::from(c[2]), 0.0)
}

/// An object's colours, the same on the radar and on the video: (fill, rim).
fn colours(a: &Analytics, o: &ObjectPosition) -> (Scalar, Scalar) {
    match (o.class_id, o.team) {
        (Some(c), _) if c == BALL => (Scalar::all(255.0), Scalar::all(0.0)),
        (Some(c), _) if c == REFEREE => (Scalar::all(20.0), Scalar::new(0.0, 220.0, 255.0, 0.0)),
        (_, Some(t)) => (
            bgr(a.team_colours_bgr[usize::from(t)].unwrap_or([128, 128, 128])),
            Scalar::all(0.0),
        ),
        _ => (Scalar::all(128.0), Scalar::all(0.0)),
    }
}

/// The size (w, h) of a radar drawn at `px_per_m`.
pub fn size(px_per_m: f64) -> (i32, i32) {
    (
        ((PITCH_LENGTH_M + 2.0 * MARGIN_M) * px_per_m).round() as i32,
        ((PITCH_WIDTH_M + 2.0 * MARGIN_M) * px_per_m).round() as i32,
    )
}

/// The radar of one frame, `px_per_m` pixels a metre (BGR).
pub fn draw(a: &Analytics, frame: &FrameAnalytics, px_per_m: f64) -> Result<Mat, ScoreError> {
    let (w, h) = size(px_per_m);
    let mut img = Mat::new_rows_cols_with_default(
        h,
        w,
        opencv::core::CV_8UC3,
        Scalar::new(GRASS.0, GRASS.1, GRASS.2, 0.0),
    )?;
    // 4 fractional bits, as the synthetic renderer draws.
    let at = |x: f64, y: f64| {
        Point::new(
            (((x + MARGIN_M) * px_per_m) * 16.0).round() as i32,
            (((y + MARGIN_M) * px_per_m) * 16.0).round() as i32,
        )
    };
    if let Some(hm) = &frame.homography {
        // What the camera sees, a little lighter: where the dots can be.
        let view: Vector<Point> = view_outline(hm, a.video.width, a.video.height)
            .into_iter()
            .map(|p| at(p[0], p[1]))
            .collect();
        if view.len() >= 3 {
            let mut lit = img.try_clone()?;
            imgproc::fill_poly(
                &mut lit,
                &Vector::<Vector<Point>>::from_iter([view]),
                Scalar::new(GRASS.0 + 25.0, GRASS.1 + 30.0, GRASS.2 + 25.0, 0.0),
                imgproc::LINE_AA,
                4,
                Point::default(),
            )?;
            img = lit;
        }
    }
    let white = Scalar::all(235.0);
    for line in markings() {
        let pts: Vector<Point> = line
            .iter()
            .map(|p| at(p[0] / 100.0, p[1] / 100.0))
            .collect();
        let mut polys = Vector::<Vector<Point>>::new();
        polys.push(pts);
        imgproc::polylines(&mut img, &polys, false, white, 1, imgproc::LINE_AA, 4)?;
    }
    let r = (0.9 * px_per_m).max(4.0);
    // The ball last, on top.
    let mut objects: Vec<&ObjectPosition> = frame.objects.iter().collect();
    objects.sort_by_key(|o| o.class_id == Some(BALL));
    for o in objects {
        let (Some(x), Some(y)) = (o.x, o.y) else {
            continue;
        };
        let (fill, rim) = colours(a, o);
        let radius = if o.class_id == Some(BALL) { r * 0.7 } else { r };
        let c = at(x, y);
        let rr = (radius * 16.0).round() as i32;
        imgproc::circle(&mut img, c, rr, fill, -1, imgproc::LINE_AA, 4)?;
        imgproc::circle(&mut img, c, rr, rim, 1, imgproc::LINE_AA, 4)?;
    }
    Ok(img)
}

/// The outline of the image on the pitch (m): points along the image's border mapped
/// through the homography, those beyond the horizon left out, clamped to the radar.
fn view_outline(hm: &Homography, width: u32, height: u32) -> Vec<[f64; 2]> {
    let (w, h) = (f64::from(width), f64::from(height));
    let n = 16;
    let mut border = Vec::with_capacity(4 * n);
    for i in 0..n {
        let s = i as f64 / n as f64;
        border.push([s * w, 0.0]);
    }
    for i in 0..n {
        let s = i as f64 / n as f64;
        border.push([w, s * h]);
    }
    for i in 0..n {
        let s = i as f64 / n as f64;
        border.push([w - s * w, h]);
    }
    for i in 0..n {
        let s = i as f64 / n as f64;
        border.push([0.0, h - s * h]);
    }
    border
        .into_iter()
        .filter_map(|p| {
            let z = hm[2][0] * p[0] + hm[2][1] * p[1] + hm[2][2];
            // A little short of the horizon, where the image meets the sky or the stands.
            (z > 1e-9).then(|| {
                let x = (hm[0][0] * p[0] + hm[0][1] * p[1] + hm[0][2]) / z;
                let y = (hm[1][0] * p[0] + hm[1][1] * p[1] + hm[1][2]) / z;
                [
                    x.clamp(-MARGIN_M, PITCH_LENGTH_M + MARGIN_M),
                    y.clamp(-MARGIN_M, PITCH_WIDTH_M + MARGIN_M),
                ]
            })
        })
        .collect()
}

/// Where [`overlay`] puts the radar in a `width` × `height` frame, and its scale (px/m):
/// centred at the bottom, `INSET_SHARE` of the width.
pub fn inset_rect(width: i32, height: i32) -> (Rect, f64) {
    let px_per_m = f64::from(width) * INSET_SHARE / (PITCH_LENGTH_M + 2.0 * MARGIN_M);
    let (w, h) = size(px_per_m);
    let margin = (f64::from(height) * 0.02).round() as i32;
    (
        Rect::new((width - w) / 2, height - h - margin, w, h),
        px_per_m,
    )
}

/// Draws onto a video frame what the analytics say of it: a ring in each object's colour
/// at the foot of its box, and, when the frame has a homography, the radar as an inset at
/// the bottom centre.
pub fn overlay(a: &Analytics, frame: &FrameAnalytics, img: &mut Mat) -> Result<(), ScoreError> {
    for o in &frame.objects {
        let b = o.bbox;
        let (fill, _) = colours(a, o);
        // A little wider than the box: legible under the feet of a distant player.
        let w = (b[2] - b[0]).max(4.0) * 1.3;
        // An ellipse on the ground, open at the back, as broadcast graphics draw it.
        let centre = Point::new(
            (((b[0] + b[2]) / 2.0) * 16.0).round() as i32,
            (b[3] * 16.0).round() as i32,
        );
        let axes = Size::new(
            (w / 2.0 * 16.0).round() as i32,
            (w * 0.175 * 16.0).round() as i32,
        );
        let thickness = if w >= 24.0 { 3 } else { 2 };
        imgproc::ellipse(
            img,
            centre,
            axes,
            0.0,
            -45.0,
            235.0,
            fill,
            thickness,
            imgproc::LINE_AA,
            4,
        )?;
    }
    if frame.homography.is_none() {
        return Ok(());
    }
    let (rect, px_per_m) = inset_rect(img.cols(), img.rows());
    if rect.x < 0 || rect.y < 0 || rect.width < 8 || rect.height < 8 {
        return Ok(());
    }
    let radar = draw(a, frame, px_per_m)?;
    let mut roi = Mat::roi_mut(img, rect)?;
    let under = roi.try_clone()?;
    opencv::core::add_weighted(
        &radar,
        INSET_OPACITY,
        &under,
        1.0 - INSET_OPACITY,
        0.0,
        &mut roi,
        -1,
    )?;
    imgproc::rectangle(img, rect, Scalar::all(235.0), 1, imgproc::LINE_8, 0)?;
    Ok(())
}

/// Draws the radar of frame `number` (the first frame with a homography if `None`) and
/// writes it as a PNG; returns the frame drawn.
pub fn write_png(
    a: &Analytics,
    number: Option<i64>,
    path: &std::path::Path,
) -> Result<i64, ScoreError> {
    let frame = match number {
        Some(n) => a.frames.iter().find(|f| f.frame_number == n),
        None => a.frames.iter().find(|f| f.homography.is_some()),
    }
    .ok_or_else(|| {
        ScoreError::Answer(match number {
            Some(n) => format!("the radar: frame {n} is not in the answer"),
            None => "the radar: no frame has a homography".into(),
        })
    })?;
    let img = draw(a, frame, 8.0)?;
    let written = opencv::imgcodecs::imwrite_def(path, &img)?;
    if !written {
        return Err(ScoreError::Video(format!(
            "{}: cannot write the PNG",
            path.display()
        )));
    }
    Ok(frame.frame_number)
}
