//! A detector written straight against the C ABI, the way a C author would, without the
//! SDK: proves the ABI stands alone, and lets the tests send output the SDK would never
//! produce. The mode is picked by looking for its name in the params JSON (like `strstr`):
//! `wrong_frame_count`, `bad_counts`, `null_detections`, `weird_status`, `no_handle`;
//! anything else behaves.

use std::ffi::{CString, c_char, c_void};

use pitchside_plugin::abi::{
    ABI_VERSION, DESCRIPTOR_SIZE, KIND_DETECTOR, PsDetectOutput, PsDetection, PsFrame,
    PsPluginDescriptor,
};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Ok,
    WrongFrameCount,
    BadCounts,
    NullDetections,
    WeirdStatus,
}

struct Handle {
    mode: Mode,
    detections: Vec<PsDetection>,
    counts: Vec<usize>,
    error: CString,
}

static DESCRIPTOR: PsPluginDescriptor = PsPluginDescriptor {
    abi_version: ABI_VERSION,
    struct_size: DESCRIPTOR_SIZE,
    kind: KIND_DETECTOR,
    reserved: 0,
    name: c"raw-abi".as_ptr(),
    version: c"1.0.0".as_ptr(),
    create: Some(create),
    destroy: Some(destroy),
    last_error: Some(last_error),
    num_keypoints: Some(num_keypoints),
    detect: Some(detect),
    track: None,
    reset: None,
};

#[unsafe(no_mangle)]
pub extern "C" fn pitchside_plugin_entry() -> *const PsPluginDescriptor {
    &DESCRIPTOR
}

unsafe extern "C" fn create(params: *const c_char, len: usize, out: *mut *mut c_void) -> i32 {
    // SAFETY: the host passes `len` bytes.
    let params = unsafe { std::slice::from_raw_parts(params.cast::<u8>(), len) };
    let has = |needle: &str| params.windows(needle.len()).any(|w| w == needle.as_bytes());
    if has("no_handle") {
        // SAFETY: valid out slot.
        unsafe { *out = std::ptr::null_mut() };
        return 0;
    }
    let mode = if has("wrong_frame_count") {
        Mode::WrongFrameCount
    } else if has("bad_counts") {
        Mode::BadCounts
    } else if has("null_detections") {
        Mode::NullDetections
    } else if has("weird_status") {
        Mode::WeirdStatus
    } else {
        Mode::Ok
    };
    let handle = Box::new(Handle {
        mode,
        detections: Vec::new(),
        counts: Vec::new(),
        error: CString::default(),
    });
    // SAFETY: valid out slot.
    unsafe { *out = Box::into_raw(handle).cast() };
    0
}

unsafe extern "C" fn destroy(handle: *mut c_void) {
    if !handle.is_null() {
        // SAFETY: from `create`.
        drop(unsafe { Box::from_raw(handle.cast::<Handle>()) });
    }
}

unsafe extern "C" fn last_error(handle: *mut c_void) -> *const c_char {
    if handle.is_null() {
        return c"".as_ptr();
    }
    // SAFETY: from `create`.
    unsafe { (*handle.cast::<Handle>()).error.as_ptr() }
}

unsafe extern "C" fn num_keypoints(_: *mut c_void, out: *mut u32) -> i32 {
    // SAFETY: valid out slot.
    unsafe { *out = 0 };
    0
}

unsafe extern "C" fn detect(
    handle: *mut c_void,
    frames: *const PsFrame,
    num_frames: usize,
    out: *mut PsDetectOutput,
) -> i32 {
    // SAFETY: from `create`, one thread at a time.
    let h = unsafe { &mut *handle.cast::<Handle>() };
    if h.mode == Mode::WeirdStatus {
        h.error = c"status 77 is not in the ABI".to_owned();
        return 77;
    }
    let frames = if num_frames == 0 {
        &[][..]
    } else {
        // SAFETY: the host passes `num_frames` frames.
        unsafe { std::slice::from_raw_parts(frames, num_frames) }
    };
    h.detections.clear();
    h.counts.clear();
    for f in frames {
        h.detections.push(PsDetection {
            bbox: [0.0, 0.0, f.width as f32, f.height as f32],
            score: 0.5,
            class_id: 7,
        });
        h.counts.push(1);
    }
    let mut result = PsDetectOutput {
        detections: h.detections.as_ptr(),
        num_detections: h.detections.len(),
        frame_counts: h.counts.as_ptr(),
        num_frames: h.counts.len(),
        keypoints: std::ptr::null(),
        num_keypoints: 0,
        reserved: 0,
    };
    match h.mode {
        Mode::WrongFrameCount => {
            h.counts.push(0);
            result.frame_counts = h.counts.as_ptr();
            result.num_frames = h.counts.len();
        }
        Mode::BadCounts => result.num_detections = 0,
        Mode::NullDetections => result.detections = std::ptr::null(),
        Mode::Ok | Mode::WeirdStatus => {}
    }
    // SAFETY: valid out slot.
    unsafe { *out = result };
    0
}
