//! Inference sizes: a positive multiple of the network stride, at most [`ImageSize::MAX`],
//! checked once when made.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An inference size (the letterbox's long side): a positive multiple of 32, the YOLO
/// networks' largest stride, at most [`ImageSize::MAX`]. Only [`ImageSize::new`] makes one,
/// so every value is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct ImageSize(u32);

/// Why a number is not an [`ImageSize`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("imgsz {0} must be a positive multiple of 32, at most {max}", max = ImageSize::MAX)]
pub struct ImageSizeError(pub u32);

impl ImageSize {
    pub const STRIDE: u32 = 32;
    /// The largest size: the long side of a 4K (UHD/DCI) frame, so no source pixel is ever
    /// lost to downscaling; the networks are trained at 640–1280. A 4096² letterboxed image
    /// is ~200 MB of f32 input per frame, where 65536² (accepted before) aborted the
    /// process on a 77 GB allocation.
    pub const MAX: u32 = 4096;

    pub const fn new(v: u32) -> Result<ImageSize, ImageSizeError> {
        if v > 0 && v <= Self::MAX && v.is_multiple_of(Self::STRIDE) {
            Ok(ImageSize(v))
        } else {
            Err(ImageSizeError(v))
        }
    }

    /// For constants: fails to compile (in a `const` context) when `v` is not valid.
    pub const fn fixed(v: u32) -> ImageSize {
        match Self::new(v) {
            Ok(s) => s,
            Err(_) => panic!("not a positive multiple of 32 up to ImageSize::MAX"),
        }
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for ImageSize {
    type Error = ImageSizeError;
    fn try_from(v: u32) -> Result<Self, Self::Error> {
        ImageSize::new(v)
    }
}

impl From<ImageSize> for u32 {
    fn from(s: ImageSize) -> u32 {
        s.0
    }
}

impl PartialEq<u32> for ImageSize {
    fn eq(&self, other: &u32) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for ImageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// For command-line flags (`--imgsz 640`).
impl FromStr for ImageSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v: u32 = s.trim().parse().map_err(|_| {
            format!(
                "`{s}` is not a positive multiple of 32 (at most {}), e.g. 640",
                ImageSize::MAX
            )
        })?;
        ImageSize::new(v).map_err(|e| e.to_string())
    }
}
