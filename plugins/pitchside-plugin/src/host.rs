//! The engine side of the C ABI: loads plugin libraries and wraps them as `dyn Detector` /
//! `dyn Tracker`, so the pipeline cannot tell a shared-library plugin from a built-in one.
//!
//! ```ignore
//! let detector = pitchside_plugin::host::load_detector(
//!     "/opt/plugins/libcolour_ball_detector.so",
//!     &serde_json::json!({ "ball_min_area": 20 }),
//! )?;
//! ```
//!
//! # Library lifetime
//!
//! Libraries are loaded once per canonical path and never unloaded: the `Library` is leaked
//! into a process-wide table. Unloading a Rust `cdylib` is not safe in general (thread-local
//! destructors and `std`'s own statics may still point into it), adapters would have to
//! outlive every pointer the plugin handed out, and a plugin is a long-lived part of a
//! deployment anyway. Loading the same path again reuses the loaded library.
//!
//! Loading a library runs its initialisers: only load plugins you trust. The checks below
//! protect against mistakes (wrong file, stale build, buggy plugin), not against malice.
//!
//! # What the adapters check
//!
//! * The descriptor: `abi_version` equal to [`abi::ABI_VERSION`] and `struct_size` at least
//!   [`abi::DESCRIPTOR_SIZE`] before anything else is read; then kind, strings and the
//!   function pointers that kind needs.
//! * Every output buffer: null pointers, lengths that do not add up, misalignment, a wrong
//!   number of frame lists or keypoints make the call fail with [`PluginError::Failed`].
//! * Every detection:
//!   - a NaN or infinite coordinate, score or keypoint value **rejects** the detection (it
//!     is dropped, never passed on);
//!   - a box reaching outside the frame is **clipped** to `[0, width] x [0, height]` (a
//!     detector may legitimately see an object cut by the frame edge, so the box is kept);
//!   - a box that is empty after clipping (including inverted boxes, `x2 <= x1`) is dropped.
//!
//!   Each adapter counts what it changed ([`SanitizeReport`]) and logs the first occurrence
//!   of each kind with `tracing::warn!` (later ones at `debug`), so a misbehaving plugin is
//!   visible without flooding the log at 25 frames per second. Lists are re-sorted by
//!   descending score, the order the [`Detector`] contract promises.
//! * Tracked objects: non-finite values drop the object (the tracker does not know the frame
//!   size, so boxes are not clipped).
//! * A plugin that reports [`Status::Panicked`] poisons its handle: later calls fail with
//!   [`PluginError::Panicked`] without entering the plugin, since its state is unknown. The
//!   handle is still destroyed on drop.
//!
//! # Threading
//!
//! A handle is used by one thread at a time: the adapters are `Send` (a handle may move
//! between threads, e.g. to a worker) but not `Sync`. Different handles, even of the same
//! library, may run concurrently on different threads.

use std::collections::BTreeMap;
use std::ffi::{CStr, c_char, c_void};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use libloading::Library;

use crate::abi::{
    self, DestroyFn, DetectFn, LastErrorFn, PsDescriptorHeader, PsDetectOutput, PsDetection,
    PsDetectionList, PsFrame, PsPluginDescriptor, PsTrackOutput, PsTrackedObject, ResetFn, Status,
    TrackFn,
};
use crate::{
    Detection, Detector, FrameRef, PluginError, PluginInfo, PluginKind, TrackedObject, Tracker,
};

/// Why a plugin could not be loaded or created. Every variant names the library's path.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("plugin {}: file not found", path.display())]
    NotFound { path: PathBuf },
    #[error("plugin {}: cannot load the shared library: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: libloading::Error,
    },
    #[error("{} is not a Pitchside plugin: it does not export the `{symbol}` symbol", path.display())]
    NotAPlugin { path: PathBuf, symbol: &'static str },
    #[error(
        "plugin {}: ABI version mismatch: the plugin was built for ABI version {found}, \
         this engine supports ABI version {expected}",
        path.display()
    )]
    AbiVersionMismatch {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "plugin {}: wrong descriptor size: struct_size is {found} bytes, ABI version {abi} \
         needs at least {expected}",
        path.display()
    )]
    WrongStructSize {
        path: PathBuf,
        found: u32,
        expected: u32,
        abi: u32,
    },
    #[error("plugin {}: invalid descriptor: {reason}", path.display())]
    InvalidDescriptor { path: PathBuf, reason: String },
    #[error("plugin {} (`{name}`) is a {found}, not a {expected}", path.display())]
    WrongKind {
        path: PathBuf,
        name: String,
        found: PluginKind,
        expected: PluginKind,
    },
    #[error("plugin {} (`{name}`): create failed: {message}", path.display())]
    CreateFailed {
        path: PathBuf,
        name: String,
        message: String,
    },
    #[error("plugin {} (`{name}`) panicked in create: {message}", path.display())]
    CreatePanicked {
        path: PathBuf,
        name: String,
        message: String,
    },
}

/// What [`inspect`] reports about a plugin library without creating an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginDescription {
    pub path: PathBuf,
    pub info: PluginInfo,
    pub abi_version: u32,
    /// The descriptor size the plugin reports (larger than [`abi::DESCRIPTOR_SIZE`] for a
    /// plugin built against a newer minor revision).
    pub struct_size: u32,
}

/// What an adapter changed or dropped in a plugin's output since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SanitizeReport {
    /// Detections kept with their box clipped to the frame.
    pub clipped: u64,
    /// Detections dropped because their box was empty after clipping.
    pub dropped_empty: u64,
    /// Detections or tracked objects dropped for a NaN or infinite value.
    pub dropped_non_finite: u64,
}

/// Reads a plugin's descriptor without creating an instance, e.g. to list plugins.
pub fn inspect(path: impl AsRef<Path>) -> Result<PluginDescription, LoadError> {
    let loaded = Loaded::open(path.as_ref())?;
    Ok(PluginDescription {
        path: loaded.path.clone(),
        info: loaded.info.clone(),
        abi_version: loaded.abi_version,
        struct_size: loaded.struct_size,
    })
}

/// Loads a detector plugin and creates an instance with `params` (the deployment's JSON).
pub fn load_detector(
    path: impl AsRef<Path>,
    params: &serde_json::Value,
) -> Result<Box<dyn Detector>, LoadError> {
    Ok(Box::new(SharedDetector::load(path, params)?))
}

/// Loads a tracker plugin and creates an instance with `params` (the deployment's JSON).
pub fn load_tracker(
    path: impl AsRef<Path>,
    params: &serde_json::Value,
) -> Result<Box<dyn Tracker>, LoadError> {
    Ok(Box::new(SharedTracker::load(path, params)?))
}

/// Every library loaded so far, by canonical path; never unloaded (see the module docs).
static LIBRARIES: Mutex<BTreeMap<PathBuf, &'static Library>> = Mutex::new(BTreeMap::new());

fn library(path: &Path) -> Result<&'static Library, LoadError> {
    let canonical = match path.canonicalize() {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LoadError::NotFound {
                path: path.to_owned(),
            });
        }
        Err(_) => path.to_owned(),
    };
    // A poisoned lock only means another load panicked; the table itself is consistent.
    let mut table = LIBRARIES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(lib) = table.get(&canonical) {
        return Ok(lib);
    }
    // SAFETY: loading runs the library's initialisers; plugins are trusted code (module
    // docs). A path (not a bare name) keeps the system search path out of it.
    let lib = unsafe { Library::new(&canonical) }.map_err(|source| LoadError::Open {
        path: path.to_owned(),
        source,
    })?;
    let lib: &'static Library = Box::leak(Box::new(lib));
    table.insert(canonical, lib);
    Ok(lib)
}

/// A validated descriptor: the functions every kind needs, unwrapped.
#[derive(Clone)]
struct Loaded {
    path: PathBuf,
    info: PluginInfo,
    abi_version: u32,
    struct_size: u32,
    descriptor: PsPluginDescriptor,
    create: abi::CreateFn,
    destroy: DestroyFn,
    last_error: LastErrorFn,
}

impl Loaded {
    fn open(path: &Path) -> Result<Loaded, LoadError> {
        let lib = library(path)?;
        // SAFETY: the symbol's type is fixed by the ABI; a library exporting the name with
        // another type is not a plugin we can protect against.
        let entry: abi::EntryFn = unsafe { lib.get::<abi::EntryFn>(abi::ENTRY_SYMBOL_NUL) }
            .map(|symbol| *symbol)
            .map_err(|_| LoadError::NotAPlugin {
                path: path.to_owned(),
                symbol: abi::ENTRY_SYMBOL,
            })?;
        // SAFETY: the entry point takes nothing and returns a static pointer.
        let ptr = unsafe { entry() };
        // SAFETY: the ABI makes `ptr` null or a static descriptor.
        unsafe { Self::from_descriptor(ptr, path) }
    }

    /// Checks the descriptor an entry point returned: the version and size first, then the
    /// kind, the strings and the function pointers its kind needs.
    ///
    /// # Safety
    /// `ptr` is null, or points at a descriptor header, and at a whole descriptor of its
    /// declared size when that header is this version's with at least our size.
    unsafe fn from_descriptor(
        ptr: *const abi::PsPluginDescriptor,
        path: &Path,
    ) -> Result<Loaded, LoadError> {
        let invalid = |reason: &str| LoadError::InvalidDescriptor {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        if ptr.is_null() {
            return Err(invalid("the entry point returned null"));
        }
        if !ptr.cast::<PsDescriptorHeader>().is_aligned() {
            return Err(invalid("the descriptor is misaligned"));
        }
        // Only the header is read until it checks out: a descriptor of another major version
        // may have any layout after it.
        // SAFETY: every descriptor version starts with these two u32s.
        let header = unsafe { ptr.cast::<PsDescriptorHeader>().read() };
        if header.abi_version != abi::ABI_VERSION {
            return Err(LoadError::AbiVersionMismatch {
                path: path.to_owned(),
                found: header.abi_version,
                expected: abi::ABI_VERSION,
            });
        }
        if header.struct_size < abi::DESCRIPTOR_SIZE {
            return Err(LoadError::WrongStructSize {
                path: path.to_owned(),
                found: header.struct_size,
                expected: abi::DESCRIPTOR_SIZE,
                abi: abi::ABI_VERSION,
            });
        }
        if !ptr.is_aligned() {
            return Err(invalid("the descriptor is misaligned"));
        }
        // SAFETY: version and size checked; the plugin's descriptor holds at least ours.
        let descriptor = unsafe { ptr.read() };
        let kind = match descriptor.kind {
            abi::KIND_DETECTOR => PluginKind::Detector,
            abi::KIND_TRACKER => PluginKind::Tracker,
            other => return Err(invalid(&format!("unknown plugin kind {other}"))),
        };
        // SAFETY: the ABI makes both static NUL-terminated strings.
        let name = unsafe { c_str(descriptor.name) }.ok_or_else(|| invalid("name is null"))?;
        let version =
            unsafe { c_str(descriptor.version) }.ok_or_else(|| invalid("version is null"))?;
        let (Some(create), Some(destroy), Some(last_error)) =
            (descriptor.create, descriptor.destroy, descriptor.last_error)
        else {
            return Err(invalid("create, destroy or last_error is null"));
        };
        let complete = match kind {
            PluginKind::Detector => {
                descriptor.detect.is_some() && descriptor.num_keypoints.is_some()
            }
            PluginKind::Tracker => descriptor.track.is_some() && descriptor.reset.is_some(),
        };
        if !complete {
            return Err(invalid(&format!("a {kind} function pointer is null")));
        }
        Ok(Loaded {
            path: path.to_owned(),
            info: PluginInfo {
                name,
                version,
                kind,
            },
            abi_version: header.abi_version,
            struct_size: header.struct_size,
            descriptor,
            create,
            destroy,
            last_error,
        })
    }

    fn expect_kind(&self, expected: PluginKind) -> Result<(), LoadError> {
        if self.info.kind == expected {
            Ok(())
        } else {
            Err(LoadError::WrongKind {
                path: self.path.clone(),
                name: self.info.name.clone(),
                found: self.info.kind,
                expected,
            })
        }
    }

    /// Calls `create`; on failure reads the calling thread's create error.
    fn create(&self, params: &serde_json::Value) -> Result<*mut c_void, LoadError> {
        let json = params.to_string();
        let len = json.len();
        // NUL-terminated as a courtesy to C authors; `len` excludes the NUL.
        let mut bytes = json.into_bytes();
        bytes.push(0);
        let mut handle: *mut c_void = std::ptr::null_mut();
        // SAFETY: `bytes` holds `len` bytes plus a NUL; `handle` is a valid out slot.
        let status = unsafe { (self.create)(bytes.as_ptr().cast::<c_char>(), len, &mut handle) };
        let status = Status::from_raw(status);
        if status == Status::Ok && !handle.is_null() {
            return Ok(handle);
        }
        let message = if status == Status::Ok {
            "create reported success but returned no handle".to_owned()
        } else {
            // SAFETY: a null handle asks for this thread's create error.
            unsafe { self.error_message(std::ptr::null_mut()) }
        };
        let (path, name) = (self.path.clone(), self.info.name.clone());
        Err(match status {
            Status::Panicked => LoadError::CreatePanicked {
                path,
                name,
                message,
            },
            Status::InvalidParams => LoadError::CreateFailed {
                path,
                name,
                message: format!("invalid parameters: {message}"),
            },
            _ => LoadError::CreateFailed {
                path,
                name,
                message,
            },
        })
    }

    /// The plugin's `last_error` for `handle`, copied out.
    ///
    /// # Safety
    /// `handle` is null or a live handle of this plugin.
    unsafe fn error_message(&self, handle: *mut c_void) -> String {
        // SAFETY: forwarded; the returned string is valid until the next call.
        let message = unsafe { c_str((self.last_error)(handle)) }.unwrap_or_default();
        if message.is_empty() {
            "(the plugin gave no message)".to_owned()
        } else {
            message
        }
    }

    /// Rebuilds a [`PluginError`] from a failed call's status, naming the plugin.
    fn call_error(&self, status: Status, message: String) -> PluginError {
        let context = format!(
            "plugin `{}` ({}): {message}",
            self.info.name,
            self.path.display()
        );
        match status {
            Status::Panicked => PluginError::Panicked(context),
            Status::InvalidParams => PluginError::InvalidParams(context),
            Status::InvalidInput => PluginError::InvalidInput(context),
            Status::Ok | Status::Failed => PluginError::Failed(context),
        }
    }

    fn malformed(&self, what: &str) -> PluginError {
        PluginError::Failed(format!(
            "plugin `{}` ({}) returned malformed output: {what}",
            self.info.name,
            self.path.display()
        ))
    }
}

/// Copies a C string out (lossily, so a bad byte cannot fail a call).
///
/// # Safety
/// `ptr` is null or a NUL-terminated string.
unsafe fn c_str(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees NUL termination.
    Some(
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// A plugin-owned array as a slice, after checking what `from_raw_parts` requires.
///
/// # Safety
/// When non-null, `ptr` must point at `len` initialised values valid until the next call
/// on the handle.
unsafe fn plugin_slice<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T], String> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(format!("{what} is null but its length is {len}"));
    }
    if !ptr.is_aligned() {
        return Err(format!("{what} is misaligned"));
    }
    if len
        .checked_mul(size_of::<T>())
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(format!("{what} length {len} is implausible"));
    }
    // SAFETY: non-null, aligned, sized; the caller vouches for the contents.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Counts and logs what an adapter fixes in a plugin's output.
struct Sanitizer {
    report: SanitizeReport,
    plugin: String,
}

impl Sanitizer {
    fn non_finite(&mut self) {
        self.report.dropped_non_finite += 1;
        if self.report.dropped_non_finite == 1 {
            tracing::warn!(plugin = %self.plugin, "dropped a result with a NaN or infinite value (reported once; see SanitizeReport)");
        } else {
            tracing::debug!(plugin = %self.plugin, "dropped a result with a NaN or infinite value");
        }
    }

    fn clipped(&mut self) {
        self.report.clipped += 1;
        if self.report.clipped == 1 {
            tracing::warn!(plugin = %self.plugin, "clipped a box reaching outside the frame (reported once; see SanitizeReport)");
        } else {
            tracing::debug!(plugin = %self.plugin, "clipped a box reaching outside the frame");
        }
    }

    fn empty(&mut self) {
        self.report.dropped_empty += 1;
        if self.report.dropped_empty == 1 {
            tracing::warn!(plugin = %self.plugin, "dropped an empty or inverted box (reported once; see SanitizeReport)");
        } else {
            tracing::debug!(plugin = %self.plugin, "dropped an empty or inverted box");
        }
    }

    /// Applies the module's rules to one detection of a `width` x `height` frame.
    fn detection(
        &mut self,
        d: &PsDetection,
        keypoints: &[f32],
        width: u32,
        height: u32,
    ) -> Option<Detection> {
        if !d.score.is_finite()
            || !d.bbox.iter().all(|v| v.is_finite())
            || !keypoints.iter().all(|v| v.is_finite())
        {
            self.non_finite();
            return None;
        }
        let (w, h) = (width as f32, height as f32);
        let [x1, y1, x2, y2] = d.bbox;
        let bbox = [
            x1.clamp(0.0, w),
            y1.clamp(0.0, h),
            x2.clamp(0.0, w),
            y2.clamp(0.0, h),
        ];
        if bbox[2] <= bbox[0] || bbox[3] <= bbox[1] {
            self.empty();
            return None;
        }
        if bbox != d.bbox {
            self.clipped();
        }
        Some(Detection {
            bbox,
            score: d.score,
            class_id: d.class_id,
            keypoints: keypoints
                .chunks_exact(3)
                .map(|k| [k[0], k[1], k[2]])
                .collect(),
        })
    }
}

/// A detector in a shared library, driven through the C ABI. Usually used as the
/// `Box<dyn Detector>` from [`load_detector`]; this concrete type adds [`Self::report`].
pub struct SharedDetector {
    loaded: Loaded,
    detect_fn: DetectFn,
    handle: *mut c_void,
    num_keypoints: u32,
    /// Set once the plugin panicked: its state is unknown, so it is not entered again.
    poisoned: Option<String>,
    sanitizer: Sanitizer,
    // Reused across calls; holds pointers into the caller's frames only during `detect`.
    frames: Vec<PsFrame>,
}

// SAFETY: the ABI lets a handle move between threads as long as one thread uses it at a
// time, which `&mut self` on every call guarantees. The raw pointer keeps it `!Sync`.
unsafe impl Send for SharedDetector {}

impl SharedDetector {
    /// [`load_detector`] without the box.
    pub fn load(path: impl AsRef<Path>, params: &serde_json::Value) -> Result<Self, LoadError> {
        let loaded = Loaded::open(path.as_ref())?;
        loaded.expect_kind(PluginKind::Detector)?;
        let (Some(detect_fn), Some(num_keypoints_fn)) =
            (loaded.descriptor.detect, loaded.descriptor.num_keypoints)
        else {
            unreachable!("Loaded::open checked the detector functions");
        };
        let handle = loaded.create(params)?;
        let mut num_keypoints = 0u32;
        // SAFETY: a live handle and a valid out slot.
        let status = Status::from_raw(unsafe { num_keypoints_fn(handle, &mut num_keypoints) });
        if status != Status::Ok {
            // SAFETY: live handle; destroyed right after.
            let message = unsafe { loaded.error_message(handle) };
            unsafe { (loaded.destroy)(handle) };
            return Err(LoadError::CreateFailed {
                path: loaded.path.clone(),
                name: loaded.info.name.clone(),
                message: format!("num_keypoints failed: {message}"),
            });
        }
        let sanitizer = Sanitizer {
            report: SanitizeReport::default(),
            plugin: format!("{} ({})", loaded.info.name, loaded.path.display()),
        };
        Ok(SharedDetector {
            loaded,
            detect_fn,
            handle,
            num_keypoints,
            poisoned: None,
            sanitizer,
            frames: Vec::new(),
        })
    }

    /// What this adapter clipped or dropped so far.
    pub fn report(&self) -> SanitizeReport {
        self.sanitizer.report
    }

    pub fn path(&self) -> &Path {
        &self.loaded.path
    }

    fn read_output(
        &mut self,
        out: &PsDetectOutput,
        frames: &[FrameRef<'_>],
    ) -> Result<Vec<Vec<Detection>>, PluginError> {
        let loaded = &self.loaded;
        let bad = |what: String| loaded.malformed(&what);
        if out.num_frames != frames.len() {
            return Err(bad(format!(
                "{} detection lists for {} frames",
                out.num_frames,
                frames.len()
            )));
        }
        if out.num_keypoints != self.num_keypoints {
            return Err(bad(format!(
                "{} keypoints per detection, the plugin declared {}",
                out.num_keypoints, self.num_keypoints
            )));
        }
        // SAFETY (all three): the ABI makes these plugin-owned arrays valid until the next
        // call on this handle, which cannot happen while `self` is borrowed here.
        let counts = unsafe { plugin_slice(out.frame_counts, out.num_frames, "frame_counts") }
            .map_err(&bad)?;
        let detections = unsafe { plugin_slice(out.detections, out.num_detections, "detections") }
            .map_err(&bad)?;
        let per_detection = self.num_keypoints as usize * 3;
        let kp_len = out
            .num_detections
            .checked_mul(per_detection)
            .ok_or_else(|| bad("keypoint count overflows".to_owned()))?;
        let keypoints =
            unsafe { plugin_slice(out.keypoints, kp_len, "keypoints") }.map_err(&bad)?;
        let total = counts
            .iter()
            .try_fold(0usize, |acc, &c| acc.checked_add(c))
            .ok_or_else(|| bad("frame_counts overflow".to_owned()))?;
        if total != out.num_detections {
            return Err(bad(format!(
                "frame_counts add up to {total}, num_detections is {}",
                out.num_detections
            )));
        }
        let mut start = 0;
        let mut lists = Vec::with_capacity(frames.len());
        for (frame, &count) in frames.iter().zip(counts) {
            let mut list = Vec::with_capacity(count);
            for i in start..start + count {
                let kps = &keypoints[i * per_detection..(i + 1) * per_detection];
                if let Some(d) =
                    self.sanitizer
                        .detection(&detections[i], kps, frame.width, frame.height)
                {
                    list.push(d);
                }
            }
            start += count;
            list.sort_by(|a, b| b.score.total_cmp(&a.score));
            lists.push(list);
        }
        Ok(lists)
    }
}

impl Detector for SharedDetector {
    fn info(&self) -> PluginInfo {
        self.loaded.info.clone()
    }

    fn num_keypoints(&self) -> usize {
        self.num_keypoints as usize
    }

    fn detect(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Vec<Detection>>, PluginError> {
        if let Some(message) = &self.poisoned {
            return Err(poisoned_error(&self.loaded, message));
        }
        for frame in frames {
            frame.validate()?;
        }
        self.frames.clear();
        self.frames.extend(frames.iter().map(|f| PsFrame {
            data: f.data.as_ptr(),
            data_len: f.data.len(),
            row_stride: f.row_stride,
            frame_number: f.frame_number,
            width: f.width,
            height: f.height,
            pixel_format: f.format as u32,
            reserved: 0,
        }));
        let mut out = PsDetectOutput {
            detections: std::ptr::null(),
            num_detections: 0,
            frame_counts: std::ptr::null(),
            num_frames: 0,
            keypoints: std::ptr::null(),
            num_keypoints: 0,
            reserved: 0,
        };
        // SAFETY: live handle; `self.frames` points into `frames`, borrowed for this call.
        let status = unsafe {
            (self.detect_fn)(
                self.handle,
                self.frames.as_ptr(),
                self.frames.len(),
                &mut out,
            )
        };
        // Drop the borrowed pointers now rather than keep them dangling until next call.
        self.frames.clear();
        let status = Status::from_raw(status);
        if status != Status::Ok {
            // SAFETY: live handle.
            let message = unsafe { self.loaded.error_message(self.handle) };
            if status == Status::Panicked {
                self.poisoned = Some(message.clone());
            }
            return Err(self.loaded.call_error(status, message));
        }
        self.read_output(&out, frames)
    }
}

impl Drop for SharedDetector {
    fn drop(&mut self) {
        // SAFETY: the handle came from `create` and is destroyed once. The SDK's destroy
        // catches panics, so even a poisoned handle is freed.
        unsafe { (self.loaded.destroy)(self.handle) };
    }
}

fn poisoned_error(loaded: &Loaded, message: &str) -> PluginError {
    PluginError::Panicked(format!(
        "plugin `{}` ({}) panicked earlier and is no longer called: {message}",
        loaded.info.name,
        loaded.path.display()
    ))
}

/// A tracker in a shared library, driven through the C ABI.
pub struct SharedTracker {
    loaded: Loaded,
    track_fn: TrackFn,
    reset_fn: ResetFn,
    handle: *mut c_void,
    poisoned: Option<String>,
    sanitizer: Sanitizer,
    // Reused input buffers.
    detections: Vec<PsDetection>,
    keypoints: Vec<f32>,
}

// SAFETY: as for `SharedDetector`.
unsafe impl Send for SharedTracker {}

impl SharedTracker {
    /// [`load_tracker`] without the box.
    pub fn load(path: impl AsRef<Path>, params: &serde_json::Value) -> Result<Self, LoadError> {
        let loaded = Loaded::open(path.as_ref())?;
        loaded.expect_kind(PluginKind::Tracker)?;
        let (Some(track_fn), Some(reset_fn)) = (loaded.descriptor.track, loaded.descriptor.reset)
        else {
            unreachable!("Loaded::open checked the tracker functions");
        };
        let handle = loaded.create(params)?;
        let sanitizer = Sanitizer {
            report: SanitizeReport::default(),
            plugin: format!("{} ({})", loaded.info.name, loaded.path.display()),
        };
        Ok(SharedTracker {
            loaded,
            track_fn,
            reset_fn,
            handle,
            poisoned: None,
            sanitizer,
            detections: Vec::new(),
            keypoints: Vec::new(),
        })
    }

    pub fn report(&self) -> SanitizeReport {
        self.sanitizer.report
    }

    pub fn path(&self) -> &Path {
        &self.loaded.path
    }

    /// [`Tracker::reset`], reporting a failure instead of only logging it.
    pub fn try_reset(&mut self) -> Result<(), PluginError> {
        if let Some(message) = &self.poisoned {
            return Err(poisoned_error(&self.loaded, message));
        }
        // SAFETY: live handle.
        let status = Status::from_raw(unsafe { (self.reset_fn)(self.handle) });
        self.check(status)
    }

    fn check(&mut self, status: Status) -> Result<(), PluginError> {
        if status == Status::Ok {
            return Ok(());
        }
        // SAFETY: live handle.
        let message = unsafe { self.loaded.error_message(self.handle) };
        if status == Status::Panicked {
            self.poisoned = Some(message.clone());
        }
        Err(self.loaded.call_error(status, message))
    }
}

impl Tracker for SharedTracker {
    fn info(&self) -> PluginInfo {
        self.loaded.info.clone()
    }

    fn update(
        &mut self,
        frame_number: u64,
        detections: &[Detection],
    ) -> Result<Vec<TrackedObject>, PluginError> {
        if let Some(message) = &self.poisoned {
            return Err(poisoned_error(&self.loaded, message));
        }
        // The C list carries one keypoint count for all detections.
        let num_keypoints = detections.first().map_or(0, |d| d.keypoints.len());
        if detections
            .iter()
            .any(|d| d.keypoints.len() != num_keypoints)
        {
            return Err(PluginError::InvalidInput(
                "detections passed to a tracker must all have the same number of keypoints"
                    .to_owned(),
            ));
        }
        let num_keypoints = u32::try_from(num_keypoints)
            .map_err(|_| PluginError::InvalidInput("too many keypoints".to_owned()))?;
        self.detections.clear();
        self.keypoints.clear();
        for d in detections {
            self.detections.push(PsDetection {
                bbox: d.bbox,
                score: d.score,
                class_id: d.class_id,
            });
            self.keypoints.extend(d.keypoints.iter().flatten());
        }
        let list = PsDetectionList {
            detections: self.detections.as_ptr(),
            num_detections: self.detections.len(),
            keypoints: self.keypoints.as_ptr(),
            num_keypoints,
            reserved: 0,
        };
        let mut out = PsTrackOutput {
            objects: std::ptr::null(),
            num_objects: 0,
        };
        // SAFETY: live handle; `list` borrows our buffers for the call.
        let status = Status::from_raw(unsafe {
            (self.track_fn)(self.handle, frame_number, &list, &mut out)
        });
        self.check(status)?;
        // SAFETY: plugin-owned until the next call on this handle.
        let objects: &[PsTrackedObject] =
            unsafe { plugin_slice(out.objects, out.num_objects, "objects") }
                .map_err(|what| self.loaded.malformed(&what))?;
        let mut result = Vec::with_capacity(objects.len());
        for o in objects {
            if o.score.is_finite() && o.bbox.iter().all(|v| v.is_finite()) {
                result.push(TrackedObject::from(*o));
            } else {
                self.sanitizer.non_finite();
            }
        }
        Ok(result)
    }

    fn reset(&mut self) {
        if let Err(e) = self.try_reset() {
            tracing::warn!(plugin = %self.sanitizer.plugin, "reset failed: {e}");
        }
    }
}

impl Drop for SharedTracker {
    fn drop(&mut self) {
        // SAFETY: as for `SharedDetector`.
        unsafe { (self.loaded.destroy)(self.handle) };
    }
}

#[cfg(test)]
mod proptests;
