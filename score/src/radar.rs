//! The radar: a bird's-eye view of the pitch (true geometry, `template::markings`) with each
//! object of one frame as a dot where the analytics put it: players in their team's shirt
//! colour, referees black with a yellow rim, the ball white with a black rim, players
//! without a team grey.

use opencv::core::{Mat, Point, Scalar, Vector};
use opencv::imgproc;

use crate::ScoreError;
use crate::analytics::{Analytics, FrameAnalytics};
use crate::teams::{BALL, REFEREE};
use crate::template::{PITCH_LENGTH_M, PITCH_WIDTH_M, markings};

/// Margin around the pitch, in metres.
const MARGIN_M: f64 = 5.0;

/// The radar of one frame, `px_per_m` pixels a metre (BGR).
pub fn draw(a: &Analytics, frame: &FrameAnalytics, px_per_m: f64) -> Result<Mat, ScoreError> {
    let w = ((PITCH_LENGTH_M + 2.0 * MARGIN_M) * px_per_m).round() as i32;
    let h = ((PITCH_WIDTH_M + 2.0 * MARGIN_M) * px_per_m).round() as i32;
    let mut img = Mat::new_rows_cols_with_default(
        h,
        w,
        opencv::core::CV_8UC3,
        Scalar::new(60.0, 120.0, 50.0, 0.0),
    )?;
    // 4 fractional bits, as the synthetic renderer draws.
    let at = |x: f64, y: f64| {
        Point::new(
            (((x + MARGIN_M) * px_per_m) * 16.0).round() as i32,
            (((y + MARGIN_M) * px_per_m) * 16.0).round() as i32,
        )
    };
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
    let r = (0.9 * px_per_m).max(3.0);
    for o in &frame.objects {
        let (Some(x), Some(y)) = (o.x, o.y) else {
            continue;
        };
        let (fill, rim, radius) = match (o.class_id, o.team) {
            (Some(c), _) if c == BALL => (white, Scalar::all(0.0), r * 0.6),
            (Some(c), _) if c == REFEREE => {
                (Scalar::all(20.0), Scalar::new(0.0, 220.0, 255.0, 0.0), r)
            }
            (_, Some(t)) => {
                let c = a.team_colours_bgr[usize::from(t)].unwrap_or([128, 128, 128]);
                (
                    Scalar::new(f64::from(c[0]), f64::from(c[1]), f64::from(c[2]), 0.0),
                    Scalar::all(0.0),
                    r,
                )
            }
            _ => (Scalar::all(128.0), Scalar::all(0.0), r),
        };
        let c = at(x, y);
        let rr = (radius * 16.0).round() as i32;
        imgproc::circle(&mut img, c, rr, fill, -1, imgproc::LINE_AA, 4)?;
        imgproc::circle(&mut img, c, rr, rim, 1, imgproc::LINE_AA, 4)?;
    }
    Ok(img)
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
