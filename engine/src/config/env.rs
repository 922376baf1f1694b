//! Environment overrides, in the names the Python miner's operators already use. They
//! become a [`ProfilePatch`], laid over the profile after the deployment file's.

use std::collections::BTreeMap;

use super::error::ConfigError;
use super::image_size::ImageSize;
use super::profile::{FrameConversion, ImageSizesPatch, ProfilePatch, limits};
use crate::device::DeviceRequest;

/// Reads environment variables; tests pass a map instead of touching the process.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for BTreeMap<&str, &str> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).map(|s| s.to_string())
    }
}

impl Env for [(&str, &str)] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

/// What the environment overrides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvOverrides {
    /// `PITCHSIDE_DEVICE`.
    pub device: Option<DeviceRequest>,
    /// `IMG_SIZE` (every role), `BATCH_SIZE`, `FRAME_STRIDE`, `PREFETCH_FRAMES`,
    /// `CONF_THRESHOLD`, `MAX_DETECTIONS`, `DECODE_THREADS`, `FRAME_CONVERSION`. A size set here also beats a model's pinned
    /// `imgsz`, as `IMG_SIZE` does in the Python miner.
    pub profile: ProfilePatch,
}

impl EnvOverrides {
    pub fn read(env: &(impl Env + ?Sized)) -> Result<EnvOverrides, ConfigError> {
        fn var<T>(
            env: &(impl Env + ?Sized),
            var: &'static str,
            expected: impl Into<String>,
            parse: impl Fn(&str) -> Option<T>,
        ) -> Result<Option<T>, ConfigError> {
            let Some(value) = env.get(var) else {
                return Ok(None);
            };
            match parse(value.trim()) {
                Some(v) => Ok(Some(v)),
                None => Err(ConfigError::Env {
                    var,
                    value,
                    expected: expected.into(),
                }),
            }
        }
        // The same bounds as the profile check, so the message names the variable.
        fn count(max: u32) -> impl Fn(&str) -> Option<u32> {
            move |s| s.parse::<u32>().ok().filter(|v| (1..=max).contains(v))
        }
        let img_size = var(
            env,
            "IMG_SIZE",
            format!(
                "a positive multiple of 32, at most {}, e.g. 640",
                ImageSize::MAX
            ),
            |s| ImageSize::new(s.parse().ok()?).ok(),
        )?;
        let profile = ProfilePatch {
            imgsz: img_size.map(ImageSizesPatch::all),
            batch_size: var(
                env,
                "BATCH_SIZE",
                format!("an integer >= 1, at most {}", limits::BATCH_SIZE),
                count(limits::BATCH_SIZE),
            )?,
            frame_stride: var(
                env,
                "FRAME_STRIDE",
                format!("an integer >= 1, at most {}", limits::FRAME_STRIDE),
                count(limits::FRAME_STRIDE),
            )?,
            prefetch_frames: var(
                env,
                "PREFETCH_FRAMES",
                format!("an integer >= 1, at most {}", limits::PREFETCH_FRAMES),
                count(limits::PREFETCH_FRAMES),
            )?,
            max_detections: var(
                env,
                "MAX_DETECTIONS",
                format!("an integer >= 1, at most {}", limits::MAX_DETECTIONS),
                count(limits::MAX_DETECTIONS),
            )?,
            conf_threshold: var(
                env,
                "CONF_THRESHOLD",
                "a number between 0 and 1, e.g. 0.25",
                |s| s.parse::<f32>().ok().filter(|v| (0.0..=1.0).contains(v)),
            )?,
            decode_threads: var(
                env,
                "DECODE_THREADS",
                format!(
                    "an integer >= 0 (0 = all cores), at most {}",
                    limits::DECODE_THREADS
                ),
                |s| {
                    s.parse::<u32>()
                        .ok()
                        .filter(|v| *v <= limits::DECODE_THREADS)
                },
            )?,
            frame_conversion: var(
                env,
                "FRAME_CONVERSION",
                "exact or model_size",
                |s| match s {
                    "exact" => Some(FrameConversion::Exact),
                    "model_size" => Some(FrameConversion::ModelSize),
                    _ => None,
                },
            )?,
            ..ProfilePatch::default()
        };
        let device = var(
            env,
            "PITCHSIDE_DEVICE",
            format!("one of {}", crate::device::DEVICE_NAMES),
            DeviceRequest::parse,
        )?;
        Ok(EnvOverrides { device, profile })
    }
}
