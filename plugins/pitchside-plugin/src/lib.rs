//! Pitchside's plugin interface: the one trait per plugin kind that the engine drives, and
//! the data that crosses it.
//!
//! Built-in plugins (the Burn YOLO detector, ByteTrack) implement these traits directly;
//! shared-library plugins implement them through the C ABI: [`abi`] defines it, [`sdk`] and
//! [`export_detector!`] / [`export_tracker!`] build a plugin library from a trait
//! implementation, and `host` (cargo feature `host`) loads one back as `Box<dyn Detector>` /
//! `Box<dyn Tracker>`. The pipeline only ever sees `dyn Detector` and `dyn Tracker`.

use std::fmt;
use std::time::Duration;

pub mod abi;
#[cfg(feature = "host")]
pub mod host;
pub mod sdk;

// Plugin authors get the JSON type of `from_params` without a dependency of their own.
pub use serde_json;

/// Pixel layout of a frame handed to a detector. Pitchside decodes video as packed BGR,
/// as OpenCV does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum PixelFormat {
    /// 8-bit blue, green, red, packed.
    Bgr8 = 0,
    /// 8-bit red, green, blue, packed.
    Rgb8 = 1,
}

impl PixelFormat {
    pub fn bytes_per_pixel(self) -> usize {
        3
    }
}

/// A borrowed video frame: the detector reads it during the call and keeps nothing.
#[derive(Clone, Copy)]
pub struct FrameRef<'a> {
    pub data: &'a [u8],
    pub width: u32,
    pub height: u32,
    /// Bytes from one row to the next (at least `width * 3`).
    pub row_stride: usize,
    pub format: PixelFormat,
    /// The frame's number in the source video (never renumbered by stride).
    pub frame_number: u64,
}

impl fmt::Debug for FrameRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameRef")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("row_stride", &self.row_stride)
            .field("format", &self.format)
            .field("frame_number", &self.frame_number)
            .finish()
    }
}

impl<'a> FrameRef<'a> {
    /// Checks that the buffer holds `height` rows of `row_stride` bytes.
    pub fn validate(&self) -> Result<(), PluginError> {
        let min_stride = self.width as usize * self.format.bytes_per_pixel();
        if self.row_stride < min_stride {
            return Err(PluginError::InvalidInput(format!(
                "row stride {} is less than width*3 = {min_stride}",
                self.row_stride
            )));
        }
        let needed = if self.height == 0 {
            0
        } else {
            self.row_stride * (self.height as usize - 1) + min_stride
        };
        if self.data.len() < needed {
            return Err(PluginError::InvalidInput(format!(
                "frame buffer has {} bytes, {}x{} with stride {} needs {needed}",
                self.data.len(),
                self.width,
                self.height,
                self.row_stride
            )));
        }
        Ok(())
    }
}

/// One detection in source-image pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// `[x1, y1, x2, y2]` in source pixels.
    pub bbox: [f32; 4],
    pub score: f32,
    /// Output class id (after the deployment's class map, when the engine applied one).
    pub class_id: u32,
    /// Pose models only: `[x, y, confidence]` per keypoint, in source pixels.
    pub keypoints: Vec<[f32; 3]>,
}

/// A tracked object as a tracker reports it for one frame, and as the engine hands out a
/// processed frame's objects (with ids made response-wide across its trackers).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedObject {
    /// Track id, starting at 1 for each video.
    pub id: u64,
    /// `[x1, y1, x2, y2]` in source pixels (the detector's box for this frame).
    pub bbox: [f32; 4],
    pub score: f32,
    pub class_id: u32,
}

/// What a plugin reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum PluginKind {
    Detector = 1,
    Tracker = 2,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginKind::Detector => "detector",
            PluginKind::Tracker => "tracker",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("{0}")]
    Failed(String),
    #[error("plugin panicked: {0}")]
    Panicked(String),
}

/// Where a detector's time went, stage by stage (`pitchside bench` reports it per role).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    /// Letterbox and conversion to the network's input.
    pub preprocess: Duration,
    /// The network itself.
    pub forward: Duration,
    /// Decoding, NMS and scaling back to source pixels.
    pub postprocess: Duration,
}

impl std::ops::AddAssign for StageTimes {
    fn add_assign(&mut self, o: StageTimes) {
        self.preprocess += o.preprocess;
        self.forward += o.forward;
        self.postprocess += o.postprocess;
    }
}

/// A detector: frames in, detections out. One call takes a batch of frames of the same
/// size; the result has one list per frame, in descending score order.
pub trait Detector: Send {
    fn info(&self) -> PluginInfo;

    /// Number of keypoints per detection (0 for plain detectors).
    fn num_keypoints(&self) -> usize {
        0
    }

    fn detect(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Vec<Detection>>, PluginError>;

    /// The size this detector first resizes a `src_width`×`src_height` frame to (for a
    /// letterbox: the image's size inside the padding), so that the engine can hand it
    /// frames already at that size, scaled and converted from the decoder's YUV in one
    /// pass. Given such frames, the detector works on them as on any frame (its detections
    /// in their pixels); the engine maps the detections back to source pixels. `None` (the
    /// default, and every shared-library plugin): full-size frames.
    fn input_size(&self, src_width: u32, src_height: u32) -> Option<(u32, u32)> {
        let _ = (src_width, src_height);
        None
    }

    /// The network input (width × height) a `src_width`×`src_height` frame becomes (for
    /// a letterbox: the padded size), which is the shape its kernels run at: shown by
    /// `pitchside tune` and the warm-up. `None` (the default, and every shared-library
    /// plugin): not known.
    fn network_input(&self, src_width: u32, src_height: u32) -> Option<(u32, u32)> {
        let _ = (src_width, src_height);
        None
    }

    /// The stage times of the `detect` calls since the last call of this method, which
    /// resets them; `None` for a detector that does not measure its stages (the default,
    /// and every shared-library plugin: the C ABI carries no timings).
    fn take_stage_times(&mut self) -> Option<StageTimes> {
        None
    }
}

/// A multi-object tracker: called once per processed frame, in order.
pub trait Tracker: Send {
    fn info(&self) -> PluginInfo;

    /// Associates this frame's detections with tracks. Detections that do not belong to a
    /// confirmed track are dropped from the result.
    fn update(
        &mut self,
        frame_number: u64,
        detections: &[Detection],
    ) -> Result<Vec<TrackedObject>, PluginError>;

    /// Forgets every track; ids start at 1 again.
    fn reset(&mut self);
}
