//! The plugin-author side of the C ABI: implement [`Detector`] + [`DetectorPlugin`] (or
//! [`Tracker`] + [`TrackerPlugin`]) and invoke [`export_detector!`](crate::export_detector)
//! (or [`export_tracker!`](crate::export_tracker)) once in a `cdylib` crate.
//!
//! The macros only emit the entry symbol; the `extern "C"` shims are the generic functions
//! below, instantiated for the author's type. Every shim runs the author's code inside
//! [`std::panic::catch_unwind`], so a panic becomes [`Status::Panicked`] with the panic
//! message instead of unwinding into the host (which Rust would turn into an abort).
//!
//! ```ignore
//! use pitchside_plugin::{Detection, Detector, FrameRef, PluginError, PluginInfo};
//! use pitchside_plugin::sdk::DetectorPlugin;
//!
//! pub struct Centre;
//!
//! impl Detector for Centre {
//!     fn info(&self) -> PluginInfo { pitchside_plugin::sdk::detector_info::<Self>() }
//!     fn detect(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Vec<Detection>>, PluginError> {
//!         Ok(frames.iter().map(|f| vec![Detection {
//!             bbox: [0.0, 0.0, f.width as f32 / 2.0, f.height as f32 / 2.0],
//!             score: 1.0, class_id: 0, keypoints: vec![],
//!         }]).collect())
//!     }
//! }
//!
//! impl DetectorPlugin for Centre {
//!     const NAME: &'static str = "centre";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     fn from_params(_: &serde_json::Value) -> Result<Self, PluginError> { Ok(Centre) }
//! }
//!
//! pitchside_plugin::export_detector!(Centre);
//! ```

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use crate::abi::{
    self, PsDetectOutput, PsDetection, PsDetectionList, PsFrame, PsPluginDescriptor, PsTrackOutput,
    PsTrackedObject, Status,
};
use crate::{
    Detection, Detector, FrameRef, PixelFormat, PluginError, PluginInfo, PluginKind, Tracker,
};

/// What a detector library needs beyond [`Detector`]: a name and version known without an
/// instance (the host lists plugins without creating them) and a constructor from the
/// deployment's JSON parameters.
pub trait DetectorPlugin: Detector + Sized + 'static {
    const NAME: &'static str;
    const VERSION: &'static str;

    /// Builds the detector. `params` is whatever JSON the deployment gave (an empty object
    /// when it gave none). Return [`PluginError::InvalidParams`] for bad parameters.
    fn from_params(params: &serde_json::Value) -> Result<Self, PluginError>;
}

/// The tracker counterpart of [`DetectorPlugin`].
pub trait TrackerPlugin: Tracker + Sized + 'static {
    const NAME: &'static str;
    const VERSION: &'static str;

    fn from_params(params: &serde_json::Value) -> Result<Self, PluginError>;
}

/// [`PluginInfo`] from a detector plugin's constants, for its [`Detector::info`].
pub fn detector_info<T: DetectorPlugin>() -> PluginInfo {
    PluginInfo {
        name: T::NAME.to_owned(),
        version: T::VERSION.to_owned(),
        kind: PluginKind::Detector,
    }
}

/// [`PluginInfo`] from a tracker plugin's constants, for its [`Tracker::info`].
pub fn tracker_info<T: TrackerPlugin>() -> PluginInfo {
    PluginInfo {
        name: T::NAME.to_owned(),
        version: T::VERSION.to_owned(),
        kind: PluginKind::Tracker,
    }
}

/// Exports a [`DetectorPlugin`] type as a Pitchside plugin library: emits the
/// `pitchside_plugin_entry` symbol. Use once per `cdylib` crate.
#[macro_export]
macro_rules! export_detector {
    ($ty:ty) => {
        // With panic=abort a panic cannot be caught and would take the engine down.
        #[cfg(panic = "abort")]
        compile_error!("Pitchside plugins must be built with panic = \"unwind\"");

        /// Pitchside plugin entry point (see pitchside_plugin.h).
        #[unsafe(no_mangle)]
        pub extern "C" fn pitchside_plugin_entry() -> *const $crate::abi::PsPluginDescriptor {
            static DESCRIPTOR: $crate::sdk::DescriptorCell = $crate::sdk::DescriptorCell::new();
            $crate::sdk::detector_entry::<$ty>(&DESCRIPTOR)
        }
    };
}

/// Exports a [`TrackerPlugin`] type as a Pitchside plugin library: emits the
/// `pitchside_plugin_entry` symbol. Use once per `cdylib` crate.
#[macro_export]
macro_rules! export_tracker {
    ($ty:ty) => {
        #[cfg(panic = "abort")]
        compile_error!("Pitchside plugins must be built with panic = \"unwind\"");

        /// Pitchside plugin entry point (see pitchside_plugin.h).
        #[unsafe(no_mangle)]
        pub extern "C" fn pitchside_plugin_entry() -> *const $crate::abi::PsPluginDescriptor {
            static DESCRIPTOR: $crate::sdk::DescriptorCell = $crate::sdk::DescriptorCell::new();
            $crate::sdk::tracker_entry::<$ty>(&DESCRIPTOR)
        }
    };
}

/// The static descriptor plus the C strings it points at. Built on the first call to the
/// entry point because `NAME`/`VERSION` are `&str` consts, which cannot be NUL-terminated at
/// compile time.
pub struct DescriptorCell(OnceLock<OwnedDescriptor>);

struct OwnedDescriptor {
    descriptor: PsPluginDescriptor,
    // Pointed to by `descriptor`; a CString's heap buffer never moves.
    _name: CString,
    _version: CString,
}

impl DescriptorCell {
    #[allow(clippy::new_without_default)] // Used in statics; `Default` is not const.
    pub const fn new() -> Self {
        DescriptorCell(OnceLock::new())
    }

    fn get_or_init(
        &'static self,
        name: &str,
        version: &str,
        fill: impl FnOnce(&mut PsPluginDescriptor),
    ) -> *const PsPluginDescriptor {
        // Building the descriptor cannot panic short of an allocation failure, but the entry
        // point must not unwind into C whatever happens.
        let built = catch_unwind(AssertUnwindSafe(|| {
            &self
                .0
                .get_or_init(|| {
                    let name = c_string_lossy(name);
                    let version = c_string_lossy(version);
                    let mut descriptor = PsPluginDescriptor {
                        abi_version: abi::ABI_VERSION,
                        struct_size: abi::DESCRIPTOR_SIZE,
                        kind: 0,
                        reserved: 0,
                        name: name.as_ptr(),
                        version: version.as_ptr(),
                        create: None,
                        destroy: None,
                        last_error: None,
                        num_keypoints: None,
                        detect: None,
                        track: None,
                        reset: None,
                    };
                    fill(&mut descriptor);
                    OwnedDescriptor {
                        descriptor,
                        _name: name,
                        _version: version,
                    }
                })
                .descriptor as *const PsPluginDescriptor
        }));
        built.unwrap_or(std::ptr::null())
    }
}

/// Entry point body for [`export_detector!`](crate::export_detector).
pub fn detector_entry<T: DetectorPlugin>(
    cell: &'static DescriptorCell,
) -> *const PsPluginDescriptor {
    cell.get_or_init(T::NAME, T::VERSION, |d| {
        d.kind = abi::KIND_DETECTOR;
        d.create = Some(detector_create::<T>);
        d.destroy = Some(destroy::<DetectorHandle<T>>);
        d.last_error = Some(last_error::<DetectorHandle<T>>);
        d.num_keypoints = Some(detector_num_keypoints::<T>);
        d.detect = Some(detector_detect::<T>);
    })
}

/// Entry point body for [`export_tracker!`](crate::export_tracker).
pub fn tracker_entry<T: TrackerPlugin>(cell: &'static DescriptorCell) -> *const PsPluginDescriptor {
    cell.get_or_init(T::NAME, T::VERSION, |d| {
        d.kind = abi::KIND_TRACKER;
        d.create = Some(tracker_create::<T>);
        d.destroy = Some(destroy::<TrackerHandle<T>>);
        d.last_error = Some(last_error::<TrackerHandle<T>>);
        d.track = Some(tracker_track::<T>);
        d.reset = Some(tracker_reset::<T>);
    })
}

fn c_string_lossy(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// The text of a panic payload (`panic!` gives `&str` or `String`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Status code and bare message (without the `Display` prefix, which the host re-adds when
/// it rebuilds the [`PluginError`]).
fn split_error(e: PluginError) -> (Status, String) {
    match e {
        PluginError::InvalidParams(m) => (Status::InvalidParams, m),
        PluginError::InvalidInput(m) => (Status::InvalidInput, m),
        PluginError::Failed(m) => (Status::Failed, m),
        PluginError::Panicked(m) => (Status::Panicked, m),
    }
}

thread_local! {
    // Per thread so that concurrent creates on different threads cannot overwrite each
    // other's message between `create` and `last_error(NULL)`.
    static CREATE_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_create_error(message: String) {
    let message = c_string_lossy(&message);
    let _ = CREATE_ERROR.try_with(|e| *e.borrow_mut() = message);
}

/// Shared by both handle kinds so that `last_error`/`destroy` can be generic.
trait HasError {
    fn error(&self) -> &CString;
}

struct DetectorHandle<T> {
    plugin: T,
    num_keypoints: u32,
    error: CString,
    // Output buffers, reused from call to call; the host reads them before its next call.
    detections: Vec<PsDetection>,
    frame_counts: Vec<usize>,
    keypoints: Vec<f32>,
}

struct TrackerHandle<T> {
    plugin: T,
    error: CString,
    objects: Vec<PsTrackedObject>,
    // Reused to rebuild owned `Detection`s from the borrowed input.
    input: Vec<Detection>,
}

impl<T> HasError for DetectorHandle<T> {
    fn error(&self) -> &CString {
        &self.error
    }
}

impl<T> HasError for TrackerHandle<T> {
    fn error(&self) -> &CString {
        &self.error
    }
}

/// Turns a call's outcome into a status, storing the message in `error`.
fn finish(error: &mut CString, outcome: std::thread::Result<Result<(), PluginError>>) -> i32 {
    let (status, message) = match outcome {
        Ok(Ok(())) => {
            if !error.as_bytes().is_empty() {
                *error = CString::default();
            }
            return Status::Ok.raw();
        }
        Ok(Err(e)) => split_error(e),
        Err(payload) => (Status::Panicked, panic_message(&*payload)),
    };
    *error = c_string_lossy(&message);
    status.raw()
}

/// Parses `create`'s parameters; empty or missing means `{}`.
///
/// # Safety
/// `params` must be null or point at `len` readable bytes.
unsafe fn parse_params(
    params: *const c_char,
    len: usize,
) -> Result<serde_json::Value, PluginError> {
    let bytes: &[u8] = if params.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the caller guarantees `len` readable bytes at `params`.
        unsafe { std::slice::from_raw_parts(params.cast::<u8>(), len) }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| PluginError::InvalidParams(format!("parameters are not valid JSON: {e}")))
}

/// Shared body of both `create` shims.
///
/// # Safety
/// As for [`abi::CreateFn`].
unsafe fn create_with<H>(
    params: *const c_char,
    len: usize,
    out_handle: *mut *mut c_void,
    build: impl FnOnce(serde_json::Value) -> Result<H, PluginError>,
) -> i32 {
    if out_handle.is_null() {
        set_create_error("create called with a null out_handle".to_owned());
        return Status::InvalidInput.raw();
    }
    // SAFETY: checked non-null; the caller owns the slot.
    unsafe { *out_handle = std::ptr::null_mut() };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: forwarded from the caller.
        let value = unsafe { parse_params(params, len) }?;
        build(value)
    }));
    let (status, message) = match outcome {
        Ok(Ok(handle)) => {
            set_create_error(String::new());
            // SAFETY: as above.
            unsafe { *out_handle = Box::into_raw(Box::new(handle)).cast::<c_void>() };
            return Status::Ok.raw();
        }
        Ok(Err(e)) => split_error(e),
        Err(payload) => (Status::Panicked, panic_message(&*payload)),
    };
    set_create_error(message);
    status.raw()
}

unsafe extern "C" fn detector_create<T: DetectorPlugin>(
    params: *const c_char,
    len: usize,
    out_handle: *mut *mut c_void,
) -> i32 {
    // SAFETY: the host upholds `CreateFn`'s contract.
    unsafe {
        create_with(params, len, out_handle, |value| {
            let plugin = T::from_params(&value)?;
            let num_keypoints = u32::try_from(plugin.num_keypoints()).map_err(|_| {
                PluginError::Failed("num_keypoints does not fit in 32 bits".to_owned())
            })?;
            Ok(DetectorHandle {
                plugin,
                num_keypoints,
                error: CString::default(),
                detections: Vec::new(),
                frame_counts: Vec::new(),
                keypoints: Vec::new(),
            })
        })
    }
}

unsafe extern "C" fn tracker_create<T: TrackerPlugin>(
    params: *const c_char,
    len: usize,
    out_handle: *mut *mut c_void,
) -> i32 {
    // SAFETY: the host upholds `CreateFn`'s contract.
    unsafe {
        create_with(params, len, out_handle, |value| {
            Ok(TrackerHandle {
                plugin: T::from_params(&value)?,
                error: CString::default(),
                objects: Vec::new(),
                input: Vec::new(),
            })
        })
    }
}

unsafe extern "C" fn destroy<H>(handle: *mut c_void) {
    if handle.is_null() {
        return;
    }
    // A panicking Drop has nobody to report to; swallowing it beats aborting the host.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the handle came from `Box::into_raw` in `create_with` and the host
        // destroys it once.
        drop(unsafe { Box::from_raw(handle.cast::<H>()) });
    }));
}

unsafe extern "C" fn last_error<H: HasError>(handle: *mut c_void) -> *const c_char {
    if handle.is_null() {
        // The pointer stays valid until this thread's next create: the thread-local CString
        // is only replaced there.
        return CREATE_ERROR
            .try_with(|e| e.borrow().as_ptr())
            .unwrap_or(c"".as_ptr());
    }
    // SAFETY: a live handle from `create`, used by one thread at a time.
    let handle = unsafe { &*handle.cast::<H>() };
    handle.error().as_ptr()
}

unsafe extern "C" fn detector_num_keypoints<T: DetectorPlugin>(
    handle: *mut c_void,
    out: *mut u32,
) -> i32 {
    if handle.is_null() || out.is_null() {
        return Status::InvalidInput.raw();
    }
    // SAFETY: a live handle from `create`; `out` checked non-null.
    unsafe { *out = (*handle.cast::<DetectorHandle<T>>()).num_keypoints };
    Status::Ok.raw()
}

/// Rebuilds a [`FrameRef`] from its C form, checking what the C form cannot guarantee.
///
/// # Safety
/// `frame.data` must be null or point at `frame.data_len` bytes valid for `'a`.
unsafe fn frame_from_raw<'a>(frame: &PsFrame) -> Result<FrameRef<'a>, PluginError> {
    let format = match frame.pixel_format {
        abi::PIXEL_FORMAT_BGR8 => PixelFormat::Bgr8,
        abi::PIXEL_FORMAT_RGB8 => PixelFormat::Rgb8,
        other => {
            return Err(PluginError::InvalidInput(format!(
                "unknown pixel format {other}"
            )));
        }
    };
    let data: &'a [u8] = if frame.data_len == 0 {
        &[]
    } else if frame.data.is_null() {
        return Err(PluginError::InvalidInput(
            "frame data is null but data_len is not 0".to_owned(),
        ));
    } else {
        // SAFETY: the caller guarantees `data_len` bytes at `data`.
        unsafe { std::slice::from_raw_parts(frame.data, frame.data_len) }
    };
    let frame = FrameRef {
        data,
        width: frame.width,
        height: frame.height,
        row_stride: frame.row_stride,
        format,
        frame_number: frame.frame_number,
    };
    frame.validate()?;
    Ok(frame)
}

impl<T: DetectorPlugin> DetectorHandle<T> {
    /// Flattens the author's result into the handle's output buffers.
    fn store(&mut self, lists: Vec<Vec<Detection>>, num_frames: usize) -> Result<(), PluginError> {
        if lists.len() != num_frames {
            return Err(PluginError::Failed(format!(
                "detector returned {} detection lists for {num_frames} frames",
                lists.len()
            )));
        }
        self.detections.clear();
        self.frame_counts.clear();
        self.keypoints.clear();
        let declared = self.num_keypoints as usize;
        for list in lists {
            self.frame_counts.push(list.len());
            for d in list {
                if d.keypoints.len() != declared {
                    return Err(PluginError::Failed(format!(
                        "a detection has {} keypoints but the detector declares {declared}",
                        d.keypoints.len()
                    )));
                }
                self.keypoints.extend(d.keypoints.iter().flatten());
                self.detections.push(PsDetection {
                    bbox: d.bbox,
                    score: d.score,
                    class_id: d.class_id,
                });
            }
        }
        Ok(())
    }

    fn output(&self) -> PsDetectOutput {
        PsDetectOutput {
            detections: self.detections.as_ptr(),
            num_detections: self.detections.len(),
            frame_counts: self.frame_counts.as_ptr(),
            num_frames: self.frame_counts.len(),
            keypoints: self.keypoints.as_ptr(),
            num_keypoints: self.num_keypoints,
            reserved: 0,
        }
    }
}

unsafe extern "C" fn detector_detect<T: DetectorPlugin>(
    handle: *mut c_void,
    frames: *const PsFrame,
    num_frames: usize,
    out: *mut PsDetectOutput,
) -> i32 {
    if handle.is_null() {
        return Status::InvalidInput.raw();
    }
    // SAFETY: a live handle from `create`, used by one thread at a time.
    let h = unsafe { &mut *handle.cast::<DetectorHandle<T>>() };
    if out.is_null() || (frames.is_null() && num_frames > 0) {
        h.error = c_string_lossy("detect called with a null pointer");
        return Status::InvalidInput.raw();
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let raw: &[PsFrame] = if num_frames == 0 {
            &[]
        } else {
            // SAFETY: the host passes `num_frames` frames.
            unsafe { std::slice::from_raw_parts(frames, num_frames) }
        };
        let refs = raw
            .iter()
            // SAFETY: each frame's data is valid for this call.
            .map(|f| unsafe { frame_from_raw(f) })
            .collect::<Result<Vec<_>, _>>()?;
        let lists = h.plugin.detect(&refs)?;
        h.store(lists, num_frames)?;
        // SAFETY: checked non-null.
        unsafe { *out = h.output() };
        Ok(())
    }));
    finish(&mut h.error, outcome)
}

unsafe extern "C" fn tracker_track<T: TrackerPlugin>(
    handle: *mut c_void,
    frame_number: u64,
    detections: *const PsDetectionList,
    out: *mut PsTrackOutput,
) -> i32 {
    if handle.is_null() {
        return Status::InvalidInput.raw();
    }
    // SAFETY: a live handle from `create`, used by one thread at a time.
    let h = unsafe { &mut *handle.cast::<TrackerHandle<T>>() };
    if out.is_null() || detections.is_null() {
        h.error = c_string_lossy("track called with a null pointer");
        return Status::InvalidInput.raw();
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: checked non-null; valid for this call.
        let list = unsafe { &*detections };
        // SAFETY: the host passes arrays of the stated lengths.
        unsafe { read_detection_list(list, &mut h.input) }?;
        let objects = h.plugin.update(frame_number, &h.input)?;
        h.objects.clear();
        h.objects.extend(objects.iter().map(PsTrackedObject::from));
        // SAFETY: checked non-null.
        unsafe {
            *out = PsTrackOutput {
                objects: h.objects.as_ptr(),
                num_objects: h.objects.len(),
            }
        };
        Ok(())
    }));
    finish(&mut h.error, outcome)
}

/// Copies a borrowed [`PsDetectionList`] into owned [`Detection`]s.
///
/// # Safety
/// The list's pointers must cover the lengths it states.
unsafe fn read_detection_list(
    list: &PsDetectionList,
    into: &mut Vec<Detection>,
) -> Result<(), PluginError> {
    into.clear();
    if list.num_detections == 0 {
        return Ok(());
    }
    if list.detections.is_null() {
        return Err(PluginError::InvalidInput(
            "detections is null but num_detections is not 0".to_owned(),
        ));
    }
    let nk = list.num_keypoints as usize;
    let kp_len = list
        .num_detections
        .checked_mul(nk * 3)
        .ok_or_else(|| PluginError::InvalidInput("keypoint count overflows".to_owned()))?;
    if kp_len > 0 && list.keypoints.is_null() {
        return Err(PluginError::InvalidInput(
            "keypoints is null but num_keypoints is not 0".to_owned(),
        ));
    }
    // SAFETY: the caller guarantees the stated lengths.
    let dets = unsafe { std::slice::from_raw_parts(list.detections, list.num_detections) };
    let kps: &[f32] = if kp_len == 0 {
        &[]
    } else {
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts(list.keypoints, kp_len) }
    };
    into.extend(dets.iter().enumerate().map(|(i, d)| {
        Detection {
            bbox: d.bbox,
            score: d.score,
            class_id: d.class_id,
            keypoints: kps[i * nk * 3..(i + 1) * nk * 3]
                .chunks_exact(3)
                .map(|k| [k[0], k[1], k[2]])
                .collect(),
        }
    }));
    Ok(())
}

unsafe extern "C" fn tracker_reset<T: TrackerPlugin>(handle: *mut c_void) -> i32 {
    if handle.is_null() {
        return Status::InvalidInput.raw();
    }
    // SAFETY: a live handle from `create`, used by one thread at a time.
    let h = unsafe { &mut *handle.cast::<TrackerHandle<T>>() };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        h.plugin.reset();
        Ok(())
    }));
    finish(&mut h.error, outcome)
}

#[cfg(test)]
mod tests {
    //! The shims called in-process through the descriptor, as the host would call them.

    use super::*;
    use std::ffi::CStr;

    struct Echo;

    impl Detector for Echo {
        fn info(&self) -> PluginInfo {
            detector_info::<Self>()
        }

        fn num_keypoints(&self) -> usize {
            1
        }

        fn detect(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Vec<Detection>>, PluginError> {
            frames
                .iter()
                .map(|f| match f.frame_number {
                    13 => panic!("unlucky frame"),
                    14 => Err(PluginError::InvalidInput("frame 14 is odd".to_owned())),
                    n => Ok((0..n)
                        .map(|i| Detection {
                            bbox: [i as f32, 0.0, 1.0 + i as f32, 1.0],
                            score: 0.5,
                            class_id: i as u32,
                            keypoints: vec![[i as f32, 2.0, 3.0]],
                        })
                        .collect()),
                })
                .collect()
        }
    }

    impl DetectorPlugin for Echo {
        const NAME: &'static str = "echo";
        const VERSION: &'static str = "1.2.3";

        fn from_params(params: &serde_json::Value) -> Result<Self, PluginError> {
            match params.get("fail").and_then(serde_json::Value::as_str) {
                Some("panic") => panic!("asked to panic"),
                Some(m) => Err(PluginError::InvalidParams(m.to_owned())),
                None => Ok(Echo),
            }
        }
    }

    fn descriptor() -> &'static PsPluginDescriptor {
        static CELL: DescriptorCell = DescriptorCell::new();
        // SAFETY: a static descriptor.
        unsafe { &*detector_entry::<Echo>(&CELL) }
    }

    fn text(p: *const c_char) -> String {
        // SAFETY: the SDK returns NUL-terminated strings.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    fn create(json: &str) -> (i32, *mut c_void) {
        let d = descriptor();
        let mut handle = std::ptr::null_mut();
        // SAFETY: `json` is `len` bytes; `handle` is a valid slot.
        let status = unsafe { d.create.unwrap()(json.as_ptr().cast(), json.len(), &mut handle) };
        (status, handle)
    }

    fn create_error() -> String {
        // SAFETY: null asks for this thread's create error.
        text(unsafe { descriptor().last_error.unwrap()(std::ptr::null_mut()) })
    }

    #[test]
    fn the_descriptor_describes_the_type() {
        let d = descriptor();
        assert_eq!(
            (d.abi_version, d.struct_size),
            (abi::ABI_VERSION, abi::DESCRIPTOR_SIZE)
        );
        assert_eq!(d.kind, abi::KIND_DETECTOR);
        assert_eq!(
            (text(d.name), text(d.version)),
            ("echo".to_owned(), "1.2.3".to_owned())
        );
        assert!(d.track.is_none() && d.reset.is_none());
        // The same pointer every time.
        assert!(std::ptr::eq(d, descriptor()));
    }

    #[test]
    fn create_reports_bad_json_bad_params_and_panics() {
        let (status, handle) = create("{not json");
        assert_eq!(
            (Status::from_raw(status), handle.is_null()),
            (Status::InvalidParams, true)
        );
        assert!(create_error().starts_with("parameters are not valid JSON"));
        let (status, _) = create(r#"{"fail": "no thanks"}"#);
        assert_eq!(Status::from_raw(status), Status::InvalidParams);
        assert_eq!(create_error(), "no thanks");
        let (status, _) = create(r#"{"fail": "panic"}"#);
        assert_eq!(Status::from_raw(status), Status::Panicked);
        assert_eq!(create_error(), "asked to panic");
        // Empty params mean `{}`; success clears the error.
        let (status, handle) = create("");
        assert_eq!(status, 0);
        assert_eq!(create_error(), "");
        // SAFETY: a live handle, destroyed once.
        unsafe { descriptor().destroy.unwrap()(handle) };
    }

    #[test]
    fn detect_flattens_and_reports() {
        let d = descriptor();
        let (_, handle) = create("{}");
        let mut nk = 0;
        // SAFETY (whole test): a live handle and valid pointers, as the host passes them.
        assert_eq!(unsafe { d.num_keypoints.unwrap()(handle, &mut nk) }, 0);
        assert_eq!(nk, 1);
        let pixels = [0u8; 2 * 2 * 3];
        let frame = |n| PsFrame {
            data: pixels.as_ptr(),
            data_len: pixels.len(),
            row_stride: 6,
            frame_number: n,
            width: 2,
            height: 2,
            pixel_format: abi::PIXEL_FORMAT_BGR8,
            reserved: 0,
        };
        let frames = [frame(2), frame(0), frame(1)];
        let mut out = std::mem::MaybeUninit::<PsDetectOutput>::zeroed();
        let detect = d.detect.unwrap();
        assert_eq!(
            unsafe { detect(handle, frames.as_ptr(), 3, out.as_mut_ptr()) },
            0
        );
        let out = unsafe { out.assume_init() };
        assert_eq!(
            (out.num_frames, out.num_detections, out.num_keypoints),
            (3, 3, 1)
        );
        let counts = unsafe { std::slice::from_raw_parts(out.frame_counts, 3) };
        assert_eq!(counts, [2, 0, 1]);
        let dets = unsafe { std::slice::from_raw_parts(out.detections, 3) };
        assert_eq!(dets[1].bbox, [1.0, 0.0, 2.0, 1.0]);
        let kps = unsafe { std::slice::from_raw_parts(out.keypoints, 9) };
        assert_eq!(kps, [0.0, 2.0, 3.0, 1.0, 2.0, 3.0, 0.0, 2.0, 3.0]);

        let mut out = std::mem::MaybeUninit::<PsDetectOutput>::zeroed();
        let status = unsafe { detect(handle, &frame(14), 1, out.as_mut_ptr()) };
        assert_eq!(Status::from_raw(status), Status::InvalidInput);
        assert_eq!(
            text(unsafe { d.last_error.unwrap()(handle) }),
            "frame 14 is odd"
        );
        let status = unsafe { detect(handle, &frame(13), 1, out.as_mut_ptr()) };
        assert_eq!(Status::from_raw(status), Status::Panicked);
        assert_eq!(
            text(unsafe { d.last_error.unwrap()(handle) }),
            "unlucky frame"
        );

        // A frame whose buffer is too short never reaches the detector.
        let short = PsFrame {
            data_len: 5,
            ..frame(1)
        };
        let status = unsafe { detect(handle, &short, 1, out.as_mut_ptr()) };
        assert_eq!(Status::from_raw(status), Status::InvalidInput);
        let status = unsafe { detect(handle, std::ptr::null(), 1, out.as_mut_ptr()) };
        assert_eq!(Status::from_raw(status), Status::InvalidInput);
        unsafe { d.destroy.unwrap()(handle) };
    }

    #[test]
    fn unknown_status_codes_read_as_failed() {
        assert_eq!(Status::from_raw(0), Status::Ok);
        assert_eq!(Status::from_raw(4), Status::Panicked);
        assert_eq!(Status::from_raw(-1), Status::Failed);
        assert_eq!(Status::from_raw(77), Status::Failed);
        assert_eq!(Status::InvalidParams.raw(), 2);
    }
}
