//! The detector's JSON parameters. Every field is optional; unknown fields are an error so
//! that a typo in a deployment file does not silently fall back to a default.

use pitchside_plugin::PluginError;
use pitchside_plugin::serde_json::{self, Value};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Pitch green, HSV: hue range in degrees (0..360), minimum saturation and value (0..1).
    pub hue_min: f32,
    pub hue_max: f32,
    pub sat_min: f32,
    pub val_min: f32,
    /// Side of the square window in which a pixel's green density is measured; a pixel
    /// belongs to solid pitch when at least `density_min` of its window is green. This
    /// ignores stray green pixels in the stands.
    pub density_window: u32,
    pub density_min: f32,
    /// Solid-green regions smaller than this fraction of the frame are not pitch (green
    /// advertising, shirts).
    pub min_pitch_fraction: f32,
    /// Width of the median filter, as a fraction of the frame width, that smooths the
    /// pitch's top and bottom edge per column, so that a player standing on the far
    /// touchline does not dent the pitch outline.
    pub edge_window_fraction: f32,
    /// Morphological opening radius (pixels) on the non-green mask: removes pitch lines and
    /// noise thinner than `2 * open_radius + 1`.
    pub open_radius: u32,
    /// Closing radius (pixels): reconnects fragments of one object.
    pub close_radius: u32,
    /// Ball: area range in pixels, maximum bounding-box aspect (long side / short side),
    /// minimum fill of its bounding box (a disc fills pi/4), minimum mean brightness (0..1).
    pub ball_min_area: u32,
    pub ball_max_area: u32,
    pub ball_max_aspect: f32,
    pub ball_min_fill: f32,
    pub ball_min_value: f32,
    /// Player: area range in pixels, height/width range, minimum fill.
    pub player_min_area: u32,
    pub player_max_area: u32,
    pub player_min_aspect: f32,
    pub player_max_aspect: f32,
    pub player_min_fill: f32,
    /// Detections scoring below this are dropped.
    pub min_score: f32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            hue_min: 70.0,
            hue_max: 170.0,
            sat_min: 0.25,
            val_min: 0.2,
            density_window: 9,
            density_min: 0.5,
            min_pitch_fraction: 0.01,
            edge_window_fraction: 0.25,
            open_radius: 2,
            close_radius: 1,
            ball_min_area: 12,
            ball_max_area: 4000,
            ball_max_aspect: 1.5,
            ball_min_fill: 0.65,
            ball_min_value: 0.45,
            player_min_area: 150,
            player_max_area: 60000,
            player_min_aspect: 0.7,
            player_max_aspect: 6.0,
            player_min_fill: 0.25,
            min_score: 0.3,
        }
    }
}

impl Params {
    /// Reads params from the deployment's JSON; `null` or `{}` gives the defaults.
    pub fn from_json(value: &Value) -> Result<Params, PluginError> {
        let params = if value.is_null() {
            Params::default()
        } else if !value.is_object() {
            // serde would read an array positionally, which nobody means.
            return Err(PluginError::InvalidParams(
                "parameters must be a JSON object".to_owned(),
            ));
        } else {
            serde_json::from_value(value.clone())
                .map_err(|e| PluginError::InvalidParams(e.to_string()))?
        };
        params.check()?;
        Ok(params)
    }

    fn check(&self) -> Result<(), PluginError> {
        let bad = |m: &str| Err(PluginError::InvalidParams(m.to_owned()));
        let unit = |v: f32| (0.0..=1.0).contains(&v);
        // JSON has no NaN, so plain comparisons are enough.
        if self.hue_min >= self.hue_max {
            return bad("hue_min must be less than hue_max");
        }
        if ![
            self.sat_min,
            self.val_min,
            self.density_min,
            self.min_pitch_fraction,
            self.edge_window_fraction,
            self.ball_min_fill,
            self.ball_min_value,
            self.player_min_fill,
            self.min_score,
        ]
        .into_iter()
        .all(unit)
        {
            return bad(
                "sat_min, val_min, density_min, min_pitch_fraction, edge_window_fraction, \
                 *_fill, ball_min_value and min_score must lie in 0..=1",
            );
        }
        if self.density_window == 0 {
            return bad("density_window must be at least 1");
        }
        if self.ball_min_area > self.ball_max_area || self.player_min_area > self.player_max_area {
            return bad("a min area exceeds its max area");
        }
        if self.ball_max_aspect < 1.0 {
            return bad("ball_max_aspect must be at least 1");
        }
        if self.player_min_aspect <= 0.0 || self.player_min_aspect > self.player_max_aspect {
            return bad("player_min_aspect must be positive and at most player_max_aspect");
        }
        Ok(())
    }
}
