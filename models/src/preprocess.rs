//! LetterBox exactly as ultralytics' `predict` does it: keep the aspect ratio, OpenCV
//! bilinear resize, pad with 114 split by `round(d ∓ 0.1)`; then BGR → RGB, CHW, /255.
//! Builds without OpenCV use OpenCV's `INTER_LINEAR` reproduced in Rust ([`LinearResize`],
//! tested byte for byte against OpenCV, models/tests/models/resize.rs), so they letterbox
//! identically; with OpenCV linked, OpenCV's own resize is used (1.0–2.7× faster here).

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

/// The letterbox stride of every model here: ultralytics pads to `max(model stride, 32)`,
/// and the largest stride of YOLOv8 and YOLO11 (P3–P5 heads) is 32.
pub const YOLO_STRIDE: u32 = 32;

impl Letterbox {
    /// Geometry for a `src_w`×`src_h` image at `imgsz`. `rect` (ultralytics' LetterBox
    /// `auto`): pad only to a multiple of `stride` (the minimal rectangle `predict` uses for
    /// same-shaped batches); otherwise pad to the full `imgsz` square.
    pub fn new(src_w: u32, src_h: u32, imgsz: u32, rect: bool, stride: u32) -> Letterbox {
        let (w, h, s) = (src_w.max(1) as f64, src_h.max(1) as f64, imgsz as f64);
        let r = (s / h).min(s / w);
        // Python's round() is round-half-to-even.
        let new_w = ((w * r).round_ties_even() as u32).max(1);
        let new_h = ((h * r).round_ties_even() as u32).max(1);
        let mut dw = imgsz.saturating_sub(new_w) as f64;
        let mut dh = imgsz.saturating_sub(new_h) as f64;
        if rect {
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

    /// [`Letterbox::new`] at the models' stride ([`YOLO_STRIDE`]): what a YOLO model's input
    /// is for a `src_w`×`src_h` frame.
    pub fn yolo(src_w: u32, src_h: u32, imgsz: u32, rect: bool) -> Letterbox {
        Letterbox::new(src_w, src_h, imgsz, rect, YOLO_STRIDE)
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

/// The grey of ultralytics' padding.
const PAD: u8 = 114;

/// OpenCV's fixed-point scale of the bilinear coefficients (`INTER_RESIZE_COEF_BITS` = 11).
const COEF_SCALE: i32 = 1 << 11;

/// `cv::resize(src, dst, Size(dw, dh), 0, 0, INTER_LINEAR)` for packed 8-bit 3-channel
/// images, reproduced bit for bit (OpenCV 4.x `resize.cpp`): the same size is a copy; an
/// exact halving of both sides is OpenCV's `INTER_AREA` fast path (the 2×2 mean, rounded
/// `(sum + 2) >> 2`); otherwise separable bilinear with 11-bit coefficients rounded from
/// `float`, the horizontal pass into `i32` rows and the vertical pass as OpenCV's
/// `VResizeLinear<uchar>`: `((b0·(r0>>4))>>16 + (b1·(r1>>4))>>16 + 2) >> 2`.
#[derive(Debug, Clone)]
pub struct LinearResize {
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
    mode: ResizeMode,
}

#[derive(Debug, Clone)]
enum ResizeMode {
    Copy,
    HalveArea,
    Bilinear {
        /// Per destination column: the first source byte (x·3) and its two coefficients.
        xofs: Vec<usize>,
        alpha: Vec<[i32; 2]>,
        /// Columns from here on read one source pixel only (the right edge).
        xmax: usize,
        /// Per destination row: the first source row (may be -1: OpenCV clips the rows,
        /// not the coefficients, vertically) and its two coefficients.
        yofs: Vec<i64>,
        beta: Vec<[i32; 2]>,
    },
}

/// OpenCV's `saturate_cast<short>(float)`: round half to even, then clamp.
fn coef(v: f32) -> i32 {
    (v * COEF_SCALE as f32)
        .round_ties_even()
        .clamp(i16::MIN as f32, i16::MAX as f32) as i32
}

impl LinearResize {
    pub fn new(src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> LinearResize {
        let (sw, sh, dw, dh) = (
            src_w.max(1) as usize,
            src_h.max(1) as usize,
            dst_w.max(1) as usize,
            dst_h.max(1) as usize,
        );
        let mode = if (sw, sh) == (dw, dh) {
            ResizeMode::Copy
        } else {
            let scale_x = 1.0 / (dw as f64 / sw as f64);
            let scale_y = 1.0 / (dh as f64 / sh as f64);
            // OpenCV: `is_area_fast && iscale_x == 2 && iscale_y == 2` turns INTER_LINEAR
            // into INTER_AREA's fast path.
            if (scale_x - 2.0).abs() < f64::EPSILON && (scale_y - 2.0).abs() < f64::EPSILON {
                ResizeMode::HalveArea
            } else {
                let mut xofs = Vec::with_capacity(dw);
                let mut alpha = Vec::with_capacity(dw);
                let mut xmax = dw;
                for dx in 0..dw {
                    let mut fx = ((dx as f64 + 0.5) * scale_x - 0.5) as f32;
                    let mut sx = fx.floor() as i64;
                    fx -= sx as f32;
                    if sx < 0 {
                        fx = 0.0;
                        sx = 0;
                    }
                    if sx + 1 >= sw as i64 {
                        xmax = xmax.min(dx);
                        if sx >= sw as i64 - 1 {
                            fx = 0.0;
                            sx = sw as i64 - 1;
                        }
                    }
                    xofs.push(sx as usize * 3);
                    alpha.push([coef(1.0 - fx), coef(fx)]);
                }
                let mut yofs = Vec::with_capacity(dh);
                let mut beta = Vec::with_capacity(dh);
                for dy in 0..dh {
                    let mut fy = ((dy as f64 + 0.5) * scale_y - 0.5) as f32;
                    let sy = fy.floor() as i64;
                    fy -= sy as f32;
                    yofs.push(sy);
                    beta.push([coef(1.0 - fy), coef(fy)]);
                }
                ResizeMode::Bilinear {
                    xofs,
                    alpha,
                    xmax,
                    yofs,
                    beta,
                }
            }
        };
        LinearResize {
            src_w: sw,
            src_h: sh,
            dst_w: dw,
            dst_h: dh,
            mode,
        }
    }

    /// Computes destination rows `rows` of `frame` (which must be src_w×src_h), handing
    /// each to `emit(dy, packed bytes)` in order; channel order is the source's.
    pub fn rows(
        &self,
        frame: &FrameRef<'_>,
        rows: std::ops::Range<usize>,
        mut emit: impl FnMut(usize, &[u8]),
    ) {
        debug_assert_eq!(
            (frame.width as usize, frame.height as usize),
            (self.src_w, self.src_h)
        );
        let row_len = self.src_w * 3;
        let src_row = |y: usize| &frame.data[y * frame.row_stride..][..row_len];
        let n = self.dst_w * 3;
        let mut out = vec![0u8; n];
        match &self.mode {
            ResizeMode::Copy => {
                for dy in rows {
                    emit(dy, src_row(dy));
                }
            }
            ResizeMode::HalveArea => {
                for dy in rows {
                    let (s0, s1) = (src_row(2 * dy), src_row(2 * dy + 1));
                    for (dx, px) in out.chunks_exact_mut(3).enumerate() {
                        let i = dx * 6;
                        for c in 0..3 {
                            let sum = s0[i + c] as u32
                                + s0[i + 3 + c] as u32
                                + s1[i + c] as u32
                                + s1[i + 3 + c] as u32;
                            px[c] = ((sum + 2) >> 2) as u8;
                        }
                    }
                    emit(dy, &out);
                }
            }
            ResizeMode::Bilinear {
                xofs,
                alpha,
                xmax,
                yofs,
                beta,
            } => {
                let hresize = |src: &[u8], dst: &mut [i32]| {
                    let (left, right) = dst.split_at_mut(*xmax * 3);
                    for ((d, &o), &[a0, a1]) in left.chunks_exact_mut(3).zip(xofs).zip(alpha) {
                        // One bounds check per pixel: both source pixels at once.
                        let s = &src[o..o + 6];
                        d[0] = s[0] as i32 * a0 + s[3] as i32 * a1;
                        d[1] = s[1] as i32 * a0 + s[4] as i32 * a1;
                        d[2] = s[2] as i32 * a0 + s[5] as i32 * a1;
                    }
                    for (d, &o) in right.chunks_exact_mut(3).zip(&xofs[*xmax..]) {
                        let s = &src[o..o + 3];
                        d[0] = s[0] as i32 * COEF_SCALE;
                        d[1] = s[1] as i32 * COEF_SCALE;
                        d[2] = s[2] as i32 * COEF_SCALE;
                    }
                };
                let clip = |y: i64| y.clamp(0, self.src_h as i64 - 1) as usize;
                // The two horizontally resized source rows, and which rows they hold.
                let (mut r0, mut r1) = (vec![0i32; n], vec![0i32; n]);
                let (mut have0, mut have1) = (usize::MAX, usize::MAX);
                for dy in rows {
                    let (sy0, sy1) = (clip(yofs[dy]), clip(yofs[dy] + 1));
                    let [b0, b1] = beta[dy];
                    if have1 == sy0 {
                        std::mem::swap(&mut r0, &mut r1);
                        std::mem::swap(&mut have0, &mut have1);
                    }
                    if have0 != sy0 {
                        hresize(src_row(sy0), &mut r0);
                        have0 = sy0;
                    }
                    if b1 == 0 {
                        // The second row's term is 0 whatever it holds: not computed.
                        for (o, &v0) in out.iter_mut().zip(&r0) {
                            *o = ((((b0 * (v0 >> 4)) >> 16) + 2) >> 2).clamp(0, 255) as u8;
                        }
                    } else {
                        if have1 != sy1 {
                            if sy1 == sy0 {
                                r1.copy_from_slice(&r0);
                            } else {
                                hresize(src_row(sy1), &mut r1);
                            }
                            have1 = sy1;
                        }
                        for ((o, &v0), &v1) in out.iter_mut().zip(&r0).zip(&r1) {
                            let v = (((b0 * (v0 >> 4)) >> 16) + ((b1 * (v1 >> 4)) >> 16) + 2) >> 2;
                            *o = v.clamp(0, 255) as u8;
                        }
                    }
                    emit(dy, &out);
                }
            }
        }
    }
}

/// `frame` resized to `dst_w`×`dst_h` as OpenCV's `INTER_LINEAR` does (packed rows, the
/// source's channel order).
pub fn resize_linear(frame: &FrameRef<'_>, dst_w: u32, dst_h: u32) -> Result<Vec<u8>, ModelError> {
    frame
        .validate()
        .map_err(|e| ModelError::Image(e.to_string()))?;
    let rs = LinearResize::new(frame.width, frame.height, dst_w, dst_h);
    let mut out = Vec::with_capacity(rs.dst_w * rs.dst_h * 3);
    rs.rows(frame, 0..rs.dst_h, |_, row| out.extend_from_slice(row));
    Ok(out)
}

/// Letterboxes `frame` into `out` (3 × out_h × out_w, RGB planes, values / 255): on
/// OpenCV where it is linked (measured faster: its SIMD resize; examples/letterbox_bench.rs),
/// else in Rust, byte for byte the same.
pub fn letterbox_into(
    frame: &FrameRef<'_>,
    lb: &Letterbox,
    out: &mut [f32],
) -> Result<(), ModelError> {
    #[cfg(feature = "opencv")]
    return letterbox_into_opencv(frame, lb, out);
    #[cfg(not(feature = "opencv"))]
    return letterbox_into_rust(frame, lb, out);
}

/// The letterbox in Rust: [`LinearResize`] and the padding, straight into the planes,
/// in bands of rows on rayon's pool (byte-identical to OpenCV's).
pub fn letterbox_into_rust(
    frame: &FrameRef<'_>,
    lb: &Letterbox,
    out: &mut [f32],
) -> Result<(), ModelError> {
    use rayon::prelude::*;
    frame
        .validate()
        .map_err(|e| ModelError::Image(e.to_string()))?;
    let (ow, oh) = (lb.out_w() as usize, lb.out_h() as usize);
    assert_eq!(out.len(), 3 * ow * oh, "output buffer size");
    let rs = LinearResize::new(frame.width, frame.height, lb.new_w, lb.new_h);
    let (top, left, nw, nh) = (
        lb.top as usize,
        lb.left as usize,
        lb.new_w as usize,
        lb.new_h as usize,
    );
    let lut: [f32; 256] = std::array::from_fn(|v| v as f32 / 255.0);
    let pad = lut[PAD as usize];
    let (ri, bi) = match frame.format {
        PixelFormat::Bgr8 => (2, 0),
        PixelFormat::Rgb8 => (0, 2),
    };
    let plane = ow * oh;
    let (r_plane, rest) = out.split_at_mut(plane);
    let (g_plane, b_plane) = rest.split_at_mut(plane);
    // Bands of at least 32 rows: enough work per task, and the row cache stays warm.
    let band = oh.div_ceil(rayon::current_num_threads().max(1) * 2).max(32) * ow;
    r_plane
        .par_chunks_mut(band)
        .zip(g_plane.par_chunks_mut(band))
        .zip(b_plane.par_chunks_mut(band))
        .enumerate()
        .for_each(|(i, ((r, g), b))| {
            let y0 = i * band / ow;
            let y1 = y0 + r.len() / ow;
            // The image's rows within the band; grey above and below them.
            let (iy0, iy1) = (top.clamp(y0, y1), (top + nh).clamp(y0, y1));
            for p in [&mut *r, &mut *g, &mut *b] {
                p[..(iy0 - y0) * ow].fill(pad);
                p[(iy1 - y0) * ow..].fill(pad);
            }
            let image_rows = iy0.saturating_sub(top)..iy1.saturating_sub(top);
            rs.rows(frame, image_rows, |dy, row| {
                let at = (dy + top - y0) * ow;
                let (r, g, b) = (
                    &mut r[at..at + ow],
                    &mut g[at..at + ow],
                    &mut b[at..at + ow],
                );
                for p in [&mut *r, &mut *g, &mut *b] {
                    p[..left].fill(pad);
                    p[left + nw..].fill(pad);
                }
                let (r, g, b) = (&mut r[left..], &mut g[left..], &mut b[left..]);
                for (((px, r), g), b) in row.chunks_exact(3).zip(r).zip(g).zip(b) {
                    *r = lut[px[ri] as usize];
                    *g = lut[px[1] as usize];
                    *b = lut[px[bi] as usize];
                }
            });
        });
    Ok(())
}

#[cfg(feature = "opencv")]
fn cv(e: opencv::Error) -> ModelError {
    ModelError::Image(e.to_string())
}

/// The letterbox on OpenCV (`resize` INTER_LINEAR, `copyMakeBorder`), as ultralytics does
/// it: the reference the Rust letterbox is tested against.
#[cfg(feature = "opencv")]
pub fn letterbox_into_opencv(
    frame: &FrameRef<'_>,
    lb: &Letterbox,
    out: &mut [f32],
) -> Result<(), ModelError> {
    use opencv::core::{BORDER_CONSTANT, Mat, Scalar, Size};
    use opencv::prelude::*;
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
        Scalar::all(PAD as f64),
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
        let g = 114.0 / 255.0;
        let mut rust = vec![0f32; 3 * 2 * 2];
        letterbox_into(&frame, &lb, &mut out).unwrap();
        letterbox_into_rust(&frame, &lb, &mut rust).unwrap();
        for out in [out, rust] {
            // R plane: padding row, then [0, 1]; B plane: padding row then [1, 0].
            assert_eq!(&out[0..4], &[g, g, 0.0, 1.0]);
            assert_eq!(&out[8..12], &[g, g, 1.0, 0.0]);
        }
    }
}
