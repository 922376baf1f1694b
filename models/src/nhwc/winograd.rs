//! Winograd F(m×m, 3×3) for 3×3 stride-1 convolutions with enough input channels: the
//! weight transform (once, at load), the input and output tile transforms, and the matrix
//! products per run of tile rows. Two tile sizes:
//! - F(4×4, 3×3), the default: 6×6 input tiles, 36 products, 4× fewer multiplies than the
//!   3×3 convolution (and 2.25 transformed values per output pixel and channel, against 4
//!   for F(2×2)); its transforms have coefficients up to 8, which costs a few ulp in f32;
//! - F(2×2, 3×3): 4×4 tiles, 16 products, 2.25× fewer multiplies; kept for bf16 operands,
//!   whose 8-bit mantissa the larger coefficients of F(4×4) would amplify.
//!
//! Edge tiles are clipped: inputs past the image read as zeros, outputs past it are not
//! written, so any output size runs here.

use rayon::prelude::*;

use super::act::{Act, View};
#[cfg(target_arch = "x86_64")]
use super::conv::COL_BF16;
use super::conv::{Conv, gemm_rows};
#[cfg(target_arch = "x86_64")]
use super::kernel::{Epilogue, Seg, matmul_bf16, matmul_f32};
use super::simd::silu;

/// Winograd needs enough input channels for its matrix products to run efficiently: at 16
/// (YOLOv8n's first C2f) F(4×4) still beat im2col by ~9 % on the whole network (three
/// interleaved rounds; 8 gained nothing more).
const WINOGRAD_MIN_CIN: usize = 16;

/// Bytes of one job's transformed inputs and products: they stay in L2 between the
/// transforms and the products.
const JOB_BYTES: usize = 768 * 1024;

thread_local! {
    /// Each worker thread's Winograd buffers (transformed inputs, products).
    static WINO: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Channels per step of the Winograd transforms: fixed-size arrays that LLVM vectorises.
const LANES: usize = 16;

/// Output pixels per tile side of a Winograd weight set with `positions` (16 or 36) products.
fn tile_side(positions: usize) -> usize {
    match positions {
        16 => 2,
        36 => 4,
        p => unreachable!("Winograd weights with {p} positions"),
    }
}

/// Loads channels `c0..c0 + n` of each of the `P` pixels (zero-filled past `n`).
#[inline(always)]
fn load_lanes<const P: usize>(d: &[&[f32]], c0: usize, n: usize) -> [[f32; LANES]; P] {
    let mut x = [[0f32; LANES]; P];
    for (xk, dk) in x.iter_mut().zip(d) {
        // Constant-length copies for whole steps: inlined loads, not memmove calls.
        if n == LANES {
            xk.copy_from_slice(&dk[c0..c0 + LANES]);
        } else {
            xk[..n].copy_from_slice(&dk[c0..c0 + n]);
        }
    }
    x
}

/// Loads channels `c0..c0 + n` of each of the `P` positions' products, `m[ξ · stride..]`
/// (zero-filled past `n`): the output transforms' [`load_lanes`].
#[inline(always)]
fn positions_at<const P: usize>(
    m: &[f32],
    stride: usize,
    c0: usize,
    n: usize,
) -> [[f32; LANES]; P] {
    let mut x = [[0f32; LANES]; P];
    for (k, xk) in x.iter_mut().enumerate() {
        let at = k * stride + c0;
        if n == LANES {
            xk.copy_from_slice(&m[at..at + LANES]);
        } else {
            xk[..n].copy_from_slice(&m[at..at + n]);
        }
    }
    x
}

/// Where an input transform writes position ξ's channels: f32 for the f32 products, or
/// bf16 (rounded to nearest even, as `vcvtneps2bf16` does for finite values) for the bf16
/// ones, so that no separate pass converts the transformed tiles.
trait Sink {
    /// Stores `n` lanes of position `k` at channel `c0`.
    fn store(&mut self, k: usize, c0: usize, lanes: &[f32; LANES], n: usize);
}

/// `v[k · stride + c]`.
struct F32Sink<'a> {
    v: &'a mut [f32],
    stride: usize,
}

impl Sink for F32Sink<'_> {
    #[inline(always)]
    fn store(&mut self, k: usize, c0: usize, lanes: &[f32; LANES], n: usize) {
        let at = k * self.stride + c0;
        if n == LANES {
            self.v[at..at + LANES].copy_from_slice(lanes);
        } else {
            self.v[at..at + n].copy_from_slice(&lanes[..n]);
        }
    }
}

/// `h[k · stride + c]` as bf16 bits; a row of an odd channel count gets its zero pad (the
/// bf16 kernel reads channels in pairs).
struct Bf16Sink<'a> {
    h: &'a mut [u16],
    stride: usize,
    cin: usize,
}

impl Sink for Bf16Sink<'_> {
    #[inline(always)]
    fn store(&mut self, k: usize, c0: usize, lanes: &[f32; LANES], n: usize) {
        let at = k * self.stride + c0;
        let b: [u16; LANES] = std::array::from_fn(|l| {
            let x = lanes[l].to_bits();
            (x.wrapping_add(0x7fff + ((x >> 16) & 1)) >> 16) as u16
        });
        if n == LANES {
            self.h[at..at + LANES].copy_from_slice(&b);
        } else {
            self.h[at..at + n].copy_from_slice(&b[..n]);
        }
        if c0 + n == self.cin && self.cin % 2 == 1 {
            self.h[at + n] = 0;
        }
    }
}

/// Stores each position's `n` lanes through the sink.
#[inline(always)]
fn store_lanes(o: &[[f32; LANES]], sink: &mut impl Sink, c0: usize, n: usize) {
    for (k, ok) in o.iter().enumerate() {
        sink.store(k, c0, ok, n);
    }
}

/// Bias, SiLU if `act`, and the store of one tile's output pixels: `out[i]` to `y[pix[i]..]`,
/// skipping clipped pixels (`usize::MAX`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn finish_lanes(
    out: &mut [[f32; LANES]],
    y: &mut [f32],
    pix: &[usize],
    bias: &[f32],
    act: bool,
    c0: usize,
    n: usize,
) {
    let mut b = [0f32; LANES];
    b[..n].copy_from_slice(&bias[c0..c0 + n]);
    for o in out.iter_mut() {
        for (v, b) in o.iter_mut().zip(&b) {
            *v += b;
        }
        if act {
            for v in o.iter_mut() {
                *v = silu(*v);
            }
        }
    }
    for (&p, ok) in pix.iter().zip(out.iter()) {
        if p == usize::MAX {
            continue;
        }
        if n == LANES {
            y[p + c0..p + c0 + LANES].copy_from_slice(ok);
        } else {
            y[p + c0..p + c0 + n].copy_from_slice(&ok[..n]);
        }
    }
}

multiversion!(
    /// F(2×2): V = Bᵀ·d·B for one 4×4 tile `d` (16 row-major pixels), all channels;
    /// position ξ's cin values go to `v[ξ · stride..]`.
    fn winograd_input2(d: &[&[f32]], v: &mut [f32], stride: usize) => winograd_input2_f32
);

multiversion!(
    /// As [`winograd_input2`], written as bf16 (rows of `cin` rounded up to even).
    fn winograd_input2_bf16(d: &[&[f32]], h: &mut [u16], stride: usize) => winograd_input2_to_bf16
);

#[inline(always)]
fn winograd_input2_f32(d: &[&[f32]], v: &mut [f32], stride: usize) {
    winograd_input2_generic(d, &mut F32Sink { v, stride });
}

#[inline(always)]
fn winograd_input2_to_bf16(d: &[&[f32]], h: &mut [u16], stride: usize) {
    let cin = d[0].len();
    winograd_input2_generic(d, &mut Bf16Sink { h, stride, cin });
}

#[inline(always)]
fn winograd_input2_generic(d: &[&[f32]], sink: &mut impl Sink) {
    let cin = d[0].len();
    let mut c0 = 0;
    while c0 < cin {
        let n = LANES.min(cin - c0);
        let x: [[f32; LANES]; 16] = load_lanes(d, c0, n);
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
        store_lanes(&o, sink, c0, n);
        c0 += n;
    }
}

multiversion!(
    /// F(2×2): Y = Aᵀ·M·A + bias (then SiLU if `act`) for one tile: position ξ's cout
    /// values at `m[ξ · stride..]`; output pixel (i, j) of the tile goes to `y[pix[2i + j]..]`
    /// unless clipped (`usize::MAX`).
    fn winograd_output2(m: &[f32], stride: usize, y: &mut [f32], pix: &[usize], bias: &[f32], act: bool) => winograd_output2_generic
);

#[inline(always)]
fn winograd_output2_generic(
    m: &[f32],
    stride: usize,
    y: &mut [f32],
    pix: &[usize],
    bias: &[f32],
    act: bool,
) {
    let cout = bias.len();
    let mut c0 = 0;
    while c0 < cout {
        let n = LANES.min(cout - c0);
        let x: [[f32; LANES]; 16] = positions_at(m, stride, c0, n);
        // Aᵀ·M: rows (m0 + m1 + m2, m1 - m2 - m3), per column; then the same on rows.
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
        finish_lanes(&mut out[..4], y, pix, bias, act, c0, n);
        c0 += n;
    }
}

/// F(4×4)'s Bᵀ applied to six values (rows of Bᵀ: [4 0 -5 0 1 0], [0 -4 -4 1 1 0],
/// [0 4 -4 -1 1 0], [0 -2 -1 2 1 0], [0 2 -1 -2 1 0], [0 4 0 -5 0 1]).
#[inline(always)]
fn bt4(d: [f32; 6]) -> [f32; 6] {
    let [d0, d1, d2, d3, d4, d5] = d;
    let (a, b) = (d4 - 4.0 * d2, d3 - 4.0 * d1);
    let (c, e) = (d4 - d2, 2.0 * (d3 - d1));
    [
        4.0 * d0 - 5.0 * d2 + d4,
        a + b,
        a - b,
        c + e,
        c - e,
        4.0 * d1 - 5.0 * d3 + d5,
    ]
}

/// F(4×4)'s Aᵀ applied to six values (rows of Aᵀ: [1 1 1 1 1 0], [0 1 -1 2 -2 0],
/// [0 1 1 4 4 0], [0 1 -1 8 -8 1]).
#[inline(always)]
fn at4(m: [f32; 6]) -> [f32; 4] {
    let [m0, m1, m2, m3, m4, m5] = m;
    let (a, b, c, d) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
    [m0 + a + c, b + 2.0 * d, a + 4.0 * c, b + 8.0 * d + m5]
}

multiversion!(
    /// F(4×4): V = Bᵀ·d·B for one 6×6 tile `d` (36 row-major pixels), all channels;
    /// position ξ's cin values go to `v[ξ · stride..]`.
    fn winograd_input4(d: &[&[f32]], v: &mut [f32], stride: usize) => winograd_input4_f32
);

multiversion!(
    /// As [`winograd_input4`], written as bf16 (rows of `cin` rounded up to even).
    fn winograd_input4_bf16(d: &[&[f32]], h: &mut [u16], stride: usize) => winograd_input4_to_bf16
);

#[inline(always)]
fn winograd_input4_f32(d: &[&[f32]], v: &mut [f32], stride: usize) {
    winograd_input4_generic(d, &mut F32Sink { v, stride });
}

#[inline(always)]
fn winograd_input4_to_bf16(d: &[&[f32]], h: &mut [u16], stride: usize) {
    let cin = d[0].len();
    winograd_input4_generic(d, &mut Bf16Sink { h, stride, cin });
}

#[inline(always)]
fn winograd_input4_generic(d: &[&[f32]], sink: &mut impl Sink) {
    let cin = d[0].len();
    let mut c0 = 0;
    while c0 < cin {
        let n = LANES.min(cin - c0);
        let x: [[f32; LANES]; 36] = load_lanes(d, c0, n);
        let mut t = [[0f32; LANES]; 36];
        for j in 0..6 {
            for l in 0..LANES {
                let r = bt4(std::array::from_fn(|i| x[6 * i + j][l]));
                for (i, r) in r.into_iter().enumerate() {
                    t[6 * i + j][l] = r;
                }
            }
        }
        let mut o = [[0f32; LANES]; 36];
        for i in 0..6 {
            for l in 0..LANES {
                let r = bt4(std::array::from_fn(|j| t[6 * i + j][l]));
                for (j, r) in r.into_iter().enumerate() {
                    o[6 * i + j][l] = r;
                }
            }
        }
        store_lanes(&o, sink, c0, n);
        c0 += n;
    }
}

multiversion!(
    /// F(4×4): Y = Aᵀ·M·A + bias (then SiLU if `act`) for one tile: position ξ's cout
    /// values at `m[ξ · stride..]`; output pixel (i, j) of the tile goes to `y[pix[4i + j]..]`
    /// unless clipped (`usize::MAX`).
    fn winograd_output4(m: &[f32], stride: usize, y: &mut [f32], pix: &[usize], bias: &[f32], act: bool) => winograd_output4_generic
);

#[inline(always)]
fn winograd_output4_generic(
    m: &[f32],
    stride: usize,
    y: &mut [f32],
    pix: &[usize],
    bias: &[f32],
    act: bool,
) {
    let cout = bias.len();
    let mut c0 = 0;
    while c0 < cout {
        let n = LANES.min(cout - c0);
        let x: [[f32; LANES]; 36] = positions_at(m, stride, c0, n);
        // Aᵀ·M per column (6 → 4 rows), then the same on each of the 4 rows (6 → 4).
        let mut s = [[0f32; LANES]; 24];
        for j in 0..6 {
            for l in 0..LANES {
                let r = at4(std::array::from_fn(|i| x[6 * i + j][l]));
                for (i, r) in r.into_iter().enumerate() {
                    s[6 * i + j][l] = r;
                }
            }
        }
        let mut out = [[0f32; LANES]; 16];
        for i in 0..4 {
            for l in 0..LANES {
                let r = at4(std::array::from_fn(|j| s[6 * i + j][l]));
                for (j, r) in r.into_iter().enumerate() {
                    out[4 * i + j][l] = r;
                }
            }
        }
        finish_lanes(&mut out, y, pix, bias, act, c0, n);
        c0 += n;
    }
}

/// The weight transform G (a × 3) of F(m×m, 3×3), a = m + 2.
fn weight_transform(m: usize) -> Vec<[f32; 3]> {
    match m {
        2 => vec![
            [1.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.5, -0.5, 0.5],
            [0.0, 0.0, 1.0],
        ],
        4 => vec![
            [0.25, 0.0, 0.0],
            [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
            [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
            [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
            [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
            [0.0, 0.0, 1.0],
        ],
        m => unreachable!("Winograd F({m}×{m}, 3×3)"),
    }
}

impl Conv {
    /// Adds the Winograd F(4×4, 3×3) weights where this convolution can use them.
    pub(super) fn with_winograd(self) -> Conv {
        self.with_winograd_tile(4)
    }

    /// Adds Winograd F(m×m, 3×3) weights (m = 2 or 4) where this convolution can use them
    /// (3×3, stride 1, padding 1, not depthwise, enough input channels).
    pub(super) fn with_winograd_tile(mut self, m: usize) -> Conv {
        if self.depthwise || self.k != 3 || self.stride != 1 || self.pad != 1 {
            return self;
        }
        if self.cin < WINOGRAD_MIN_CIN || self.w.is_empty() {
            return self;
        }
        let g_t = weight_transform(m);
        let a = m + 2;
        let (cin, cout) = (self.cin, self.cout);
        let mut u = vec![0f32; a * a * cin * cout];
        for ci in 0..cin {
            for co in 0..cout {
                let g = |ky: usize, kx: usize| self.w[((ky * 3 + kx) * cin + ci) * cout + co];
                // U = G·g·Gᵀ, in f64 so the transform adds no rounding of its own.
                let mut t = vec![[0f64; 3]; a];
                for (i, row) in t.iter_mut().enumerate() {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = (0..3).map(|k| g_t[i][k] as f64 * g(k, j) as f64).sum();
                    }
                }
                for (i, row) in t.iter().enumerate() {
                    for (j, gj) in g_t.iter().enumerate() {
                        u[((i * a + j) * cin + ci) * cout + co] =
                            (0..3).map(|k| row[k] * gj[k] as f64).sum::<f64>() as f32;
                    }
                }
            }
        }
        self.wino = Some(u);
        self.wino_mm = None;
        self
    }

    /// The number of Winograd products (16 for F(2×2), 36 for F(4×4)); 0 without.
    pub(super) fn winograd_positions(&self) -> usize {
        match (&self.wino, &self.wino_mm) {
            (_, Some(p)) => p.len(),
            (Some(u), None) => u.len() / (self.cin * self.cout),
            (None, None) => 0,
        }
    }

    /// Winograd F(m×m, 3×3): per (m+2)² input tile (m×m outputs), V = Bᵀ·d·B; then for
    /// each tile position ξ one matrix product V[ξ] (tiles × cin) · U[ξ] (cin × cout); then
    /// Y = Aᵀ·M·A. Jobs are runs of tile rows of one image, so each writes contiguous
    /// output; enough of them that both (all) cores get work on small maps.
    pub(super) fn winograd(&self, x: View<'_>, out: &mut Act) {
        let positions = self.winograd_positions();
        let m = tile_side(positions);
        let a = m + 2;
        let (cin, cout, ho, wo) = (self.cin, self.cout, out.h, out.w);
        let (th, tw) = (ho.div_ceil(m), wo.div_ceil(m));
        let target_tiles = (JOB_BYTES / (4 * positions * (cin + cout))).clamp(14, 64);
        let min_jobs = 2 * rayon::current_num_threads();
        let rows_per_job = (target_tiles / tw)
            .max(1)
            .min((x.n * th).div_ceil(min_jobs).max(1));
        let image_len = ho * wo * cout;
        let job_len = m * rows_per_job * wo * cout;
        let mut jobs: Vec<(usize, usize, &mut [f32])> = Vec::new();
        for (b, image) in out.data.chunks_mut(image_len).enumerate() {
            for (j, dst) in image.chunks_mut(job_len).enumerate() {
                jobs.push((b, j * rows_per_job, dst));
            }
        }
        let output: OutputFn = if m == 2 {
            winograd_output2
        } else {
            winograd_output4
        };
        jobs.into_par_iter().for_each(|(b, ty0, dst)| {
            WINO.with_borrow_mut(|(v, mm)| {
                let rows = (dst.len() / (wo * cout)).div_ceil(m);
                let tiles = rows * tw;
                if mm.len() < tiles * positions * cout {
                    mm.resize(tiles * positions * cout, 0.0);
                }
                // Each tile's (m+2)² input pixels, zeros past the image, in row-major order.
                let zeros = vec![0f32; cin];
                let mut d: Vec<&[f32]> = vec![&zeros[..]; positions];
                let mut for_each_tile = |transform: &mut TileTransform<'_>| {
                    for r in 0..rows {
                        let ty = ty0 + r;
                        for tx in 0..tw {
                            for (k, dk) in d.iter_mut().enumerate() {
                                let iy = (m * ty + k / a) as isize - 1;
                                let ix = (m * tx + k % a) as isize - 1;
                                let outside =
                                    iy < 0 || ix < 0 || iy >= x.h as isize || ix >= x.w as isize;
                                *dk = if outside {
                                    &zeros[..]
                                } else {
                                    x.pixel((b * x.h + iy as usize) * x.w + ix as usize)
                                };
                            }
                            transform(&d, r * tw + tx);
                        }
                    }
                };
                self.winograd_products(positions, tiles, &mut for_each_tile, v, mm);
                let mut pix = [usize::MAX; 16];
                for r in 0..rows {
                    for tx in 0..tw {
                        for (k, p) in pix[..m * m].iter_mut().enumerate() {
                            let (i, j) = (k / m, k % m);
                            let (oy, ox) = ((ty0 + r) * m + i, tx * m + j);
                            *p = if oy < ho && ox < wo {
                                ((r * m + i) * wo + ox) * cout
                            } else {
                                usize::MAX
                            };
                        }
                        let t = r * tw + tx;
                        output(
                            &mm[t * cout..],
                            tiles * cout,
                            dst,
                            &pix[..m * m],
                            &self.b,
                            self.act,
                        );
                    }
                }
            })
        });
    }

    /// Transforms the input tiles (`for_each_tile` hands each tile's pixels and index to a
    /// transform) and computes the products M[ξ] = V[ξ] · U[ξ] into `m`: V[ξ] is `tiles ×
    /// cin` at `ξ · tiles · cin` of `v` (or of the bf16 buffer, written as bf16 by the
    /// transform itself), M[ξ] likewise. Each product's rows are contiguous: with the tiles
    /// interleaved, its rows were positions·cin floats apart, 4 KiB for 64 channels in
    /// F(2×2), and the 14 rows one microkernel call reads fell into one L1 set.
    fn winograd_products(
        &self,
        positions: usize,
        tiles: usize,
        for_each_tile: &mut dyn FnMut(&mut TileTransform<'_>),
        v: &mut Vec<f32>,
        m: &mut [f32],
    ) {
        let (cin, cout) = (self.cin, self.cout);
        let f32_input = if positions == 16 {
            winograd_input2
        } else {
            winograd_input4
        };
        #[cfg(target_arch = "x86_64")]
        if let Some(packed) = &self.wino_mm
            && packed[0].is_bf16()
        {
            let cin2 = cin.div_ceil(2) * 2;
            let input = if positions == 16 {
                winograd_input2_bf16
            } else {
                winograd_input4_bf16
            };
            COL_BF16.with_borrow_mut(|h| {
                if h.len() < tiles * positions * cin2 {
                    h.resize(tiles * positions * cin2, 0);
                }
                for_each_tile(&mut |d, t| input(d, &mut h[t * cin2..], tiles * cin2));
                for (xi, u) in packed.iter().enumerate() {
                    // SAFETY: bf16 panels exist only where the CPU has AVX512_BF16; h
                    // holds positions · tiles rows of cin2, m as many of cout; row
                    // ξ · tiles + t of both is tile t's position ξ.
                    unsafe {
                        matmul_bf16(
                            u,
                            h[xi * tiles * cin2..].as_ptr(),
                            cin2,
                            tiles,
                            m[xi * tiles * cout..].as_mut_ptr(),
                            cout,
                            Epilogue::None,
                        );
                    }
                }
            });
            return;
        }
        if v.len() < tiles * positions * cin {
            v.resize(tiles * positions * cin, 0.0);
        }
        for_each_tile(&mut |d, t| f32_input(d, &mut v[t * cin..], tiles * cin));
        #[cfg(target_arch = "x86_64")]
        if let Some(packed) = &self.wino_mm {
            for (xi, u) in packed.iter().enumerate() {
                let seg = Seg {
                    ptr: v[xi * tiles * cin..].as_ptr(),
                    stride: cin,
                    len: cin,
                };
                // SAFETY: f32 panels exist only where the CPU has AVX-512F; as below.
                unsafe {
                    matmul_f32(
                        u,
                        &[seg],
                        tiles,
                        m[xi * tiles * cout..].as_mut_ptr(),
                        cout,
                        Epilogue::None,
                    );
                }
            }
            return;
        }
        let u = self.wino.as_deref().expect("checked by the caller");
        for xi in 0..positions {
            // SAFETY: m and v hold positions · tiles rows of cout / cin floats; row t of
            // product xi is row xi · tiles + t; u[xi] is cin × cout.
            unsafe {
                gemm_rows(
                    tiles,
                    cout,
                    cin,
                    (m[xi * tiles * cout..].as_mut_ptr(), cout),
                    (v[xi * tiles * cin..].as_ptr(), cin),
                    (u[xi * cin * cout..].as_ptr(), cout),
                    false,
                );
            }
        }
    }
}

/// An input transform called with one tile's pixels and the tile's index in the job.
type TileTransform<'a> = dyn FnMut(&[&[f32]], usize) + 'a;

/// An output transform: products, their stride, the job's output, pixel offsets, bias, act.
type OutputFn = fn(&[f32], usize, &mut [f32], &[usize], &[f32], bool);
