//! Property tests of the host's checks on what a plugin hands it: the descriptor (any
//! version, size, kind, null strings or functions) and each detection (any floats).
//! A descriptor is accepted exactly when it is complete for its kind at this ABI version,
//! and a kept detection is always finite, inside its frame and non-empty. Bounded for CI;
//! a long run by hand: `PROPTEST_CASES=100000 cargo test -p pitchside-plugin --lib proptests`.

use std::ffi::{c_char, c_void};
use std::path::Path;

use proptest::prelude::*;

use super::{LoadError, Loaded, SanitizeReport, Sanitizer};
use crate::abi::{self, PsDetection, PsPluginDescriptor};

fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

unsafe extern "C" fn create(_: *const c_char, _: usize, _: *mut *mut c_void) -> i32 {
    1
}
unsafe extern "C" fn destroy(_: *mut c_void) {}
unsafe extern "C" fn last_error(_: *mut c_void) -> *const c_char {
    c"".as_ptr()
}
unsafe extern "C" fn num_keypoints(_: *mut c_void, _: *mut u32) -> i32 {
    1
}
unsafe extern "C" fn reset(_: *mut c_void) -> i32 {
    1
}
unsafe extern "C" fn detect(
    _: *mut c_void,
    _: *const abi::PsFrame,
    _: usize,
    _: *mut abi::PsDetectOutput,
) -> i32 {
    1
}
unsafe extern "C" fn track(
    _: *mut c_void,
    _: u64,
    _: *const abi::PsDetectionList,
    _: *mut abi::PsTrackOutput,
) -> i32 {
    1
}

/// Which of a descriptor's optional parts are present.
#[derive(Debug, Clone, Copy)]
struct Parts {
    name: bool,
    version: bool,
    create: bool,
    destroy: bool,
    last_error: bool,
    num_keypoints: bool,
    detect: bool,
    track: bool,
    reset: bool,
}

fn descriptor(abi_version: u32, struct_size: u32, kind: u32, p: Parts) -> PsPluginDescriptor {
    // Only the pointers' presence is checked; none is called.
    PsPluginDescriptor {
        abi_version,
        struct_size,
        kind,
        reserved: 0,
        name: if p.name {
            c"fuzz".as_ptr()
        } else {
            std::ptr::null()
        },
        version: if p.version {
            c"1.0".as_ptr()
        } else {
            std::ptr::null()
        },
        create: p.create.then_some(create as abi::CreateFn),
        destroy: p.destroy.then_some(destroy as abi::DestroyFn),
        last_error: p.last_error.then_some(last_error as abi::LastErrorFn),
        num_keypoints: p
            .num_keypoints
            .then_some(num_keypoints as abi::NumKeypointsFn),
        detect: p.detect.then_some(detect as abi::DetectFn),
        track: p.track.then_some(track as abi::TrackFn),
        reset: p.reset.then_some(reset as abi::ResetFn),
    }
}

fn parts() -> impl Strategy<Value = Parts> {
    prop::array::uniform9(prop::bool::weighted(0.85)).prop_map(|b| Parts {
        name: b[0],
        version: b[1],
        create: b[2],
        destroy: b[3],
        last_error: b[4],
        num_keypoints: b[5],
        detect: b[6],
        track: b[7],
        reset: b[8],
    })
}

fn weird_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => -100.0f32..2000.0,
        1 => prop::sample::select(vec![
            f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN, -0.0, 0.0,
            f32::MIN_POSITIVE, 1e30, -1e30,
        ]),
        1 => any::<f32>(),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn a_descriptor_is_accepted_exactly_when_complete_for_its_kind(
        abi_version in prop_oneof![Just(abi::ABI_VERSION), any::<u32>()],
        struct_size in prop_oneof![
            Just(abi::DESCRIPTOR_SIZE),
            Just(abi::DESCRIPTOR_SIZE + 8),
            0u32..abi::DESCRIPTOR_SIZE,
        ],
        kind in prop_oneof![Just(abi::KIND_DETECTOR), Just(abi::KIND_TRACKER), any::<u32>()],
        p in parts(),
    ) {
        let d = descriptor(abi_version, struct_size, kind, p);
        // SAFETY: a whole descriptor in our memory, whatever its header says (a larger
        // declared size is only ever compared, never read past ours).
        let r = unsafe { Loaded::from_descriptor(&d, Path::new("fuzz.so")) };
        let common = p.name && p.version && p.create && p.destroy && p.last_error;
        let complete = match kind {
            abi::KIND_DETECTOR => common && p.detect && p.num_keypoints,
            abi::KIND_TRACKER => common && p.track && p.reset,
            _ => false,
        };
        let expected = abi_version == abi::ABI_VERSION
            && struct_size >= abi::DESCRIPTOR_SIZE
            && complete;
        match r {
            Ok(l) => {
                prop_assert!(expected, "accepted {:?}", (abi_version, struct_size, kind, p));
                prop_assert_eq!(l.info.name.as_str(), "fuzz");
            }
            Err(e) => {
                prop_assert!(!expected, "refused a complete descriptor: {}", e);
                // The first failing check is the one named.
                if abi_version != abi::ABI_VERSION {
                    let is_version_mismatch = matches!(e, LoadError::AbiVersionMismatch { .. });
                    prop_assert!(is_version_mismatch, "{}", e);
                } else if struct_size < abi::DESCRIPTOR_SIZE {
                    let is_size = matches!(e, LoadError::WrongStructSize { .. });
                    prop_assert!(is_size, "{}", e);
                } else {
                    let is_invalid = matches!(e, LoadError::InvalidDescriptor { .. });
                    prop_assert!(is_invalid, "{}", e);
                }
                prop_assert!(e.to_string().contains("fuzz.so"), "{}", e);
            }
        }
    }

    #[test]
    fn kept_detections_are_finite_inside_the_frame_and_not_empty(
        bbox in prop::array::uniform4(weird_f32()),
        score in weird_f32(),
        class_id in any::<u32>(),
        keypoints in prop::collection::vec(weird_f32(), 0..4).prop_map(|k| {
            // Whole (x, y, confidence) triples.
            let n = k.len() / 3 * 3;
            k[..n].to_vec()
        }),
        width in 1u32..8192,
        height in 1u32..8192,
    ) {
        let mut s = Sanitizer { report: SanitizeReport::default(), plugin: "fuzz".into() };
        let d = PsDetection { bbox, score, class_id };
        match s.detection(&d, &keypoints, width, height) {
            Some(k) => {
                let [x1, y1, x2, y2] = k.bbox;
                prop_assert!(k.bbox.iter().all(|v| v.is_finite()) && k.score.is_finite());
                prop_assert!(0.0 <= x1 && x1 < x2 && x2 <= width as f32, "{:?}", k.bbox);
                prop_assert!(0.0 <= y1 && y1 < y2 && y2 <= height as f32, "{:?}", k.bbox);
                prop_assert_eq!(k.keypoints.len(), keypoints.len() / 3);
                prop_assert!(k.keypoints.iter().flatten().all(|v| v.is_finite()));
                prop_assert_eq!(s.report.dropped_empty + s.report.dropped_non_finite, 0);
            }
            None => prop_assert_eq!(s.report.dropped_empty + s.report.dropped_non_finite, 1),
        }
    }
}
