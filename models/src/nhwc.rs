//! The CPU executor: the network Burn built, run with NHWC activations and Pitchside's own
//! kernels, because burn-flex's generic conv2d spends most of its time outside the matrix
//! product (per call: the weights re-packed, the input transposed NCHW→NHWC on one thread,
//! the result scattered back to NCHW, then bias and SiLU as separate passes that each
//! allocate; see BENCHMARKS.md). Here activations stay NHWC from the first layer to the
//! head, a convolution is one matrix product per tile of output pixels (1×1 convolutions
//! read their input in place, also a channel slice of it, so C2f's split costs nothing),
//! and bias + SiLU run on each tile while it is still in cache; 3×3 stride-1 convolutions
//! with enough channels use Winograd F(2×2, 3×3) (2.25× fewer multiplies). Weights are
//! packed (and Winograd-transformed) once, at load. The network computes what
//! [`Yolo::forward`] does; the golden tests check both against ultralytics.

use std::collections::BTreeSet;
use std::sync::Arc;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use crate::yolo::{
    Attention, Bottleneck, C2f, C2psa, C3k, ConvBn, Head, Inner, Layer, PsaBlock, Sppf, Yolo,
    YoloTask,
};

/// Activations of a batch: `[n, h, w, c]`, contiguous. The buffer comes from and goes back
/// to [`POOL`].
#[derive(Debug)]
struct Act {
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    data: Vec<f32>,
}

impl Drop for Act {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.data));
    }
}

/// Freed activation buffers, reused by the next layer or forward pass: fresh multi-megabyte
/// allocations are fresh pages from the kernel, and their page faults and zeroing cost more
/// than a third of a YOLOv8n forward pass. Every kernel here writes all of its output, so a
/// reused buffer needs no clearing.
static POOL: std::sync::Mutex<Vec<Vec<f32>>> = std::sync::Mutex::new(Vec::new());
/// What the pool may hold: the activations of a few large batches.
const POOL_MAX_FLOATS: usize = 64 << 20;

fn recycle(v: Vec<f32>) {
    if v.capacity() == 0 {
        return;
    }
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let held: usize = pool.iter().map(Vec::capacity).sum();
    if held + v.capacity() <= POOL_MAX_FLOATS {
        pool.push(v);
    }
}

/// A buffer of `len` floats with arbitrary (initialised) contents: the smallest pooled one
/// that holds it, else a new one (growing a pooled buffer would copy its stale contents).
fn buffer(len: usize) -> Vec<f32> {
    let reused = {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        (0..pool.len())
            .filter(|&i| pool[i].capacity() >= len)
            .min_by_key(|&i| pool[i].capacity())
            .map(|i| pool.swap_remove(i))
    };
    match reused {
        Some(mut v) => {
            v.truncate(len);
            v.resize(len, 0.0);
            v
        }
        None => vec![0.0; len],
    }
}

/// Some channels of an [`Act`]: pixel `p` holds `data[p * stride + off..][..c]`.
#[derive(Debug, Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    stride: usize,
    off: usize,
}

impl Act {
    /// An activation whose every value the caller will write.
    fn new(n: usize, h: usize, w: usize, c: usize) -> Act {
        Act {
            n,
            h,
            w,
            c,
            data: buffer(n * h * w * c),
        }
    }

    fn view(&self) -> View<'_> {
        self.channels(0, self.c)
    }

    fn channels(&self, off: usize, c: usize) -> View<'_> {
        debug_assert!(off + c <= self.c);
        View {
            data: &self.data,
            n: self.n,
            h: self.h,
            w: self.w,
            c,
            stride: self.c,
            off,
        }
    }
}

impl View<'_> {
    fn pixel(&self, p: usize) -> &[f32] {
        &self.data[p * self.stride + self.off..][..self.c]
    }

    fn to_act(self) -> Act {
        concat(&[self])
    }
}

/// Channel concatenation.
fn concat(parts: &[View<'_>]) -> Act {
    let first = parts[0];
    let c: usize = parts.iter().map(|v| v.c).sum();
    let mut out = Act::new(first.n, first.h, first.w, c);
    out.data
        .par_chunks_mut(c * 64)
        .enumerate()
        .for_each(|(t, dst)| {
            for (r, row) in dst.chunks_mut(c).enumerate() {
                let p = t * 64 + r;
                let mut o = 0;
                for v in parts {
                    row[o..o + v.c].copy_from_slice(v.pixel(p));
                    o += v.c;
                }
            }
        });
    out
}

/// `a + b`, same shape.
fn add(mut a: Act, b: View<'_>) -> Act {
    let c = a.c;
    a.data
        .par_chunks_mut(c * 64)
        .enumerate()
        .for_each(|(t, dst)| {
            for (r, row) in dst.chunks_mut(c).enumerate() {
                for (x, y) in row.iter_mut().zip(b.pixel(t * 64 + r)) {
                    *x += y;
                }
            }
        });
    a
}

// ---------------------------------------------------------------------------------------
// Element-wise math, compiled once per instruction set and chosen at run time (the crate is
// built for baseline x86-64, where these loops would run 4 floats wide).

/// e^x for f32 in straight-line, vectorisable code (Cephes' expf: 2^n · p(r), ~1 ulp).
/// Rounding and 2^n go through the bit pattern of `t = x·log2(e) + 1.5·2^23` (its low
/// mantissa bits hold n), so there is no float→int conversion to keep LLVM from vectorising.
#[inline(always)]
fn exp_approx(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
    #[allow(clippy::manual_clamp)] // max/min vectorise; clamp keeps NaN checks
    let x = x.max(-87.0).min(88.0);
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let e = p * r * r + r + 1.0;
    let two_n = t
        .to_bits()
        .wrapping_sub(MAGIC.to_bits())
        .wrapping_add(127)
        .wrapping_shl(23);
    e * f32::from_bits(two_n)
}

#[inline(always)]
fn silu(x: f32) -> f32 {
    x / (1.0 + exp_approx(-x))
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_approx(-x))
}

#[inline(always)]
fn bias_act_generic(rows: &mut [f32], bias: &[f32], act: bool) {
    for row in rows.chunks_exact_mut(bias.len()) {
        if act {
            for (v, b) in row.iter_mut().zip(bias) {
                *v = silu(*v + b);
            }
        } else {
            for (v, b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
    }
}

/// `fn NAME(args) => GENERIC`: NAME runs GENERIC (an `#[inline(always)]` fn) compiled for
/// AVX-512 or AVX2 + FMA when the CPU has them, else for the build's baseline.
macro_rules! multiversion {
    ($(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),*) => $generic:ident) => {
        $(#[$m])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    $generic($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $generic($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features the function was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $generic($($arg),*)
        }
    };
}

multiversion!(
    /// Adds the bias to every row of `rows` (row length = `bias.len()`), then SiLU if `act`.
    fn bias_act(rows: &mut [f32], bias: &[f32], act: bool) => bias_act_generic
);

// ---------------------------------------------------------------------------------------
// Convolution.

thread_local! {
    /// Each worker thread's im2col tile, kept between tiles and layers.
    static COL: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Each worker thread's Winograd buffers (transformed inputs, products).
    static WINO: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

multiversion!(
    /// V = Bᵀ·d·B for one 4×4 tile `d` (row-major pixels), all channels; `v`: 16 × cin.
    fn winograd_input(d: &[&[f32]; 16], v: &mut [f32]) => winograd_input_generic
);

/// Channels per step of the Winograd transforms: fixed-size arrays that LLVM vectorises.
const LANES: usize = 16;

#[inline(always)]
fn winograd_input_generic(d: &[&[f32]; 16], v: &mut [f32]) {
    let cin = d[0].len();
    let mut c0 = 0;
    while c0 < cin {
        let n = LANES.min(cin - c0);
        let mut x = [[0f32; LANES]; 16];
        for (xk, dk) in x.iter_mut().zip(d) {
            // Constant-length copies for whole steps: inlined loads, not memmove calls.
            if n == LANES {
                xk.copy_from_slice(&dk[c0..c0 + LANES]);
            } else {
                xk[..n].copy_from_slice(&dk[c0..c0 + n]);
            }
        }
        // Bᵀ·d: rows (d0 - d2, d1 + d2, d2 - d1, d1 - d3), column by column.
        let mut t = [[0f32; LANES]; 16];
        for j in 0..4 {
            for l in 0..LANES {
                let (d0, d1, d2, d3) = (x[j][l], x[4 + j][l], x[8 + j][l], x[12 + j][l]);
                t[j][l] = d0 - d2;
                t[4 + j][l] = d1 + d2;
                t[8 + j][l] = d2 - d1;
                t[12 + j][l] = d1 - d3;
            }
        }
        // (Bᵀ·d)·B: the same combination of columns, row by row.
        let mut o = [[0f32; LANES]; 16];
        for i in 0..4 {
            for l in 0..LANES {
                let (t0, t1, t2, t3) = (
                    t[4 * i][l],
                    t[4 * i + 1][l],
                    t[4 * i + 2][l],
                    t[4 * i + 3][l],
                );
                o[4 * i][l] = t0 - t2;
                o[4 * i + 1][l] = t1 + t2;
                o[4 * i + 2][l] = t2 - t1;
                o[4 * i + 3][l] = t1 - t3;
            }
        }
        for (k, ok) in o.iter().enumerate() {
            if n == LANES {
                v[k * cin + c0..k * cin + c0 + LANES].copy_from_slice(ok);
            } else {
                v[k * cin + c0..k * cin + c0 + n].copy_from_slice(&ok[..n]);
            }
        }
        c0 += n;
    }
}

multiversion!(
    /// Y = Aᵀ·M·A for one tile: `m` is 16 × cout, `y` the four output pixels
    /// (top-left, top-right, bottom-left, bottom-right).
    fn winograd_output(m: &[f32], y: [&mut [f32]; 4]) => winograd_output_generic
);

#[inline(always)]
fn winograd_output_generic(m: &[f32], y: [&mut [f32]; 4]) {
    let [y00, y01, y10, y11] = y;
    let cout = y00.len();
    let mut c0 = 0;
    while c0 < cout {
        let n = LANES.min(cout - c0);
        let mut x = [[0f32; LANES]; 16];
        for (k, xk) in x.iter_mut().enumerate() {
            if n == LANES {
                xk.copy_from_slice(&m[k * cout + c0..k * cout + c0 + LANES]);
            } else {
                xk[..n].copy_from_slice(&m[k * cout + c0..k * cout + c0 + n]);
            }
        }
        // Aᵀ·M: rows (m0 + m1 + m2, m1 - m2 - m3), per column; then the same on columns.
        let mut s = [[0f32; LANES]; 8];
        for j in 0..4 {
            for l in 0..LANES {
                let (m0, m1, m2, m3) = (x[j][l], x[4 + j][l], x[8 + j][l], x[12 + j][l]);
                s[j][l] = m0 + m1 + m2;
                s[4 + j][l] = m1 - m2 - m3;
            }
        }
        let mut out = [[0f32; LANES]; 4];
        for l in 0..LANES {
            out[0][l] = s[0][l] + s[1][l] + s[2][l];
            out[1][l] = s[1][l] - s[2][l] - s[3][l];
            out[2][l] = s[4][l] + s[5][l] + s[6][l];
            out[3][l] = s[5][l] - s[6][l] - s[7][l];
        }
        for (yk, ok) in [&mut *y00, &mut *y01, &mut *y10, &mut *y11]
            .into_iter()
            .zip(&out)
        {
            if n == LANES {
                yk[c0..c0 + LANES].copy_from_slice(ok);
            } else {
                yk[c0..c0 + n].copy_from_slice(&ok[..n]);
            }
        }
        c0 += n;
    }
}

/// Bytes of im2col rows per tile: a tile and its output stay in L2.
const TILE_BYTES: usize = 256 * 1024;

/// A convolution (+ folded BatchNorm) (+ SiLU), weights packed for NHWC.
#[derive(Debug, Clone)]
struct Conv {
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    depthwise: bool,
    /// Dense: `[k * k * cin, cout]`, rows ordered (ky, kx, ci) as im2col writes them.
    /// Depthwise: `[k * k, c]`.
    w: Vec<f32>,
    b: Vec<f32>,
    act: bool,
    /// Winograd F(2×2, 3×3) weights `[16][cin][cout]` (U = G·g·Gᵀ) for the 3×3 stride-1
    /// convolutions it pays for; `None` elsewhere.
    wino: Option<Vec<f32>>,
}

/// Winograd needs enough input channels for its 16 matrix products to run efficiently.
const WINOGRAD_MIN_CIN: usize = 32;

fn host<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Result<Vec<f32>, String> {
    t.clone()
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))
}

impl Conv {
    fn new<B: Backend>(c: &ConvBn<B>) -> Result<Conv, String> {
        let [co, cig, kh, kw] = c.weight.dims();
        let src = host(&c.weight)?;
        let b = host(&c.bias)?;
        let cin = cig * c.groups;
        let k = kh;
        if kh != kw {
            return Err(format!("{kh}x{kw} kernels"));
        }
        let (depthwise, w) = if c.groups == 1 {
            let mut w = vec![0.0; k * k * cin * co];
            for o in 0..co {
                for ci in 0..cin {
                    for ky in 0..k {
                        for kx in 0..k {
                            w[((ky * k + kx) * cin + ci) * co + o] =
                                src[((o * cin + ci) * k + ky) * k + kx];
                        }
                    }
                }
            }
            (false, w)
        } else if cig == 1 && c.groups == co {
            let mut w = vec![0.0; k * k * co];
            for ch in 0..co {
                for t in 0..k * k {
                    w[t * co + ch] = src[ch * k * k + t];
                }
            }
            (true, w)
        } else {
            return Err(format!("grouped convolution ({} groups)", c.groups));
        };
        Ok(Conv {
            cin,
            cout: co,
            k,
            stride: c.stride,
            pad: c.padding,
            depthwise,
            w,
            b,
            act: c.act,
            wino: None,
        }
        .with_winograd())
    }

    /// Adds the Winograd weights where this convolution can use them.
    fn with_winograd(mut self) -> Conv {
        if self.depthwise || self.k != 3 || self.stride != 1 || self.pad != 1 {
            return self;
        }
        if self.cin < WINOGRAD_MIN_CIN {
            return self;
        }
        const G: [[f32; 3]; 4] = [
            [1.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.5, -0.5, 0.5],
            [0.0, 0.0, 1.0],
        ];
        let (cin, cout) = (self.cin, self.cout);
        let mut u = vec![0f32; 16 * cin * cout];
        for ci in 0..cin {
            for co in 0..cout {
                let g = |ky: usize, kx: usize| self.w[((ky * 3 + kx) * cin + ci) * cout + co];
                let mut t = [[0f32; 3]; 4];
                for (i, row) in t.iter_mut().enumerate() {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = (0..3).map(|k| G[i][k] * g(k, j)).sum();
                    }
                }
                for (i, row) in t.iter().enumerate() {
                    for (j, gj) in G.iter().enumerate() {
                        u[((i * 4 + j) * cin + ci) * cout + co] =
                            (0..3).map(|k| row[k] * gj[k]).sum();
                    }
                }
            }
        }
        self.wino = Some(u);
        self
    }

    fn out_hw(&self, h: usize, w: usize) -> (usize, usize) {
        (
            (h + 2 * self.pad - self.k) / self.stride + 1,
            (w + 2 * self.pad - self.k) / self.stride + 1,
        )
    }

    fn forward(&self, x: View<'_>) -> Act {
        debug_assert_eq!(x.c, self.cin);
        let (ho, wo) = self.out_hw(x.h, x.w);
        let mut out = Act::new(x.n, ho, wo, self.cout);
        if self.depthwise {
            self.depthwise(x, &mut out);
        } else if self.wino.is_some() && ho % 2 == 0 && wo % 2 == 0 {
            self.winograd(x, &mut out);
        } else {
            self.dense(x, &mut out);
        }
        out
    }

    /// Winograd F(2×2, 3×3): per 4×4 input tile (2×2 outputs), V = Bᵀ·d·B; then for each of
    /// the 16 tile positions one matrix product V[ξ] (tiles × cin) · U[ξ] (cin × cout); then
    /// Y = Aᵀ·M·A. 16 products of 2.25× fewer multiplies in all than the 3×3 convolution.
    /// Jobs are runs of tile rows (two output rows each), so each writes contiguous output.
    fn winograd(&self, x: View<'_>, out: &mut Act) {
        let (cin, cout, w) = (self.cin, self.cout, out.w);
        let u = self.wino.as_deref().expect("checked by the caller");
        let (th, tw) = (out.h / 2, out.w / 2);
        let rows_per_job = 64usize.div_ceil(tw);
        out.data
            .par_chunks_mut(2 * rows_per_job * w * cout)
            .enumerate()
            .for_each(|(job, dst)| {
                WINO.with_borrow_mut(|(v, m)| {
                    let rows = dst.len() / (2 * w * cout);
                    let tiles = rows * tw;
                    if v.len() < tiles * 16 * cin {
                        v.resize(tiles * 16 * cin, 0.0);
                    }
                    if m.len() < tiles * 16 * cout {
                        m.resize(tiles * 16 * cout, 0.0);
                    }
                    let zeros = vec![0f32; cin];
                    for r in 0..rows {
                        let g = job * rows_per_job + r;
                        let (b, ty) = (g / th, g % th);
                        for tx in 0..tw {
                            let t = r * tw + tx;
                            let d: [&[f32]; 16] = std::array::from_fn(|k| {
                                let iy = (2 * ty + k / 4) as isize - 1;
                                let ix = (2 * tx + k % 4) as isize - 1;
                                if iy < 0 || ix < 0 || iy >= x.h as isize || ix >= x.w as isize {
                                    &zeros[..]
                                } else {
                                    x.pixel((b * x.h + iy as usize) * x.w + ix as usize)
                                }
                            });
                            winograd_input(&d, &mut v[t * 16 * cin..(t + 1) * 16 * cin]);
                        }
                    }
                    for xi in 0..16 {
                        // SAFETY: m and v hold `tiles` rows of 16 × cout / 16 × cin floats;
                        // row t of product xi is at (t * 16 + xi) * c; u[xi] is cin × cout.
                        unsafe {
                            gemm(
                                tiles,
                                cout,
                                cin,
                                m[xi * cout..].as_mut_ptr(),
                                1,
                                (16 * cout) as isize,
                                false,
                                v[xi * cin..].as_ptr(),
                                1,
                                (16 * cin) as isize,
                                u[xi * cin * cout..].as_ptr(),
                                1,
                                cout as isize,
                                0.0,
                                1.0,
                                false,
                                false,
                                false,
                                Parallelism::None,
                            );
                        }
                    }
                    for r in 0..rows {
                        for tx in 0..tw {
                            let t = r * tw + tx;
                            let mt = &m[t * 16 * cout..(t + 1) * 16 * cout];
                            let (top, bottom) = dst[2 * r * w * cout..(2 * r + 2) * w * cout]
                                .split_at_mut(w * cout);
                            let (y00, y01) =
                                top[2 * tx * cout..(2 * tx + 2) * cout].split_at_mut(cout);
                            let (y10, y11) =
                                bottom[2 * tx * cout..(2 * tx + 2) * cout].split_at_mut(cout);
                            winograd_output(mt, [y00, y01, y10, y11]);
                        }
                    }
                    bias_act(dst, &self.b, self.act);
                })
            });
    }

    fn dense(&self, x: View<'_>, out: &mut Act) {
        let cout = self.cout;
        let kk = self.k * self.k * self.cin;
        let direct = self.k == 1 && self.stride == 1 && self.pad == 0;
        let tile = if direct {
            256
        } else {
            (TILE_BYTES / (4 * kk)).clamp(16, 1024)
        };
        let (ho, wo) = (out.h, out.w);
        out.data
            .par_chunks_mut(tile * cout)
            .enumerate()
            .for_each(|(t, dst)| {
                let row0 = t * tile;
                let rows = dst.len() / cout;
                let mut col = COL.take();
                let (lhs, lhs_rs) = if direct {
                    (x.data[row0 * x.stride + x.off..].as_ptr(), x.stride)
                } else {
                    if col.len() < rows * kk {
                        col.resize(rows * kk, 0.0);
                    }
                    self.im2col(x, row0, rows, ho, wo, &mut col);
                    (col.as_ptr(), kk)
                };
                // SAFETY: dst is rows × cout (row stride cout); lhs is rows × kk with row
                // stride lhs_rs inside x.data or col (checked by the slicing above: the last
                // row of a direct tile ends within x.data as x.off + cin <= x.stride);
                // self.w is kk × cout.
                unsafe {
                    gemm(
                        rows,
                        cout,
                        kk,
                        dst.as_mut_ptr(),
                        1,
                        cout as isize,
                        false,
                        lhs,
                        1,
                        lhs_rs as isize,
                        self.w.as_ptr(),
                        1,
                        cout as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
                bias_act(dst, &self.b, self.act);
                COL.set(col);
            });
    }

    /// This 1×1 convolution applied to the channel concatenation of `parts`, without
    /// building it: one accumulating product per part, with that part's rows of the weights.
    fn forward_concat(&self, parts: &[View<'_>]) -> Act {
        if self.k != 1 || self.stride != 1 || self.depthwise {
            return self.forward(concat(parts).view());
        }
        debug_assert_eq!(parts.iter().map(|p| p.c).sum::<usize>(), self.cin);
        let first = parts[0];
        let cout = self.cout;
        let mut out = Act::new(first.n, first.h, first.w, cout);
        const TILE: usize = 256;
        out.data
            .par_chunks_mut(TILE * cout)
            .enumerate()
            .for_each(|(t, dst)| {
                let (row0, rows) = (t * TILE, dst.len() / cout);
                let mut w_row = 0;
                for (i, x) in parts.iter().enumerate() {
                    // SAFETY: as in `dense`'s direct case, per part; the part's weights are
                    // rows w_row..w_row + x.c of the cin × cout matrix.
                    unsafe {
                        gemm(
                            rows,
                            cout,
                            x.c,
                            dst.as_mut_ptr(),
                            1,
                            cout as isize,
                            i > 0,
                            x.data[row0 * x.stride + x.off..].as_ptr(),
                            1,
                            x.stride as isize,
                            self.w[w_row * cout..].as_ptr(),
                            1,
                            cout as isize,
                            1.0,
                            1.0,
                            false,
                            false,
                            false,
                            Parallelism::None,
                        );
                    }
                    w_row += x.c;
                }
                bias_act(dst, &self.b, self.act);
            });
        out
    }

    /// Rows `row0..row0 + rows` of the im2col matrix: one output pixel's receptive field per
    /// row, ordered (ky, kx, ci), zeros where it falls on the padding.
    fn im2col(&self, x: View<'_>, row0: usize, rows: usize, ho: usize, wo: usize, col: &mut [f32]) {
        let (k, cin) = (self.k, self.cin);
        let kk = k * k * cin;
        for r in 0..rows {
            let p = row0 + r;
            let (b, rem) = (p / (ho * wo), p % (ho * wo));
            let (oy, ox) = (rem / wo, rem % wo);
            let dst = &mut col[r * kk..(r + 1) * kk];
            let ix0 = (ox * self.stride) as isize - self.pad as isize;
            // A receptive-field row inside the image is k neighbouring pixels: one copy
            // when the input holds exactly these channels.
            let whole_rows = x.stride == cin && ix0 >= 0 && ix0 as usize + k <= x.w;
            for ky in 0..k {
                let iy = (oy * self.stride + ky) as isize - self.pad as isize;
                let seg_row = &mut dst[ky * k * cin..][..k * cin];
                if iy < 0 || iy >= x.h as isize {
                    seg_row.fill(0.0);
                    continue;
                }
                let row_px = (b * x.h + iy as usize) * x.w;
                if whole_rows {
                    let start = (row_px + ix0 as usize) * x.stride + x.off;
                    seg_row.copy_from_slice(&x.data[start..start + k * cin]);
                    continue;
                }
                for kx in 0..k {
                    let ix = ix0 + kx as isize;
                    let seg = &mut seg_row[kx * cin..][..cin];
                    if ix < 0 || ix >= x.w as isize {
                        seg.fill(0.0);
                    } else {
                        seg.copy_from_slice(x.pixel(row_px + ix as usize));
                    }
                }
            }
        }
    }

    fn depthwise(&self, x: View<'_>, out: &mut Act) {
        let (ho, wo, c) = (out.h, out.w, self.cout);
        out.data
            .par_chunks_mut(wo * c)
            .enumerate()
            .for_each(|(row, dst)| {
                depthwise_row(self, x, row / ho, row % ho, dst);
                bias_act(dst, &self.b, self.act);
            });
    }
}

multiversion!(
    /// One output row of a depthwise convolution, without bias.
    fn depthwise_row(conv: &Conv, x: View<'_>, b: usize, oy: usize, dst: &mut [f32]) => depthwise_row_generic
);

#[inline(always)]
fn depthwise_row_generic(conv: &Conv, x: View<'_>, b: usize, oy: usize, dst: &mut [f32]) {
    let (c, k) = (conv.cout, conv.k);
    for (ox, o) in dst.chunks_exact_mut(c).enumerate() {
        o.fill(0.0);
        for ky in 0..k {
            let iy = (oy * conv.stride + ky) as isize - conv.pad as isize;
            if iy < 0 || iy >= x.h as isize {
                continue;
            }
            for kx in 0..k {
                let ix = (ox * conv.stride + kx) as isize - conv.pad as isize;
                if ix < 0 || ix >= x.w as isize {
                    continue;
                }
                let xi = x.pixel((b * x.h + iy as usize) * x.w + ix as usize);
                let wk = &conv.w[(ky * k + kx) * c..][..c];
                for ((o, xv), wv) in o.iter_mut().zip(xi).zip(wk) {
                    *o += xv * wv;
                }
            }
        }
    }
}

fn convs<B: Backend>(cs: &[ConvBn<B>]) -> Result<Vec<Conv>, String> {
    cs.iter().map(Conv::new).collect()
}

fn run_seq(cs: &[Conv], x: View<'_>) -> Act {
    let mut y = cs[0].forward(x);
    for c in &cs[1..] {
        y = c.forward(y.view());
    }
    y
}

/// Max pooling, `k`×`k`, stride 1, padding `k / 2` (SPPF): rows, then columns.
fn max_pool(x: &Act, k: usize) -> Act {
    let p = k / 2;
    let (h, w, c) = (x.h, x.w, x.c);
    let mut horiz = Act::new(x.n, h, w, c);
    horiz
        .data
        .par_chunks_mut(w * c)
        .enumerate()
        .for_each(|(row, dst)| {
            let src = &x.data[row * w * c..][..w * c];
            for ox in 0..w {
                let o = &mut dst[ox * c..][..c];
                o.fill(f32::NEG_INFINITY);
                for ix in ox.saturating_sub(p)..(ox + p + 1).min(w) {
                    for (a, b) in o.iter_mut().zip(&src[ix * c..][..c]) {
                        *a = a.max(*b);
                    }
                }
            }
        });
    let mut out = Act::new(x.n, h, w, c);
    out.data
        .par_chunks_mut(w * c)
        .enumerate()
        .for_each(|(row, dst)| {
            let (b, oy) = (row / h, row % h);
            dst.fill(f32::NEG_INFINITY);
            for iy in oy.saturating_sub(p)..(oy + p + 1).min(h) {
                let src = &horiz.data[(b * h + iy) * w * c..][..w * c];
                for (a, s) in dst.iter_mut().zip(src) {
                    *a = a.max(*s);
                }
            }
        });
    out
}

/// Nearest-neighbour upsampling by an integer factor.
fn upsample(x: &Act, f: usize) -> Act {
    let (h, w, c) = (x.h * f, x.w * f, x.c);
    let mut out = Act::new(x.n, h, w, c);
    out.data
        .par_chunks_mut(w * c)
        .enumerate()
        .for_each(|(row, dst)| {
            let (b, oy) = (row / h, row % h);
            let src = &x.data[(b * x.h + oy / f) * x.w * c..][..x.w * c];
            for ox in 0..w {
                dst[ox * c..][..c].copy_from_slice(&src[(ox / f) * c..][..c]);
            }
        });
    out
}

// ---------------------------------------------------------------------------------------
// Blocks.

#[derive(Debug, Clone)]
struct BottleneckX {
    cv1: Conv,
    cv2: Conv,
    add: bool,
}

impl BottleneckX {
    fn new<B: Backend>(b: &Bottleneck<B>) -> Result<Self, String> {
        Ok(BottleneckX {
            cv1: Conv::new(&b.cv1)?,
            cv2: Conv::new(&b.cv2)?,
            add: b.add,
        })
    }

    fn forward(&self, x: View<'_>) -> Act {
        let y = self.cv2.forward(self.cv1.forward(x).view());
        if self.add { add(y, x) } else { y }
    }
}

#[derive(Debug, Clone)]
struct C3kX {
    cv1: Conv,
    cv2: Conv,
    cv3: Conv,
    m: Vec<BottleneckX>,
}

impl C3kX {
    fn new<B: Backend>(c: &C3k<B>) -> Result<Self, String> {
        Ok(C3kX {
            cv1: Conv::new(&c.cv1)?,
            cv2: Conv::new(&c.cv2)?,
            cv3: Conv::new(&c.cv3)?,
            m: c.m.iter().map(BottleneckX::new).collect::<Result<_, _>>()?,
        })
    }

    fn forward(&self, x: View<'_>) -> Act {
        let mut a = self.cv1.forward(x);
        for b in &self.m {
            a = b.forward(a.view());
        }
        let b = self.cv2.forward(x);
        self.cv3.forward_concat(&[a.view(), b.view()])
    }
}

#[derive(Debug, Clone)]
enum InnerX {
    Bottleneck(BottleneckX),
    C3k(C3kX),
}

#[derive(Debug, Clone)]
struct C2fX {
    cv1: Conv,
    cv2: Conv,
    m: Vec<InnerX>,
}

impl C2fX {
    fn new<B: Backend>(c: &C2f<B>) -> Result<Self, String> {
        Ok(C2fX {
            cv1: Conv::new(&c.cv1)?,
            cv2: Conv::new(&c.cv2)?,
            m: c.m
                .iter()
                .map(|i| {
                    Ok(match i {
                        Inner::Bottleneck(b) => InnerX::Bottleneck(BottleneckX::new(b)?),
                        Inner::C3k(c) => InnerX::C3k(C3kX::new(c)?),
                    })
                })
                .collect::<Result<_, String>>()?,
        })
    }

    fn forward(&self, x: View<'_>) -> Act {
        self.blocks(self.cv1.forward(x))
    }

    /// On the channel concatenation of `parts` (the neck's Concat), without building it.
    fn forward_concat(&self, parts: &[View<'_>]) -> Act {
        self.blocks(self.cv1.forward_concat(parts))
    }

    /// Everything after cv1.
    fn blocks(&self, y: Act) -> Act {
        let half = y.c / 2;
        let mut outs: Vec<Act> = Vec::with_capacity(self.m.len());
        for block in &self.m {
            // The second half of cv1's output is a channel slice: read in place.
            let last = outs.last().map_or(y.channels(half, half), Act::view);
            outs.push(match block {
                InnerX::Bottleneck(b) => b.forward(last),
                InnerX::C3k(c) => c.forward(last),
            });
        }
        let mut parts = vec![y.view()];
        parts.extend(outs.iter().map(Act::view));
        self.cv2.forward_concat(&parts)
    }
}

#[derive(Debug, Clone)]
struct SppfX {
    cv1: Conv,
    cv2: Conv,
    k: usize,
    n: usize,
    add: bool,
}

impl SppfX {
    fn forward(&self, x: View<'_>) -> Act {
        let mut ys = vec![self.cv1.forward(x)];
        for _ in 0..self.n {
            let next = max_pool(ys.last().expect("nonempty"), self.k);
            ys.push(next);
        }
        let parts: Vec<View<'_>> = ys.iter().map(Act::view).collect();
        let y = self.cv2.forward_concat(&parts);
        if self.add { add(y, x) } else { y }
    }
}

#[derive(Debug, Clone)]
struct AttentionX {
    qkv: Conv,
    proj: Conv,
    pe: Conv,
    heads: usize,
    key_dim: usize,
    head_dim: usize,
}

impl AttentionX {
    fn new<B: Backend>(a: &Attention<B>) -> Result<Self, String> {
        Ok(AttentionX {
            qkv: Conv::new(&a.qkv)?,
            proj: Conv::new(&a.proj)?,
            pe: Conv::new(&a.pe)?,
            heads: a.num_heads,
            key_dim: a.key_dim,
            head_dim: a.head_dim,
        })
    }

    /// ultralytics' Attention: per head, softmax(qᵀk · key_dim^-½) weighs v; plus a
    /// depthwise positional encoding of v; then a 1×1 projection.
    fn forward(&self, x: View<'_>) -> Act {
        let (kd, hd, nh) = (self.key_dim, self.head_dim, self.heads);
        let per = 2 * kd + hd;
        let qkv = self.qkv.forward(x);
        let ctot = qkv.c;
        let n = x.h * x.w;
        let c = nh * hd;
        let scale = (kd as f32).powf(-0.5);
        let mut attended = Act::new(x.n, x.h, x.w, c);
        // v in NHWC, heads side by side: channel head * hd + d, as the reshape to
        // [b, c, h, w] orders them.
        let mut v = Act::new(x.n, x.h, x.w, c);
        for p in 0..x.n * n {
            for h in 0..nh {
                v.data[p * c + h * hd..][..hd]
                    .copy_from_slice(&qkv.data[p * ctot + h * per + 2 * kd..][..hd]);
            }
        }
        let mut scores = vec![0f32; n * n];
        for b in 0..x.n {
            for h in 0..nh {
                let base = b * n * ctot + h * per;
                let q = qkv.data[base..].as_ptr();
                let k = qkv.data[base + kd..].as_ptr();
                let vv = qkv.data[base + 2 * kd..].as_ptr();
                // SAFETY: q, k, v are n rows of row stride ctot inside qkv.data (the last
                // head's v ends at channel ctot); scores is n × n; attended's rows for
                // image b, channels h*hd.. are n rows of stride c.
                unsafe {
                    // scores[i, j] = Σ_d q[i, d] · k[j, d]
                    gemm(
                        n,
                        n,
                        kd,
                        scores.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        q,
                        1,
                        ctot as isize,
                        k,
                        ctot as isize,
                        1,
                        0.0,
                        scale,
                        false,
                        false,
                        false,
                        Parallelism::Rayon(0),
                    );
                }
                scores.par_chunks_mut(n).for_each(|row| {
                    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut s = 0.0;
                    for v in row.iter_mut() {
                        *v = (*v - m).exp();
                        s += *v;
                    }
                    for v in row.iter_mut() {
                        *v /= s;
                    }
                });
                unsafe {
                    // attended[i, d] = Σ_j scores[i, j] · v[j, d]
                    gemm(
                        n,
                        hd,
                        n,
                        attended.data[b * n * c + h * hd..].as_mut_ptr(),
                        1,
                        c as isize,
                        false,
                        scores.as_ptr(),
                        1,
                        n as isize,
                        vv,
                        1,
                        ctot as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::Rayon(0),
                    );
                }
            }
        }
        let pe = self.pe.forward(v.view());
        self.proj.forward(add(attended, pe.view()).view())
    }
}

#[derive(Debug, Clone)]
struct PsaBlockX {
    attn: AttentionX,
    ffn1: Conv,
    ffn2: Conv,
    add: bool,
}

impl PsaBlockX {
    fn forward(&self, x: View<'_>) -> Act {
        let a = self.attn.forward(x);
        let x = if self.add { add(a, x) } else { a };
        let f = self.ffn2.forward(self.ffn1.forward(x.view()).view());
        if self.add { add(f, x.view()) } else { f }
    }
}

#[derive(Debug, Clone)]
struct C2psaX {
    cv1: Conv,
    cv2: Conv,
    m: Vec<PsaBlockX>,
    c: usize,
}

impl C2psaX {
    fn new<B: Backend>(c: &C2psa<B>) -> Result<Self, String> {
        Ok(C2psaX {
            cv1: Conv::new(&c.cv1)?,
            cv2: Conv::new(&c.cv2)?,
            m: c.m
                .iter()
                .map(|p: &PsaBlock<B>| {
                    Ok(PsaBlockX {
                        attn: AttentionX::new(&p.attn)?,
                        ffn1: Conv::new(&p.ffn1)?,
                        ffn2: Conv::new(&p.ffn2)?,
                        add: p.add,
                    })
                })
                .collect::<Result<_, String>>()?,
            c: c.c,
        })
    }

    fn forward(&self, x: View<'_>) -> Act {
        let y = self.cv1.forward(x);
        let mut b = y.channels(self.c, self.c).to_act();
        for blk in &self.m {
            b = blk.forward(b.view());
        }
        self.cv2.forward_concat(&[y.channels(0, self.c), b.view()])
    }
}

#[derive(Debug, Clone)]
struct HeadX {
    box_branch: Vec<Vec<Conv>>,
    cls_branch: Vec<Vec<Conv>>,
    kpt_branch: Option<Vec<Vec<Conv>>>,
    /// Per level: the branches' first convolutions that read the level's features the same
    /// way, as one convolution with their outputs side by side (one im2col or Winograd
    /// input transform instead of one per branch, and a wider product), with each merged
    /// branch's (index: 0 box, 1 cls, 2 keypoints; channel offset).
    merged_first: Vec<Option<MergedFirst>>,
    nc: usize,
    reg_max: usize,
    task: YoloTask,
}

#[derive(Debug, Clone)]
struct MergedFirst {
    conv: Conv,
    /// (branch index, first output channel) of each merged branch.
    members: Vec<(usize, usize)>,
}

/// The first convolutions of `branches` (by index) that can share their input, merged.
fn merge_first(branches: [Option<&[Conv]>; 3]) -> Option<MergedFirst> {
    let firsts: Vec<(usize, &Conv)> = branches
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.and_then(|b| b.first()).map(|c| (i, c)))
        .filter(|(_, c)| !c.depthwise)
        .collect();
    let (_, lead) = *firsts.first()?;
    let same = |c: &Conv| {
        (c.cin, c.k, c.stride, c.pad, c.act) == (lead.cin, lead.k, lead.stride, lead.pad, lead.act)
    };
    let members: Vec<(usize, &Conv)> = firsts.into_iter().filter(|(_, c)| same(c)).collect();
    if members.len() < 2 {
        return None;
    }
    let total: usize = members.iter().map(|(_, c)| c.cout).sum();
    let kk = lead.k * lead.k * lead.cin;
    let mut w = vec![0f32; kk * total];
    let mut b = Vec::with_capacity(total);
    let mut offsets = Vec::new();
    let mut off = 0;
    for (i, c) in &members {
        for r in 0..kk {
            w[r * total + off..r * total + off + c.cout]
                .copy_from_slice(&c.w[r * c.cout..(r + 1) * c.cout]);
        }
        b.extend_from_slice(&c.b);
        offsets.push((*i, off));
        off += c.cout;
    }
    let conv = Conv {
        cin: lead.cin,
        cout: total,
        k: lead.k,
        stride: lead.stride,
        pad: lead.pad,
        depthwise: false,
        w,
        b,
        act: lead.act,
        wino: None,
    }
    .with_winograd();
    Some(MergedFirst {
        conv,
        members: offsets,
    })
}

impl HeadX {
    fn new<B: Backend>(h: &Head<B>) -> Result<Self, String> {
        let branches = |bs: &[Vec<ConvBn<B>>]| -> Result<Vec<Vec<Conv>>, String> {
            bs.iter().map(|b| convs(b)).collect()
        };
        let box_branch = branches(&h.box_branch)?;
        let cls_branch = branches(&h.cls_branch)?;
        let kpt_branch = h.kpt_branch.as_deref().map(branches).transpose()?;
        let merged_first = (0..box_branch.len())
            .map(|i| {
                merge_first([
                    Some(&box_branch[i][..]),
                    Some(&cls_branch[i][..]),
                    kpt_branch.as_ref().map(|k| &k[i][..]),
                ])
            })
            .collect();
        Ok(HeadX {
            box_branch,
            cls_branch,
            kpt_branch,
            merged_first,
            nc: h.nc,
            reg_max: h.reg_max,
            task: h.task,
        })
    }

    /// `[batch, 4 + nc (+ nk), anchors]`, channel-major: what [`Head::forward`] returns.
    fn forward(&self, xs: &[&Act], input_h: usize) -> (Vec<f32>, [usize; 3]) {
        let b = xs[0].n;
        let nk = match self.task {
            YoloTask::Detect => 0,
            YoloTask::Pose { keypoints, dims } => keypoints * dims,
        };
        let ch = 4 + self.nc + nk;
        let n: usize = xs.iter().map(|x| x.h * x.w).sum();
        let mut out = vec![0f32; b * ch * n];
        let mut a0 = 0;
        for (i, x) in xs.iter().enumerate() {
            let first = self.merged_first[i]
                .as_ref()
                .map(|m| (m.conv.forward(x.view()), &m.members));
            let branch = |kind: usize, convs: &[Conv]| -> Act {
                let merged = first.as_ref().and_then(|(y, members)| {
                    let &(_, off) = members.iter().find(|(k, _)| *k == kind)?;
                    Some(y.channels(off, convs[0].cout))
                });
                match merged {
                    Some(v) if convs.len() > 1 => run_seq(&convs[1..], v),
                    Some(v) => v.to_act(),
                    None => run_seq(convs, x.view()),
                }
            };
            let boxes = branch(0, &self.box_branch[i]);
            let cls = branch(1, &self.cls_branch[i]);
            let kpts = self.kpt_branch.as_ref().map(|k| branch(2, &k[i]));
            let (h, w) = (x.h, x.w);
            let stride = (input_h / h) as f32;
            let hw = h * w;
            // Decode anchor by anchor (rows of `ch` values) on all cores, then scatter into
            // the channel-major output.
            let mut rows = buffer(b * hw * ch);
            let level = Level {
                boxes: &boxes.data,
                cls: &cls.data,
                kpts: kpts.as_ref().map(|k| &k.data[..]),
                hw,
                w,
                stride,
            };
            rows.par_chunks_mut(ch * 64)
                .enumerate()
                .for_each(|(t, chunk)| decode_anchors(self, &level, t * 64, chunk));
            out.par_chunks_mut(n).enumerate().for_each(|(r, line)| {
                let (bi, c) = (r / ch, r % ch);
                for (p, o) in line[a0..a0 + hw].iter_mut().enumerate() {
                    *o = rows[(bi * hw + p) * ch + c];
                }
            });
            recycle(rows);
            a0 += hw;
        }
        (out, [b, ch, n])
    }
}

/// One pyramid level's head outputs, NHWC, for [`decode_anchors`].
struct Level<'a> {
    boxes: &'a [f32],
    cls: &'a [f32],
    kpts: Option<&'a [f32]>,
    hw: usize,
    w: usize,
    stride: f32,
}

multiversion!(
    /// Decodes anchors `first..` of a level into `rows` (one row of `4 + nc (+ nk)` values per
    /// anchor): DFL boxes as xywh in input pixels, class probabilities, keypoints.
    fn decode_anchors(head: &HeadX, level: &Level<'_>, first: usize, rows: &mut [f32]) => decode_anchors_generic
);

/// The expected bin of a softmax over 16 bins (every YOLOv8/11 head): whole-array steps and
/// pairwise reductions, which vectorise (a running sum would not: float order).
#[inline(always)]
fn dfl16(bins: &[f32; 16]) -> f32 {
    fn fold16(mut v: [f32; 16], f: impl Fn(f32, f32) -> f32) -> f32 {
        for half in [8, 4, 2, 1] {
            for i in 0..half {
                v[i] = f(v[i], v[i + half]);
            }
        }
        v[0]
    }
    let m = fold16(*bins, f32::max);
    let e: [f32; 16] = std::array::from_fn(|j| exp_approx(bins[j] - m));
    let weighted: [f32; 16] = std::array::from_fn(|j| e[j] * j as f32);
    fold16(weighted, |a, b| a + b) / fold16(e, |a, b| a + b)
}

#[inline(always)]
fn decode_anchors_generic(head: &HeadX, level: &Level<'_>, first: usize, rows: &mut [f32]) {
    let (rm, nc) = (head.reg_max, head.nc);
    let (keypoints, dims) = match head.task {
        YoloTask::Detect => (0, 0),
        YoloTask::Pose { keypoints, dims } => (keypoints, dims),
    };
    let (nk, ch) = (keypoints * dims, 4 + nc + keypoints * dims);
    let mut prob = vec![0f32; rm];
    for (r, row) in rows.chunks_exact_mut(ch).enumerate() {
        let px = first + r;
        let p = px % level.hw;
        let (ax, ay) = ((p % level.w) as f32 + 0.5, (p / level.w) as f32 + 0.5);
        // DFL: softmax over the bins, then the expected bin, per side.
        let bx = &level.boxes[px * 4 * rm..][..4 * rm];
        let mut dist = [0f32; 4];
        for (s, d) in dist.iter_mut().enumerate() {
            let bins = &bx[s * rm..][..rm];
            *d = match <&[f32; 16]>::try_from(bins) {
                Ok(bins) => dfl16(bins),
                Err(_) => {
                    let m = bins.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0.0;
                    let mut weighted = 0.0;
                    for (j, (q, v)) in prob.iter_mut().zip(bins).enumerate() {
                        *q = exp_approx(v - m);
                        sum += *q;
                        weighted += j as f32 * *q;
                    }
                    weighted / sum
                }
            };
        }
        let (x1, y1, x2, y2) = (ax - dist[0], ay - dist[1], ax + dist[2], ay + dist[3]);
        let stride = level.stride;
        row[0] = (x1 + x2) / 2.0 * stride;
        row[1] = (y1 + y2) / 2.0 * stride;
        row[2] = (x2 - x1) * stride;
        row[3] = (y2 - y1) * stride;
        for (o, v) in row[4..4 + nc].iter_mut().zip(&level.cls[px * nc..][..nc]) {
            *o = sigmoid(*v);
        }
        if let Some(kp) = level.kpts {
            let src = &kp[px * nk..][..nk];
            let dst = &mut row[4 + nc..];
            for k in 0..keypoints {
                dst[k * dims] = (src[k * dims] * 2.0 + ax - 0.5) * stride;
                dst[k * dims + 1] = (src[k * dims + 1] * 2.0 + ay - 0.5) * stride;
                if dims == 3 {
                    dst[k * dims + 2] = sigmoid(src[k * dims + 2]);
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum LayerX {
    Conv(Conv),
    C2f(C2fX),
    Sppf(SppfX),
    C2psa(C2psaX),
    Concat,
    Upsample(usize),
    Head(HeadX),
}

impl LayerX {
    fn name(&self) -> &'static str {
        match self {
            LayerX::Conv(_) => "Conv",
            LayerX::C2f(_) => "C2f",
            LayerX::Sppf(_) => "SPPF",
            LayerX::C2psa(_) => "C2PSA",
            LayerX::Concat => "Concat",
            LayerX::Upsample(_) => "Upsample",
            LayerX::Head(_) => "Head",
        }
    }
}

/// A YOLO network ready for the CPU executor.
#[derive(Debug, Clone)]
pub struct NhwcYolo {
    nodes: Vec<(Vec<usize>, LayerX)>,
    save: BTreeSet<usize>,
    pub task: YoloTask,
    pub num_classes: usize,
    /// PITCHSIDE_PROFILE_LAYERS set at load: log each layer's time per forward.
    profile_layers: bool,
}

impl NhwcYolo {
    /// Packs the weights of a network Burn built; an error names what this executor does not
    /// run (the caller then keeps the Burn network).
    pub fn new<B: Backend>(net: &Yolo<B>) -> Result<NhwcYolo, String> {
        let nodes = net
            .nodes
            .iter()
            .map(|node| {
                let layer = match &node.layer {
                    Layer::Conv(c) => LayerX::Conv(Conv::new(c)?),
                    Layer::C2f(c) => LayerX::C2f(C2fX::new(c)?),
                    Layer::Sppf(s) => LayerX::Sppf(sppf(s)?),
                    Layer::C2psa(c) => LayerX::C2psa(C2psaX::new(c)?),
                    Layer::Concat => LayerX::Concat,
                    Layer::Upsample(f) => LayerX::Upsample(*f),
                    Layer::Head(h) => LayerX::Head(HeadX::new(h)?),
                };
                Ok((node.from.clone(), layer))
            })
            .collect::<Result<_, String>>()?;
        Ok(NhwcYolo {
            nodes,
            save: net.save.clone(),
            task: net.task,
            num_classes: net.num_classes,
            profile_layers: std::env::var_os("PITCHSIDE_PROFILE_LAYERS").is_some(),
        })
    }

    /// Runs the network on `[batch, 3, h, w]` RGB in [0, 1] (NCHW, as the letterbox
    /// writes it); returns the head output `[batch, channels, anchors]`.
    pub fn forward(&self, input: &[f32], shape: [usize; 4]) -> (Vec<f32>, [usize; 3]) {
        let [n, c, h, w] = shape;
        let mut x = Act::new(n, h, w, c);
        // NCHW → NHWC, one output row per job (both cores share it even for one image).
        x.data
            .par_chunks_mut(w * c)
            .enumerate()
            .for_each(|(row, dst)| {
                let (img, y) = (row / h, row % h);
                let src = &input[img * c * h * w + y * w..];
                for (xx, px) in dst.chunks_exact_mut(c).enumerate() {
                    for (ch, v) in px.iter_mut().enumerate() {
                        *v = src[ch * h * w + xx];
                    }
                }
            });
        let mut outputs: Vec<Option<Arc<Act>>> = Vec::with_capacity(self.nodes.len());
        let mut last = Arc::new(x);
        // A Concat read only by the next layer, a C2f, is handed over as its parts: C2f's
        // first 1×1 conv reads them in place.
        let mut pending: Option<Vec<Arc<Act>>> = None;
        let profile = self.profile_layers;
        let mut times: Vec<(usize, &'static str, f64)> = Vec::new();
        for (i, (from, layer)) in self.nodes.iter().enumerate() {
            let t0 = std::time::Instant::now();
            let get = |j: usize| -> Arc<Act> {
                if j == usize::MAX || j + 1 == i {
                    last.clone()
                } else {
                    outputs[j].clone().expect("outputs used later are saved")
                }
            };
            let y = match layer {
                LayerX::Conv(cv) => cv.forward(get(from[0]).view()),
                LayerX::C2f(b) => match pending.take() {
                    Some(parts) => {
                        let views: Vec<View<'_>> = parts.iter().map(|a| a.view()).collect();
                        b.forward_concat(&views)
                    }
                    None => b.forward(get(from[0]).view()),
                },
                LayerX::Sppf(b) => b.forward(get(from[0]).view()),
                LayerX::C2psa(b) => b.forward(get(from[0]).view()),
                LayerX::Upsample(f) => upsample(&get(from[0]), *f),
                LayerX::Concat
                    if !self.save.contains(&i)
                        && matches!(self.nodes.get(i + 1), Some((f, LayerX::C2f(_))) if f[..] == [i]) =>
                {
                    pending = Some(from.iter().map(|&j| get(j)).collect());
                    outputs.push(None);
                    continue;
                }
                LayerX::Concat => {
                    let parts: Vec<Arc<Act>> = from.iter().map(|&j| get(j)).collect();
                    let views: Vec<View<'_>> = parts.iter().map(|a| a.view()).collect();
                    concat(&views)
                }
                LayerX::Head(head) => {
                    let parts: Vec<Arc<Act>> = from.iter().map(|&j| get(j)).collect();
                    let refs: Vec<&Act> = parts.iter().map(|a| a.as_ref()).collect();
                    let out = head.forward(&refs, h);
                    if profile {
                        times.push((i, "Head", t0.elapsed().as_secs_f64() * 1e3));
                        tracing::info!(layers = ?times, "CPU executor, ms per layer");
                    }
                    return out;
                }
            };
            if profile {
                times.push((i, layer.name(), t0.elapsed().as_secs_f64() * 1e3));
            }
            let y = Arc::new(y);
            outputs.push(self.save.contains(&i).then(|| y.clone()));
            last = y;
        }
        unreachable!("the architecture ends with a head (checked at load)")
    }
}

fn sppf<B: Backend>(s: &Sppf<B>) -> Result<SppfX, String> {
    Ok(SppfX {
        cv1: Conv::new(&s.cv1)?,
        cv2: Conv::new(&s.cv2)?,
        k: s.k,
        n: s.n,
        add: s.add,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_approx_matches_std_to_a_few_ulp() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (a, b) = (exp_approx(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
            x += 0.0137;
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert!(exp_approx(-200.0) > 0.0 && exp_approx(-200.0) < 2e-38);
        assert!(silu(-100.0).abs() < 1e-30 && (silu(100.0) - 100.0).abs() < 1e-4);
    }

    fn naive_conv(x: &Act, c: &Conv) -> Act {
        let (ho, wo) = c.out_hw(x.h, x.w);
        let mut out = Act::new(x.n, ho, wo, c.cout);
        for b in 0..x.n {
            for oy in 0..ho {
                for ox in 0..wo {
                    for o in 0..c.cout {
                        let mut acc = c.b[o];
                        for ky in 0..c.k {
                            for kx in 0..c.k {
                                let iy = (oy * c.stride + ky) as isize - c.pad as isize;
                                let ix = (ox * c.stride + kx) as isize - c.pad as isize;
                                if iy < 0 || ix < 0 || iy >= x.h as isize || ix >= x.w as isize {
                                    continue;
                                }
                                let px = ((b * x.h + iy as usize) * x.w + ix as usize) * x.c;
                                if c.depthwise {
                                    acc += x.data[px + o] * c.w[(ky * c.k + kx) * c.cout + o];
                                } else {
                                    for ci in 0..c.cin {
                                        acc += x.data[px + ci]
                                            * c.w[((ky * c.k + kx) * c.cin + ci) * c.cout + o];
                                    }
                                }
                            }
                        }
                        out.data[((b * ho + oy) * wo + ox) * c.cout + o] = if c.act {
                            acc / (1.0 + (-acc).exp())
                        } else {
                            acc
                        };
                    }
                }
            }
        }
        out
    }

    fn pseudo(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn convolutions_match_a_naive_loop() {
        // 1×1 (read in place), 3×3 stride 1 and 2 (im2col over tiles, odd sizes, batch 2),
        // depthwise, with and without SiLU.
        for &(cin, cout, k, stride, depthwise, act) in &[
            (8, 5, 1, 1, false, true),
            (3, 16, 3, 2, false, true),
            (7, 9, 3, 1, false, false),
            (6, 6, 3, 1, true, false),
            (6, 6, 3, 2, true, true),
            // Winograd (3×3, stride 1, enough input channels), with and without SiLU.
            (32, 24, 3, 1, false, true),
            (40, 7, 3, 1, false, false),
        ] {
            // Odd sizes take im2col; even ones Winograd where the conv has its weights.
            for (h, w) in [(13, 11), (12, 10), (4, 130)] {
                let x = Act {
                    n: 2,
                    h,
                    w,
                    c: cin,
                    data: pseudo(2 * h * w * cin, 7),
                };
                let wlen = if depthwise {
                    k * k * cout
                } else {
                    k * k * cin * cout
                };
                let conv = Conv {
                    cin,
                    cout,
                    k,
                    stride,
                    pad: k / 2,
                    depthwise,
                    w: pseudo(wlen, 3),
                    b: pseudo(cout, 5),
                    act,
                    wino: None,
                }
                .with_winograd();
                let (got, want) = (conv.forward(x.view()), naive_conv(&x, &conv));
                assert_eq!((got.h, got.w, got.c), (want.h, want.w, want.c));
                for (a, b) in got.data.iter().zip(&want.data) {
                    assert!(
                        (a - b).abs() < 1e-5,
                        "{cin}->{cout} k{k} s{stride}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_channel_slice_feeds_a_1x1_conv_in_place() {
        let x = Act {
            n: 1,
            h: 5,
            w: 3,
            c: 10,
            data: pseudo(150, 11),
        };
        let conv = Conv {
            cin: 4,
            cout: 3,
            k: 1,
            stride: 1,
            pad: 0,
            depthwise: false,
            w: pseudo(12, 2),
            b: vec![0.0; 3],
            act: false,
            wino: None,
        };
        let got = conv.forward(x.channels(6, 4));
        let want = naive_conv(&x.channels(6, 4).to_act(), &conv);
        for (a, b) in got.data.iter().zip(&want.data) {
            assert!((a - b).abs() < 1e-6);
        }
        // A 3×3 conv on a channel slice takes im2col's pixel-by-pixel path.
        let conv3 = Conv {
            k: 3,
            pad: 1,
            w: pseudo(9 * 12, 4),
            ..conv
        };
        let got = conv3.forward(x.channels(2, 4));
        let want = naive_conv(&x.channels(2, 4).to_act(), &conv3);
        for (a, b) in got.data.iter().zip(&want.data) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn a_1x1_conv_of_parts_equals_the_conv_of_their_concatenation() {
        let (a, b) = (
            Act {
                n: 2,
                h: 9,
                w: 7,
                c: 5,
                data: pseudo(2 * 9 * 7 * 5, 1),
            },
            Act {
                n: 2,
                h: 9,
                w: 7,
                c: 12,
                data: pseudo(2 * 9 * 7 * 12, 2),
            },
        );
        let conv = Conv {
            cin: 5 + 4,
            cout: 6,
            k: 1,
            stride: 1,
            pad: 0,
            depthwise: false,
            w: pseudo(9 * 6, 3),
            b: pseudo(6, 4),
            act: true,
            wino: None,
        };
        let parts = [a.view(), b.channels(8, 4)];
        let got = conv.forward_concat(&parts);
        let want = conv.forward(concat(&parts).view());
        for (x, y) in got.data.iter().zip(&want.data) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }

    #[test]
    fn max_pool_and_upsample() {
        let x = Act {
            n: 1,
            h: 4,
            w: 3,
            c: 2,
            data: pseudo(24, 5),
        };
        let p = max_pool(&x, 5);
        for y in 0..4usize {
            for xx in 0..3usize {
                for c in 0..2 {
                    let mut m = f32::NEG_INFINITY;
                    for iy in y.saturating_sub(2)..(y + 3).min(4) {
                        for ix in xx.saturating_sub(2)..(xx + 3).min(3) {
                            m = m.max(x.data[(iy * 3 + ix) * 2 + c]);
                        }
                    }
                    assert_eq!(p.data[(y * 3 + xx) * 2 + c], m);
                }
            }
        }
        let u = upsample(&x, 2);
        assert_eq!((u.h, u.w), (8, 6));
        assert_eq!(u.data[(5 * 6 + 3) * 2 + 1], x.data[(2 * 3 + 1) * 2 + 1]);
    }
}
