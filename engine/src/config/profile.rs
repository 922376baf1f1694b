//! Device profiles: the built-in defaults, the patches a deployment file or the
//! environment lays over them (one merge for both), and the checks of the result.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::image_size::{ImageSize, ImageSizeError};
use super::model::Role;
use crate::device::Backend;
use crate::video::VideoInfo;

/// Per-role inference sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSizes {
    pub players: ImageSize,
    pub pitch: ImageSize,
    pub ball: ImageSize,
}

impl ImageSizes {
    pub fn get(&self, role: Role) -> ImageSize {
        match role {
            Role::Players => self.players,
            Role::Pitch => self.pitch,
            Role::Ball => self.ball,
        }
    }

    const fn fixed(players: u32, pitch: u32, ball: u32) -> ImageSizes {
        ImageSizes {
            players: ImageSize::fixed(players),
            pitch: ImageSize::fixed(pitch),
            ball: ImageSize::fixed(ball),
        }
    }
}

/// The device profile names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileName {
    Cuda,
    Mps,
    Cpu,
}

impl ProfileName {
    pub const ALL: [ProfileName; 3] = [ProfileName::Cuda, ProfileName::Mps, ProfileName::Cpu];

    pub fn as_str(self) -> &'static str {
        match self {
            ProfileName::Cuda => "cuda",
            ProfileName::Mps => "mps",
            ProfileName::Cpu => "cpu",
        }
    }

    /// The profile that follows a device unless the deployment pins one.
    /// WGPU takes the `mps` profile: Metal on Apple is its main user. LibTorch's devices
    /// take their hardware's profile.
    pub fn for_backend(backend: Backend) -> ProfileName {
        match backend {
            Backend::Cuda | Backend::TorchCuda => ProfileName::Cuda,
            Backend::Wgpu | Backend::TorchMps => ProfileName::Mps,
            Backend::Cpu | Backend::TorchCpu => ProfileName::Cpu,
        }
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which profile to use: the one matching the device, or a pinned one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileChoice {
    #[default]
    Auto,
    Cuda,
    Mps,
    Cpu,
}

impl ProfileChoice {
    pub fn resolve(self, backend: Backend) -> ProfileName {
        match self {
            ProfileChoice::Auto => ProfileName::for_backend(backend),
            ProfileChoice::Cuda => ProfileName::Cuda,
            ProfileChoice::Mps => ProfileName::Mps,
            ProfileChoice::Cpu => ProfileName::Cpu,
        }
    }
}

/// Effective settings of one device profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub imgsz: ImageSizes,
    pub conf_threshold: f32,
    pub iou_threshold: f32,
    pub max_detections: u32,
    pub half: bool,
    pub agnostic_nms: bool,
    pub batch_size: u32,
    pub timeout_s: u64,
    pub prefetch_frames: u32,
    pub frame_stride: u32,
    /// 0 = all cores. With several CPU pipelines, they share these threads equally.
    pub cpu_threads: u32,
    /// Largest frame (width × height) a video may have; a larger one is refused before it
    /// is analysed (each decoded frame costs 3 bytes a pixel, times the queue and the batch).
    pub max_frame_pixels: u64,
    /// Most frames (the container's count) a video may have.
    pub max_video_frames: u64,
    /// Video decoding threads (frame threads, or parallel segments on long inputs); 0 = all cores.
    pub decode_threads: u32,
    /// How decoded frames reach the detectors.
    pub frame_conversion: FrameConversion,
    /// Pipelines loaded on each device of `devices:` (`pitchside serve`/`worker`).
    pub pipelines_per_device: u32,
}

/// How the decoder hands frames to the detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameConversion {
    /// Full-size BGR as OpenCV decodes it; each detector letterboxes it itself (bit-exact
    /// with ultralytics on the same pixels).
    Exact,
    /// Each frame scaled and converted from the decoder's YUV once, straight to the size each
    /// detector asks for (the letterbox's inner size); detectors that ask for none get
    /// full-size BGR. See BENCHMARKS.md for how its detections compare with `exact`.
    #[default]
    ModelSize,
}

impl FrameConversion {
    pub fn as_str(self) -> &'static str {
        match self {
            FrameConversion::Exact => "exact",
            FrameConversion::ModelSize => "model_size",
        }
    }
}

impl fmt::Display for FrameConversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Profile {
    /// Defaults that mirror the Python miner's cuda/mps/cpu configs: what differs per
    /// profile here, the rest (bounds, decoding, pool) shared by all three.
    pub fn defaults(name: ProfileName) -> Profile {
        let shared = Profile {
            imgsz: const { ImageSizes::fixed(1024, 896, 896) },
            conf_threshold: 0.25,
            iou_threshold: 0.45,
            max_detections: 300,
            half: false,
            agnostic_nms: false,
            batch_size: 1,
            timeout_s: 10800,
            prefetch_frames: 64,
            frame_stride: 2,
            cpu_threads: 0,
            max_frame_pixels: limits::DEFAULT_FRAME_PIXELS,
            max_video_frames: limits::DEFAULT_VIDEO_FRAMES,
            decode_threads: 0,
            frame_conversion: FrameConversion::ModelSize,
            pipelines_per_device: 1,
        };
        match name {
            ProfileName::Cuda => Profile {
                imgsz: const { ImageSizes::fixed(640, 640, 640) },
                conf_threshold: 0.35,
                iou_threshold: 0.5,
                max_detections: 150,
                half: true,
                batch_size: 32,
                timeout_s: 900,
                ..shared
            },
            ProfileName::Mps => Profile {
                imgsz: const { ImageSizes::fixed(1280, 1024, 1024) },
                batch_size: 2,
                timeout_s: 1800,
                ..shared
            },
            ProfileName::Cpu => shared,
        }
    }

    /// Checks the values no type rules out; on error returns the offending field and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        for (field, v) in [
            ("conf_threshold", self.conf_threshold),
            ("iou_threshold", self.iou_threshold),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err((field, format!("{field} {v} is outside [0, 1]")));
            }
        }
        let counts = [
            (
                "batch_size",
                self.batch_size as u64,
                1,
                limits::BATCH_SIZE as u64,
            ),
            (
                "max_detections",
                self.max_detections as u64,
                1,
                limits::MAX_DETECTIONS as u64,
            ),
            (
                "prefetch_frames",
                self.prefetch_frames as u64,
                1,
                limits::PREFETCH_FRAMES as u64,
            ),
            (
                "frame_stride",
                self.frame_stride as u64,
                1,
                limits::FRAME_STRIDE as u64,
            ),
            ("timeout_s", self.timeout_s, 1, limits::TIMEOUT_S),
            (
                "max_frame_pixels",
                self.max_frame_pixels,
                1,
                limits::FRAME_PIXELS,
            ),
            (
                "max_video_frames",
                self.max_video_frames,
                1,
                limits::VIDEO_FRAMES,
            ),
            (
                "cpu_threads",
                self.cpu_threads as u64,
                0,
                limits::CPU_THREADS as u64,
            ),
            (
                "decode_threads",
                self.decode_threads as u64,
                0,
                limits::DECODE_THREADS as u64,
            ),
            (
                "pipelines_per_device",
                self.pipelines_per_device as u64,
                1,
                limits::PIPELINES_PER_DEVICE as u64,
            ),
        ];
        for (field, v, min, max) in counts {
            if v < min {
                return Err((field, format!("{field} must be at least {min}")));
            }
            if v > max {
                return Err((field, format!("{field} {v} is above the maximum, {max}")));
            }
        }
        for role in Role::ALL {
            check_batch_pixels(self.batch_size, self.imgsz.get(role))?;
        }
        Ok(())
    }
}

impl Profile {
    /// Refuses a video larger than the profile's bounds: called on the probe (the geometry
    /// and frame 0), before the decoder starts and the frames queue up.
    pub fn check_video(&self, info: &VideoInfo) -> Result<(), VideoTooLarge> {
        let pixels = info.width as u64 * info.height as u64;
        if pixels > self.max_frame_pixels {
            return Err(VideoTooLarge::Pixels {
                width: info.width,
                height: info.height,
                pixels,
                max: self.max_frame_pixels,
            });
        }
        if info.frame_count > self.max_video_frames {
            return Err(VideoTooLarge::Frames {
                frames: info.frame_count,
                fps: info.fps,
                max: self.max_video_frames,
            });
        }
        Ok(())
    }
}

/// A video over a profile's [`Profile::check_video`] bounds.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VideoTooLarge {
    #[error(
        "the video is {width}x{height} ({pixels} pixels a frame), above the profile's \
         max_frame_pixels, {max}"
    )]
    Pixels {
        width: u32,
        height: u32,
        pixels: u64,
        max: u64,
    },
    #[error(
        "the video has {frames} frames ({:.0} s at {fps:.2} fps), above the profile's \
         max_video_frames, {max}",
        *frames as f64 / fps.max(1e-9)
    )]
    Frames { frames: u64, fps: f64, max: u64 },
}

/// Checks batch_size × imgsz² against [`limits::BATCH_PIXELS`]; each is bounded on its own,
/// but the largest of both would still be a 51 GB input.
pub fn check_batch_pixels(batch_size: u32, imgsz: ImageSize) -> Result<(), (&'static str, String)> {
    let pixels = batch_size as u64 * (imgsz.get() as u64).pow(2);
    if pixels > limits::BATCH_PIXELS {
        return Err((
            "batch_size",
            format!(
                "batch_size {batch_size} at imgsz {imgsz} is {pixels} pixels per batch, above \
                 the maximum, {} (e.g. 256 at 1024, 16 at 4096)",
                limits::BATCH_PIXELS
            ),
        ));
    }
    Ok(())
}

/// Upper bounds of a profile's counts, checked once by [`Profile::check`] (and by the
/// environment overrides when read), so that no value can abort the process on an
/// allocation, overflow a deadline or spawn without limit. Each is well above what a
/// demanding deployment uses.
pub mod limits {
    /// Frames per forward pass: 8× the cuda default; a 141 GB GPU is saturated long before.
    pub const BATCH_SIZE: u32 = 256;
    /// Detections kept per frame and model: a pitch holds ~25 people and a ball; ultralytics'
    /// default is 300, and NMS cost grows with the square of the candidates.
    pub const MAX_DETECTIONS: u32 = 10_000;
    /// Decoded frames queued ahead of the detectors: 1024 1080p frames are ~6 GB of memory.
    pub const PREFETCH_FRAMES: u32 = 1024;
    /// Analyse every n-th frame: 1000 frames is 40 s at 25 fps, longer than a challenge clip.
    pub const FRAME_STRIDE: u32 = 1000;
    /// One week, far above the cpu default (3 h); a huge value overflowed the deadline
    /// (`Instant + Duration` panics).
    pub const TIMEOUT_S: u64 = 7 * 24 * 3600;
    /// CPU backend threads: above the largest servers' core counts (2 × 192 cores, SMT on).
    pub const CPU_THREADS: u32 = 1024;
    /// Video decoding threads: FFmpeg's frame threading tops out long before (it caps itself
    /// at 16 per decoder), and each parallel segment holds its own decoder and frames.
    pub const DECODE_THREADS: u32 = 256;
    /// Loaded pipelines per device: each holds its models and one batch's buffers.
    pub const PIPELINES_PER_DEVICE: u32 = 64;
    /// batch_size × imgsz², the pixels of one batch: 256 frames at 1024, 16 at 4096
    /// (3.2 GB of f32 input).
    pub const BATCH_PIXELS: u64 = 256 * 1024 * 1024;
    /// Default largest frame: two 4K UHD frames' worth (a 16000×12000 frame, 192 Mpixels,
    /// cost 2.8 GB of memory when it was analysed).
    pub const DEFAULT_FRAME_PIXELS: u64 = 3840 * 2160 * 2;
    /// Upper bound of `max_frame_pixels`: 16384², 805 MB for one decoded frame.
    pub const FRAME_PIXELS: u64 = 16384 * 16384;
    /// Default most frames: an hour at 30 fps (a challenge clip is 30 s).
    pub const DEFAULT_VIDEO_FRAMES: u64 = 30 * 3600;
    /// Upper bound of `max_video_frames`: a day at 60 fps.
    pub const VIDEO_FRAMES: u64 = 60 * 86400;
}

/// Partial per-role sizes; `S` as in [`ProfilePatch`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSizesPatch<S = ImageSize> {
    pub players: Option<S>,
    pub pitch: Option<S>,
    pub ball: Option<S>,
}

impl<S> Default for ImageSizesPatch<S> {
    fn default() -> Self {
        ImageSizesPatch {
            players: None,
            pitch: None,
            ball: None,
        }
    }
}

impl<S: Copy> ImageSizesPatch<S> {
    /// The same size for every role.
    pub fn all(s: S) -> Self {
        ImageSizesPatch {
            players: Some(s),
            pitch: Some(s),
            ball: Some(s),
        }
    }

    pub fn get(&self, role: Role) -> Option<S> {
        match role {
            Role::Players => self.players,
            Role::Pitch => self.pitch,
            Role::Ball => self.ball,
        }
    }
}

/// Some of a profile's fields, laid over a profile: a deployment file's `profiles:` entry
/// or the environment overrides. `S` is the type of the sizes: `u32` as the YAML parser
/// reads them, [`ImageSize`] once checked ([`ProfilePatch::checked`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch<S = ImageSize> {
    pub imgsz: Option<ImageSizesPatch<S>>,
    pub conf_threshold: Option<f32>,
    pub iou_threshold: Option<f32>,
    pub max_detections: Option<u32>,
    pub half: Option<bool>,
    pub agnostic_nms: Option<bool>,
    pub batch_size: Option<u32>,
    pub timeout_s: Option<u64>,
    pub prefetch_frames: Option<u32>,
    pub frame_stride: Option<u32>,
    pub cpu_threads: Option<u32>,
    pub max_frame_pixels: Option<u64>,
    pub max_video_frames: Option<u64>,
    pub decode_threads: Option<u32>,
    pub frame_conversion: Option<FrameConversion>,
    pub pipelines_per_device: Option<u32>,
}

impl<S> Default for ProfilePatch<S> {
    fn default() -> Self {
        ProfilePatch {
            imgsz: None,
            conf_threshold: None,
            iou_threshold: None,
            max_detections: None,
            half: None,
            agnostic_nms: None,
            batch_size: None,
            timeout_s: None,
            prefetch_frames: None,
            frame_stride: None,
            cpu_threads: None,
            max_frame_pixels: None,
            max_video_frames: None,
            decode_threads: None,
            frame_conversion: None,
            pipelines_per_device: None,
        }
    }
}

impl ProfilePatch<u32> {
    /// Checks the sizes; on error returns the role whose size is wrong.
    pub fn checked(self) -> Result<ProfilePatch, (Role, ImageSizeError)> {
        let imgsz = match self.imgsz {
            None => None,
            Some(s) => {
                let check = |role: Role| {
                    s.get(role)
                        .map(ImageSize::new)
                        .transpose()
                        .map_err(|e| (role, e))
                };
                Some(ImageSizesPatch {
                    players: check(Role::Players)?,
                    pitch: check(Role::Pitch)?,
                    ball: check(Role::Ball)?,
                })
            }
        };
        Ok(ProfilePatch {
            imgsz,
            conf_threshold: self.conf_threshold,
            iou_threshold: self.iou_threshold,
            max_detections: self.max_detections,
            half: self.half,
            agnostic_nms: self.agnostic_nms,
            batch_size: self.batch_size,
            timeout_s: self.timeout_s,
            prefetch_frames: self.prefetch_frames,
            frame_stride: self.frame_stride,
            cpu_threads: self.cpu_threads,
            max_frame_pixels: self.max_frame_pixels,
            max_video_frames: self.max_video_frames,
            decode_threads: self.decode_threads,
            frame_conversion: self.frame_conversion,
            pipelines_per_device: self.pipelines_per_device,
        })
    }
}

impl ProfilePatch {
    /// Sets every field the patch has.
    pub fn apply(&self, p: &mut Profile) {
        if let Some(s) = &self.imgsz {
            for (role, size) in [
                (Role::Players, &mut p.imgsz.players),
                (Role::Pitch, &mut p.imgsz.pitch),
                (Role::Ball, &mut p.imgsz.ball),
            ] {
                if let Some(v) = s.get(role) {
                    *size = v;
                }
            }
        }
        macro_rules! set {
            ($($f:ident),*) => {$( if let Some(v) = self.$f { p.$f = v; } )*};
        }
        set!(
            conf_threshold,
            iou_threshold,
            max_detections,
            half,
            agnostic_nms,
            batch_size,
            timeout_s,
            prefetch_frames,
            frame_stride,
            cpu_threads,
            max_frame_pixels,
            max_video_frames,
            decode_threads,
            frame_conversion,
            pipelines_per_device
        );
    }

    /// The size this patch sets for a role, if any.
    pub fn imgsz(&self, role: Role) -> Option<ImageSize> {
        self.imgsz.and_then(|s| s.get(role))
    }
}
