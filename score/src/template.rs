//! The validator's pitch template: `SoccerPitchConfiguration` of score-vision's
//! `miner/sports/configs/soccer.py`, in centimetres, x along the length (0..12000),
//! y along the width (0..7000), in the validator's keypoint order.
//!
//! The one place the pitch's geometry lives: the score uses it through
//! [`scaled_vertices`] (the validator's crossed axes, mirrored on purpose), the analytics
//! and the synthetic clip through [`vertices_m`] and [`markings`] (true geometry).

/// Pitch width in cm (`SoccerPitchConfiguration.width`).
pub const PITCH_WIDTH: f64 = 7000.0;
/// Pitch length in cm (`SoccerPitchConfiguration.length`).
pub const PITCH_LENGTH: f64 = 12000.0;

const PENALTY_BOX_WIDTH: f64 = 4100.0;
const PENALTY_BOX_LENGTH: f64 = 2015.0;
const GOAL_BOX_WIDTH: f64 = 1832.0;
const GOAL_BOX_LENGTH: f64 = 550.0;
const CENTRE_CIRCLE_RADIUS: f64 = 915.0;
const PENALTY_SPOT_DISTANCE: f64 = 1100.0;

/// Number of template vertices (and of keypoints the validator expects per frame).
pub const KEYPOINT_COUNT: usize = 32;

/// The 32 vertices, in the validator's order (its labels 01..32).
pub fn vertices() -> [[f64; 2]; KEYPOINT_COUNT] {
    let (w, l) = (PITCH_WIDTH, PITCH_LENGTH);
    let (pbw, pbl) = (PENALTY_BOX_WIDTH, PENALTY_BOX_LENGTH);
    let (gbw, gbl) = (GOAL_BOX_WIDTH, GOAL_BOX_LENGTH);
    let (r, ps) = (CENTRE_CIRCLE_RADIUS, PENALTY_SPOT_DISTANCE);
    [
        [0.0, 0.0],
        [0.0, (w - pbw) / 2.0],
        [0.0, (w - gbw) / 2.0],
        [0.0, (w + gbw) / 2.0],
        [0.0, (w + pbw) / 2.0],
        [0.0, w],
        [gbl, (w - gbw) / 2.0],
        [gbl, (w + gbw) / 2.0],
        [ps, w / 2.0],
        [pbl, (w - pbw) / 2.0],
        [pbl, (w - gbw) / 2.0],
        [pbl, (w + gbw) / 2.0],
        [pbl, (w + pbw) / 2.0],
        [l / 2.0, 0.0],
        [l / 2.0, w / 2.0 - r],
        [l / 2.0, w / 2.0 + r],
        [l / 2.0, w],
        [l - pbl, (w - pbw) / 2.0],
        [l - pbl, (w - gbw) / 2.0],
        [l - pbl, (w + gbw) / 2.0],
        [l - pbl, (w + pbw) / 2.0],
        [l - ps, w / 2.0],
        [l - gbl, (w - gbw) / 2.0],
        [l - gbl, (w + gbw) / 2.0],
        [l, 0.0],
        [l, (w - pbw) / 2.0],
        [l, (w - gbw) / 2.0],
        [l, (w + gbw) / 2.0],
        [l, (w + pbw) / 2.0],
        [l, w],
        [l / 2.0 - r, w / 2.0],
        [l / 2.0 + r, w / 2.0],
    ]
}

/// Pitch length in metres (true geometry, x).
pub const PITCH_LENGTH_M: f64 = PITCH_LENGTH / 100.0;
/// Pitch width in metres (true geometry, y).
pub const PITCH_WIDTH_M: f64 = PITCH_WIDTH / 100.0;

/// The 32 vertices in metres with true geometry: x along the length (0..120), y across
/// (0..70), in the validator's order.
pub fn vertices_m() -> [[f64; 2]; KEYPOINT_COUNT] {
    vertices().map(|[x, y]| [x / 100.0, y / 100.0])
}

/// The pitch markings as polylines in cm (true geometry): outline, halfway line, penalty
/// and goal areas, centre circle and the penalty arcs.
pub fn markings() -> Vec<Vec<[f64; 2]>> {
    let (l, w) = (PITCH_LENGTH, PITCH_WIDTH);
    let rect =
        |x0: f64, y0: f64, x1: f64, y1: f64| vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]];
    let arc = |cx: f64, cy: f64, r: f64, a0: f64, a1: f64| {
        (0..=64)
            .map(|i| {
                let a = a0 + (a1 - a0) * f64::from(i) / 64.0;
                [cx + r * a.cos(), cy + r * a.sin()]
            })
            .collect::<Vec<_>>()
    };
    let (pbw, pbl, gbw, gbl) = (
        PENALTY_BOX_WIDTH,
        PENALTY_BOX_LENGTH,
        GOAL_BOX_WIDTH,
        GOAL_BOX_LENGTH,
    );
    let (r, ps) = (CENTRE_CIRCLE_RADIUS, PENALTY_SPOT_DISTANCE);
    let pi = std::f64::consts::PI;
    // The arc of each penalty area: the circle around the spot, outside the box.
    let a = ((pbl - ps) / r).acos();
    vec![
        rect(0.0, 0.0, l, w),
        vec![[l / 2.0, 0.0], [l / 2.0, w]],
        rect(0.0, (w - pbw) / 2.0, pbl, (w + pbw) / 2.0),
        rect(l - pbl, (w - pbw) / 2.0, l, (w + pbw) / 2.0),
        rect(0.0, (w - gbw) / 2.0, gbl, (w + gbw) / 2.0),
        rect(l - gbl, (w - gbw) / 2.0, l, (w + gbw) / 2.0),
        arc(l / 2.0, w / 2.0, r, 0.0, 2.0 * pi),
        arc(ps, w / 2.0, r, -a, a),
        arc(l - ps, w / 2.0, r, pi - a, pi + a),
    ]
}

/// The template scaled "to the image" the way `estimate_homography_ransac` does it.
///
/// Mirrors a validator quirk: x (which runs along the 12000 cm length) is scaled by
/// `video_width / 7000` (the pitch *width*) and y (along the 7000 cm width) by
/// `video_height / 12000` (the *length*), so the target is a 12/7-wide, 7/12-high
/// stretched pitch, not the image. A homography absorbs any such scaling, so exact
/// keypoints still reproject with zero error; only the error's pixel unit is skewed.
/// The vertices go through float32 first, as in the validator (all are exact in f32).
pub fn scaled_vertices(video_width: f64, video_height: f64) -> [[f64; 2]; KEYPOINT_COUNT] {
    let scale_x = video_width / PITCH_WIDTH;
    let scale_y = video_height / PITCH_LENGTH;
    vertices().map(|[x, y]| [f64::from(x as f32) * scale_x, f64::from(y as f32) * scale_y])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_matches_the_validator_configuration() {
        let v = vertices();
        assert_eq!(v[1], [0.0, 1450.0]);
        assert_eq!(v[8], [1100.0, 3500.0]);
        assert_eq!(v[29], [12000.0, 7000.0]);
        assert_eq!(v[31], [6915.0, 3500.0]);
        let s = scaled_vertices(1280.0, 720.0);
        assert!((s[29][0] - 12000.0 * 1280.0 / 7000.0).abs() < 1e-9);
        assert!((s[29][1] - 7000.0 * 720.0 / 12000.0).abs() < 1e-9);
    }
}
