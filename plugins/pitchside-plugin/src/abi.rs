//! The C ABI between the engine (host) and a shared-library plugin.
//!
//! Everything here is `#[repr(C)]` and mirrors `include/pitchside_plugin.h` field for field;
//! `README.md` beside this crate is the authors' reference. Rust authors never touch these
//! types: they implement [`crate::Detector`] / [`crate::Tracker`] and use
//! [`crate::export_detector!`] / [`crate::export_tracker!`].
//!
//! # Entry point
//!
//! A plugin library exports one symbol, [`ENTRY_SYMBOL`] (`pitchside_plugin_entry`), a
//! function with no arguments that returns a pointer to a [`PsPluginDescriptor`] with static
//! lifetime. The host reads the first two fields ([`PsDescriptorHeader`]) and checks them
//! before it reads anything else.
//!
//! # Versioning
//!
//! * [`ABI_VERSION`] is a major version. Any change that breaks an existing plugin or host
//!   (a field removed, reordered or retyped, a function's signature or meaning changed)
//!   bumps it, and a host refuses a plugin whose `abi_version` differs from its own.
//! * `struct_size` lets one major version grow: new descriptor fields are only ever
//!   appended. A host accepts any `struct_size` at least as large as the descriptor it was
//!   built with, and reads appended fields only when `struct_size` covers them, so an older
//!   host loads a newer plugin and a newer host can default fields an older plugin lacks.
//!   A `struct_size` smaller than the version's original descriptor is an error.
//! * The data structs (`PsFrame`, `PsDetection`, ...) are fixed for a major version; their
//!   `reserved` fields must be zero.
//!
//! # Status codes
//!
//! Functions that can fail return an `i32` status: [`Status::Ok`] (0) or one of the other
//! [`Status`] values. The host never transmutes a raw code into [`Status`]: codes it does not
//! know are read as [`Status::Failed`]. On failure the message is available from
//! `last_error`.

use std::ffi::{c_char, c_void};

/// Major ABI version of this crate's descriptor. See the module docs for the policy.
pub const ABI_VERSION: u32 = 1;

/// Name of the one symbol a plugin library exports.
pub const ENTRY_SYMBOL: &str = "pitchside_plugin_entry";

/// [`ENTRY_SYMBOL`] with its NUL terminator, as `dlsym` wants it.
pub const ENTRY_SYMBOL_NUL: &[u8] = b"pitchside_plugin_entry\0";

/// `PsPluginDescriptor::kind` for a detector.
pub const KIND_DETECTOR: u32 = 1;
/// `PsPluginDescriptor::kind` for a tracker.
pub const KIND_TRACKER: u32 = 2;

/// `PsFrame::pixel_format` values; same numbers as [`crate::PixelFormat`].
pub const PIXEL_FORMAT_BGR8: u32 = 0;
pub const PIXEL_FORMAT_RGB8: u32 = 1;

/// Result of a plugin call. Crosses the boundary as a plain `i32` (see [`Status::from_raw`])
/// so that an unknown code from a newer or buggy plugin is never undefined behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    Ok = 0,
    /// The call failed; `last_error` says why.
    Failed = 1,
    /// `create` could not use the parameters.
    InvalidParams = 2,
    /// The host passed something the plugin cannot process (bad frame, null pointer).
    InvalidInput = 3,
    /// The plugin panicked (or threw); the message is in `last_error`. The host treats the
    /// handle as unusable afterwards.
    Panicked = 4,
}

impl Status {
    pub const fn raw(self) -> i32 {
        self as i32
    }

    /// Reads a raw code; unknown codes read as `Failed`.
    pub const fn from_raw(raw: i32) -> Status {
        match raw {
            0 => Status::Ok,
            2 => Status::InvalidParams,
            3 => Status::InvalidInput,
            4 => Status::Panicked,
            _ => Status::Failed,
        }
    }
}

/// A borrowed frame. `data` points at `data_len` bytes that stay valid for the duration of
/// the `detect` call only.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct PsFrame {
    pub data: *const u8,
    pub data_len: usize,
    /// Bytes from one row to the next, at least `width * 3`.
    pub row_stride: usize,
    /// The frame's number in the source video.
    pub frame_number: u64,
    pub width: u32,
    pub height: u32,
    /// `PIXEL_FORMAT_*`.
    pub pixel_format: u32,
    /// Zero.
    pub reserved: u32,
}

/// One detection: `bbox` is `[x1, y1, x2, y2]` in source pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct PsDetection {
    pub bbox: [f32; 4],
    pub score: f32,
    pub class_id: u32,
}

/// A detector's result for a batch, in buffers the plugin owns. They stay valid until the
/// next call on the same handle or its `destroy`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct PsDetectOutput {
    /// All frames' detections, frame after frame: frame 0's first, then frame 1's, ...
    pub detections: *const PsDetection,
    pub num_detections: usize,
    /// `num_frames` counts: how many of `detections` belong to each frame, in order. Their
    /// sum is `num_detections`.
    pub frame_counts: *const usize,
    /// Must equal the number of frames passed in.
    pub num_frames: usize,
    /// `num_detections * num_keypoints * 3` floats, `[x, y, confidence]` per keypoint,
    /// detection-major. May be null when that product is 0.
    pub keypoints: *const f32,
    /// Keypoints per detection; must equal what `num_keypoints` reported.
    pub num_keypoints: u32,
    pub reserved: u32,
}

/// Detections handed to a tracker, borrowed for the duration of the `track` call. Same
/// layout rules as [`PsDetectOutput`] for one frame.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct PsDetectionList {
    pub detections: *const PsDetection,
    pub num_detections: usize,
    pub keypoints: *const f32,
    pub num_keypoints: u32,
    pub reserved: u32,
}

/// One tracked object: `bbox` is `[x1, y1, x2, y2]` in source pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct PsTrackedObject {
    /// Track id, starting at 1.
    pub id: u64,
    pub bbox: [f32; 4],
    pub score: f32,
    pub class_id: u32,
}

/// A tracker's result for one frame, in buffers the plugin owns (valid until the next call
/// on the handle or `destroy`).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct PsTrackOutput {
    pub objects: *const PsTrackedObject,
    pub num_objects: usize,
}

/// `create(params_json, params_len, out_handle)`: `params_json` holds `params_len` bytes of
/// UTF-8 JSON (the host also NUL-terminates it; `params_len` excludes the NUL). On success
/// writes a non-null handle and returns 0; on failure writes null, returns a status and
/// leaves the message for `last_error(NULL)` on the calling thread.
pub type CreateFn = unsafe extern "C" fn(
    params_json: *const c_char,
    params_len: usize,
    out_handle: *mut *mut c_void,
) -> i32;
/// Frees a handle and everything it owns. Null is a no-op.
pub type DestroyFn = unsafe extern "C" fn(handle: *mut c_void);
/// The handle's last error message (NUL-terminated UTF-8), or, for a null handle, the
/// message of the calling thread's last failed `create`. Empty (never null) when there is
/// none. Valid until the next call on that handle (or the next `create` on that thread).
pub type LastErrorFn = unsafe extern "C" fn(handle: *mut c_void) -> *const c_char;
/// Detectors: keypoints per detection (0 for plain detectors), written to `out`.
pub type NumKeypointsFn = unsafe extern "C" fn(handle: *mut c_void, out: *mut u32) -> i32;
/// Detectors: runs on `num_frames` frames and fills `out`.
pub type DetectFn = unsafe extern "C" fn(
    handle: *mut c_void,
    frames: *const PsFrame,
    num_frames: usize,
    out: *mut PsDetectOutput,
) -> i32;
/// Trackers: associates one frame's detections and fills `out`.
pub type TrackFn = unsafe extern "C" fn(
    handle: *mut c_void,
    frame_number: u64,
    detections: *const PsDetectionList,
    out: *mut PsTrackOutput,
) -> i32;
/// Trackers: forgets every track.
pub type ResetFn = unsafe extern "C" fn(handle: *mut c_void) -> i32;

/// The two fields every descriptor version starts with; the host reads only these until
/// they check out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct PsDescriptorHeader {
    pub abi_version: u32,
    pub struct_size: u32,
}

/// What `pitchside_plugin_entry` returns a pointer to. Lives as long as the library.
///
/// Function pointers a kind does not use are null (detectors: `track`, `reset`; trackers:
/// `num_keypoints`, `detect`).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct PsPluginDescriptor {
    /// [`ABI_VERSION`] the plugin was built against.
    pub abi_version: u32,
    /// `sizeof(PsPluginDescriptor)` as the plugin knows it.
    pub struct_size: u32,
    /// [`KIND_DETECTOR`] or [`KIND_TRACKER`].
    pub kind: u32,
    /// Zero.
    pub reserved: u32,
    /// NUL-terminated UTF-8, static.
    pub name: *const c_char,
    /// NUL-terminated UTF-8, static.
    pub version: *const c_char,
    pub create: Option<CreateFn>,
    pub destroy: Option<DestroyFn>,
    pub last_error: Option<LastErrorFn>,
    pub num_keypoints: Option<NumKeypointsFn>,
    pub detect: Option<DetectFn>,
    pub track: Option<TrackFn>,
    pub reset: Option<ResetFn>,
}

// The descriptor is immutable data pointing at static strings and functions; sharing it
// between threads is what every loaded library does anyway.
unsafe impl Sync for PsPluginDescriptor {}
unsafe impl Send for PsPluginDescriptor {}

/// Signature of `pitchside_plugin_entry`. Returns null only if the plugin cannot describe
/// itself.
pub type EntryFn = unsafe extern "C" fn() -> *const PsPluginDescriptor;

/// `struct_size` of this version's descriptor.
pub const DESCRIPTOR_SIZE: u32 = std::mem::size_of::<PsPluginDescriptor>() as u32;

// The C header states these sizes for 64-bit targets; a layout change here must change the
// header (and, unless only appended, the ABI version).
#[cfg(target_pointer_width = "64")]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<PsFrame>() == 48);
    assert!(size_of::<PsDetection>() == 24);
    assert!(size_of::<PsDetectOutput>() == 48);
    assert!(size_of::<PsDetectionList>() == 32);
    assert!(size_of::<PsTrackedObject>() == 32);
    assert!(size_of::<PsTrackOutput>() == 16);
    assert!(size_of::<PsDescriptorHeader>() == 8);
    assert!(size_of::<PsPluginDescriptor>() == 88);
    assert!(offset_of!(PsPluginDescriptor, name) == 16);
    assert!(offset_of!(PsPluginDescriptor, create) == 32);
    assert!(offset_of!(PsPluginDescriptor, reset) == 80);
};

impl From<&crate::TrackedObject> for PsTrackedObject {
    fn from(o: &crate::TrackedObject) -> Self {
        PsTrackedObject {
            id: o.id,
            bbox: o.bbox,
            score: o.score,
            class_id: o.class_id,
        }
    }
}

impl From<PsTrackedObject> for crate::TrackedObject {
    fn from(o: PsTrackedObject) -> Self {
        crate::TrackedObject {
            id: o.id,
            bbox: o.bbox,
            score: o.score,
            class_id: o.class_id,
        }
    }
}
