//! A well-behaved detector that the entry-point examples wrap in broken descriptors.

use pitchside_plugin::sdk::{DetectorPlugin, detector_info};
use pitchside_plugin::{Detection, Detector, FrameRef, PluginError, PluginInfo};

pub struct Whole;

impl Detector for Whole {
    fn info(&self) -> PluginInfo {
        detector_info::<Self>()
    }

    fn detect(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Vec<Detection>>, PluginError> {
        Ok(frames
            .iter()
            .map(|f| {
                vec![Detection {
                    bbox: [0.0, 0.0, f.width as f32, f.height as f32],
                    score: 1.0,
                    class_id: 0,
                    keypoints: vec![],
                }]
            })
            .collect())
    }
}

impl DetectorPlugin for Whole {
    const NAME: &'static str = "whole-frame";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn from_params(_: &pitchside_plugin::serde_json::Value) -> Result<Self, PluginError> {
        Ok(Whole)
    }
}

/// A valid descriptor for [`Whole`], to copy and break.
pub fn valid_descriptor() -> pitchside_plugin::abi::PsPluginDescriptor {
    static CELL: pitchside_plugin::sdk::DescriptorCell =
        pitchside_plugin::sdk::DescriptorCell::new();
    // SAFETY: the SDK returns a pointer to a static descriptor.
    unsafe { *pitchside_plugin::sdk::detector_entry::<Whole>(&CELL) }
}
