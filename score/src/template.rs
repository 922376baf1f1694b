//! The validator's pitch template: `SoccerPitchConfiguration` of score-vision's
//! `miner/sports/configs/soccer.py`, in centimetres, x along the length (0..12000),
//! y along the width (0..7000), in the validator's keypoint order.

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
