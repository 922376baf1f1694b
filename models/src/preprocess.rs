//! LetterBox exactly as ultralytics' `predict` does it: keep the aspect ratio, OpenCV
//! bilinear resize, pad with 114 split by `round(d ∓ 0.1)`; then BGR → RGB, CHW, /255.

use opencv::core::{BORDER_CONSTANT, Mat, Scalar, Size};
use opencv::prelude::*;
use pitchside_plugin::{FrameRef, PixelFormat};

use crate::ModelError;

/// Where the source image lands in the network input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Letterbox {
    pub src_w: u32,
    pub src_h: u32,
    /// Size after resizing, before padding.
    pub new_w: u32,
    pub new_h: u32,
    pub top: u32,
    pub bottom: u32,
    pub left: u32,
    pub right: u32,
}

impl Letterbox {
    /// Geometry for a `src_w`×`src_h` image at `imgsz`. `auto`: pad only to a multiple of
    /// `stride` (ultralytics' minimal rectangle, used by `predict` for same-shaped batches);
    /// otherwise pad to the full `imgsz` square.
    pub fn new(src_w: u32, src_h: u32, imgsz: u32, auto: bool, stride: u32) -> Letterbox {
        let (w, h, s) = (src_w.max(1) as f64, src_h.max(1) as f64, imgsz as f64);
        let r = (s / h).min(s / w);
        // Python's round() is round-half-to-even.
        let new_w = ((w * r).round_ties_even() as u32).max(1);
        let new_h = ((h * r).round_ties_even() as u32).max(1);
        let mut dw = imgsz.saturating_sub(new_w) as f64;
        let mut dh = imgsz.saturating_sub(new_h) as f64;
        if auto {
            dw %= stride as f64;
            dh %= stride as f64;
        }
        dw /= 2.0;
        dh /= 2.0;
        let rnd = |v: f64| v.round_ties_even().max(0.0) as u32;
        Letterbox {
            src_w,
            src_h,
            new_w,
            new_h,
            top: rnd(dh - 0.1),
            bottom: rnd(dh + 0.1),
            left: rnd(dw - 0.1),
            right: rnd(dw + 0.1),
        }
    }

    pub fn out_w(&self) -> u32 {
        self.new_w + self.left + self.right
    }

    pub fn out_h(&self) -> u32 {
        self.new_h + self.top + self.bottom
    }

    /// Per-axis gains and padding that map network coordinates back to the source,
    /// computed as ultralytics 8.4's `scale_boxes` does: from the input shape, with each
    /// side's resized length rounded as LetterBox rounds it. Returns (gain_x, gain_y, pad_x, pad_y).
    pub fn inverse(&self) -> (f32, f32, f32, f32) {
        let (ih, iw) = (self.out_h() as f64, self.out_w() as f64);
        let (h0, w0) = (self.src_h.max(1) as f64, self.src_w.max(1) as f64);
        let gain = (ih / h0).min(iw / w0);
        let new_h = (h0 * gain).round_ties_even().max(1.0);
        let new_w = (w0 * gain).round_ties_even().max(1.0);
        let pad_x = ((iw - new_w) / 2.0 - 0.1).round_ties_even();
        let pad_y = ((ih - new_h) / 2.0 - 0.1).round_ties_even();
        (
            (new_w / w0) as f32,
            (new_h / h0) as f32,
            pad_x as f32,
            pad_y as f32,
        )
    }
}

fn cv(e: opencv::Error) -> ModelError {
    ModelError::Image(e.to_string())
}

/// Letterboxes `frame` into `out` (3 × out_h × out_w, RGB planes, values / 255).
pub fn letterbox_into(
    frame: &FrameRef<'_>,
    lb: &Letterbox,
    out: &mut [f32],
) -> Result<(), ModelError> {
    frame
        .validate()
        .map_err(|e| ModelError::Image(e.to_string()))?;
    let (ow, oh) = (lb.out_w() as usize, lb.out_h() as usize);
    assert_eq!(out.len(), 3 * ow * oh, "output buffer size");
    // SAFETY: the Mat borrows `frame.data` only within this function; validate() checked
    // that the buffer holds height rows of row_stride bytes.
    let src = unsafe {
        Mat::new_rows_cols_with_data_unsafe(
            frame.height as i32,
            frame.width as i32,
            opencv::core::CV_8UC3,
            frame.data.as_ptr() as *mut std::ffi::c_void,
            frame.row_stride,
        )
    }
    .map_err(cv)?;
    let resized;
    let src_ref: &Mat = if lb.new_w != frame.width || lb.new_h != frame.height {
        let mut r = Mat::default();
        opencv::imgproc::resize(
            &src,
            &mut r,
            Size::new(lb.new_w as i32, lb.new_h as i32),
            0.0,
            0.0,
            opencv::imgproc::INTER_LINEAR,
        )
        .map_err(cv)?;
        resized = r;
        &resized
    } else {
        &src
    };
    let mut padded = Mat::default();
    opencv::core::copy_make_border(
        src_ref,
        &mut padded,
        lb.top as i32,
        lb.bottom as i32,
        lb.left as i32,
        lb.right as i32,
        BORDER_CONSTANT,
        Scalar::new(114.0, 114.0, 114.0, 0.0),
    )
    .map_err(cv)?;
    let bytes = padded.data_bytes().map_err(cv)?;
    let plane = ow * oh;
    let (ri, bi) = match frame.format {
        PixelFormat::Bgr8 => (2, 0),
        PixelFormat::Rgb8 => (0, 2),
    };
    let (r_plane, rest) = out.split_at_mut(plane);
    let (g_plane, b_plane) = rest.split_at_mut(plane);
    for (i, px) in bytes.chunks_exact(3).enumerate() {
        r_plane[i] = px[ri] as f32 / 255.0;
        g_plane[i] = px[1] as f32 / 255.0;
        b_plane[i] = px[bi] as f32 / 255.0;
    }
    Ok(())
}

/// Letterboxed bytes (BGR, HWC) for tests that check bit-exactness against ultralytics.
pub fn letterbox_bytes(frame: &FrameRef<'_>, lb: &Letterbox) -> Result<Vec<u8>, ModelError> {
    let mut f = vec![0f32; 3 * (lb.out_w() * lb.out_h()) as usize];
    letterbox_into(frame, lb, &mut f)?;
    let plane = (lb.out_w() * lb.out_h()) as usize;
    let mut out = Vec::with_capacity(plane * 3);
    for i in 0..plane {
        let px = |p: usize| (f[p * plane + i] * 255.0).round() as u8;
        let (r, g, b) = (px(0), px(1), px(2));
        match frame.format {
            PixelFormat::Bgr8 => out.extend([b, g, r]),
            PixelFormat::Rgb8 => out.extend([r, g, b]),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_hd_at_640_auto_is_384_by_640() {
        let lb = Letterbox::new(1920, 1080, 640, true, 32);
        assert_eq!((lb.new_w, lb.new_h), (640, 360));
        assert_eq!((lb.out_w(), lb.out_h()), (640, 384));
        assert_eq!((lb.top, lb.bottom, lb.left, lb.right), (12, 12, 0, 0));
        let sq = Letterbox::new(1920, 1080, 640, false, 32);
        assert_eq!((sq.out_w(), sq.out_h()), (640, 640));
        assert_eq!((sq.top, sq.bottom), (140, 140));
    }

    #[test]
    fn odd_padding_splits_with_the_extra_pixel_at_the_end() {
        // 810x1080 portrait at 640: 480x640, no pad in auto mode.
        let lb = Letterbox::new(810, 1080, 640, true, 32);
        assert_eq!((lb.out_w(), lb.out_h()), (480, 640));
        // 768x576 at 640: 640x480 exactly.
        let lb = Letterbox::new(768, 576, 640, true, 32);
        assert_eq!(
            (lb.new_w, lb.new_h, lb.out_w(), lb.out_h()),
            (640, 480, 640, 480)
        );
        // 101x37 at 64 square: r=0.6337 -> 64x23, dh=41 -> 20.5 -> top 20, bottom 21.
        let lb = Letterbox::new(101, 37, 64, false, 32);
        assert_eq!((lb.new_w, lb.new_h), (64, 23));
        assert_eq!((lb.top, lb.bottom, lb.left, lb.right), (20, 21, 0, 0));
    }

    #[test]
    fn tiny_and_huge_images() {
        let lb = Letterbox::new(1, 1, 640, true, 32);
        assert_eq!((lb.new_w, lb.new_h), (640, 640));
        let lb = Letterbox::new(3, 7, 640, true, 32);
        // r = 640/7 = 91.43: 274.29 -> 274 wide, 640 high; dw = 366 % 32 = 14 -> 7/7.
        assert_eq!((lb.new_w, lb.new_h), (274, 640));
        assert_eq!((lb.left, lb.right, lb.out_w()), (7, 7, 288));
        let lb = Letterbox::new(6000, 4000, 640, true, 32);
        assert_eq!((lb.new_w, lb.new_h), (640, 427));
        // dh = 213 % 32 = 21 -> 10.5 -> round(10.4)=10, round(10.6)=11.
        assert_eq!((lb.top, lb.bottom, lb.out_h()), (10, 11, 448));
    }

    #[test]
    fn inverse_maps_back_to_source() {
        let lb = Letterbox::new(1920, 1080, 640, true, 32);
        let (gx, gy, px, py) = lb.inverse();
        assert!((gx - 1.0 / 3.0).abs() < 1e-6 && (gy - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!((px, py), (0.0, 12.0));
        // A point at the letterboxed centre maps to the source centre.
        let (x, y) = ((320.0 - px) / gx, (192.0 - py) / gy);
        assert!((x - 960.0).abs() < 1e-3 && (y - 540.0).abs() < 1e-3);
    }

    #[test]
    fn pixels_are_rgb_planes_in_unit_range_with_grey_padding() {
        // 2x1 image: a blue pixel and a red pixel (BGR).
        let data = [255u8, 0, 0, 0, 0, 255];
        let frame = FrameRef {
            data: &data,
            width: 2,
            height: 1,
            row_stride: 6,
            format: PixelFormat::Bgr8,
            frame_number: 0,
        };
        let lb = Letterbox {
            src_w: 2,
            src_h: 1,
            new_w: 2,
            new_h: 1,
            top: 1,
            bottom: 0,
            left: 0,
            right: 0,
        };
        let mut out = vec![0f32; 3 * 2 * 2];
        letterbox_into(&frame, &lb, &mut out).unwrap();
        let g = 114.0 / 255.0;
        // R plane: padding row, then [0, 1]; B plane: padding row then [1, 0].
        assert_eq!(&out[0..4], &[g, g, 0.0, 1.0]);
        assert_eq!(&out[8..12], &[g, g, 1.0, 0.0]);
    }
}
