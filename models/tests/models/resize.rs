//! The Rust letterbox (`LinearResize`, `letterbox_into_rust`) against OpenCV's
//! `resize(INTER_LINEAR)` + `copyMakeBorder` (`letterbox_into_opencv`), byte for byte: real
//! images at the sizes YOLO uses, and noise at odd sizes and scales, up and down, each
//! axis alone, exact halving (OpenCV's area path), 1-pixel sides and padded rows.

use opencv::core::{Mat, Size};
use opencv::prelude::*;
use pitchside_models::Letterbox;
use pitchside_models::preprocess::{letterbox_into_opencv, letterbox_into_rust, resize_linear};
use pitchside_plugin::{FrameRef, PixelFormat};

use crate::support::{asset, imread};

/// `cv::resize(INTER_LINEAR)` of a packed 3-channel frame.
fn cv_resize(f: &FrameRef<'_>, w: u32, h: u32) -> Vec<u8> {
    let src = unsafe {
        Mat::new_rows_cols_with_data_unsafe(
            f.height as i32,
            f.width as i32,
            opencv::core::CV_8UC3,
            f.data.as_ptr() as *mut std::ffi::c_void,
            f.row_stride,
        )
    }
    .unwrap();
    let mut dst = Mat::default();
    opencv::imgproc::resize(
        &src,
        &mut dst,
        Size::new(w as i32, h as i32),
        0.0,
        0.0,
        opencv::imgproc::INTER_LINEAR,
    )
    .unwrap();
    dst.data_bytes().unwrap().to_vec()
}

/// Deterministic noise (an LCG), so that every coefficient and rounding matters.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect()
}

fn frame(data: &[u8], w: u32, h: u32, stride: usize, format: PixelFormat) -> FrameRef<'_> {
    FrameRef {
        data,
        width: w,
        height: h,
        row_stride: stride,
        format,
        frame_number: 0,
    }
}

fn assert_same_resize(f: &FrameRef<'_>, w: u32, h: u32) {
    let ours = resize_linear(f, w, h).unwrap();
    let cv = cv_resize(f, w, h);
    assert_eq!(ours.len(), cv.len(), "{}x{} -> {w}x{h}", f.width, f.height);
    if let Some(i) = ours.iter().zip(&cv).position(|(a, b)| a != b) {
        let px = i / 3;
        panic!(
            "{}x{} -> {w}x{h}: first difference at x {} y {} channel {}: ours {} OpenCV {}",
            f.width,
            f.height,
            px % w as usize,
            px / w as usize,
            i % 3,
            ours[i],
            cv[i]
        );
    }
}

fn assert_same_letterbox(f: &FrameRef<'_>, lb: &Letterbox, what: &str) {
    let n = 3 * (lb.out_w() * lb.out_h()) as usize;
    let (mut ours, mut cv) = (vec![f32::NAN; n], vec![f32::NAN; n]);
    letterbox_into_rust(f, lb, &mut ours).unwrap();
    letterbox_into_opencv(f, lb, &mut cv).unwrap();
    let differ = ours
        .iter()
        .zip(&cv)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert_eq!(differ, 0, "{what}: {lb:?}: {differ} of {n} values differ");
}

#[test]
fn real_images_letterbox_as_opencv_at_every_yolo_size() {
    let mut checked = 0;
    for name in ["bus.jpg", "zidane.jpg", "messi5.jpg"] {
        let img = imread(&asset(name));
        let f = img.frame();
        for imgsz in [160, 320, 480, 640, 960, 1280, 1920] {
            for auto in [true, false] {
                let lb = Letterbox::new(f.width, f.height, imgsz, auto, 32);
                assert_same_letterbox(&f, &lb, &format!("{name} at {imgsz} auto {auto}"));
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 42);
}

#[test]
fn real_images_resize_as_opencv_at_odd_sizes() {
    for name in ["bus.jpg", "zidane.jpg", "messi5.jpg"] {
        let img = imread(&asset(name));
        let f = img.frame();
        let (w, h) = (f.width, f.height);
        for (dw, dh) in [
            (w / 2, h / 2),
            (w * 2, h * 2),
            (w / 3, h / 3),
            (w * 3 / 2, h * 3 / 2),
            (w - 1, h + 1),
            (w, h / 2),
            (w / 2, h),
            (641, 359),
            (1, 1),
            (w * 5, 3),
        ] {
            assert_same_resize(&f, dw, dh);
        }
    }
}

#[test]
fn noise_resizes_as_opencv_up_and_down_at_odd_sizes() {
    let sizes = [
        (1, 1),
        (1, 7),
        (7, 1),
        (2, 2),
        (3, 3),
        (5, 4),
        (37, 101),
        (101, 37),
        (64, 48),
        (127, 93),
        (640, 360),
        (768, 576),
    ];
    let mut cases = 0;
    for (i, &(w, h)) in sizes.iter().enumerate() {
        let data = noise((w * h * 3) as usize, i as u64);
        let f = frame(&data, w, h, w as usize * 3, PixelFormat::Bgr8);
        for &(dw, dh) in &sizes {
            assert_same_resize(&f, dw, dh);
            cases += 1;
        }
        // Exact halving (OpenCV's INTER_AREA path) and doubling, each axis alone too.
        for (dw, dh) in [
            (w.div_ceil(2), h.div_ceil(2)),
            (w * 2, h * 2),
            (w * 2, h),
            (w, h * 2),
            (w + 1, h),
            (w, h.div_ceil(2)),
        ] {
            assert_same_resize(&f, dw, dh);
            cases += 1;
        }
    }
    assert_eq!(cases, sizes.len() * (sizes.len() + 6));
}

#[test]
fn padded_rows_and_rgb_frames_letterbox_as_opencv() {
    // 150x97 in a buffer with 17 spare bytes per row.
    let (w, h, stride) = (150u32, 97u32, 150 * 3 + 17);
    let data = noise(stride * h as usize, 99);
    for format in [PixelFormat::Bgr8, PixelFormat::Rgb8] {
        let f = frame(&data, w, h, stride, format);
        for imgsz in [64, 96, 320, 640] {
            for auto in [true, false] {
                let lb = Letterbox::new(w, h, imgsz, auto, 32);
                assert_same_letterbox(&f, &lb, &format!("{format:?} 150x97 at {imgsz}"));
            }
        }
        assert_same_resize(&f, 75, 49);
        assert_same_resize(&f, 301, 97);
    }
    // The same size: no resize, only padding.
    let data = noise(64 * 48 * 3, 7);
    let f = frame(&data, 64, 48, 64 * 3, PixelFormat::Bgr8);
    assert_same_letterbox(&f, &Letterbox::new(64, 48, 64, false, 32), "64x48 at 64");
}
