//! Convolutions on NHWC activations: weights packed once at load; a dense convolution is
//! one matrix product per tile of output pixels (im2col rows, or the input itself for 1×1
//! convolutions, also a channel slice of it), with bias + SiLU applied while the tile is in
//! cache; depthwise convolutions row by row. Winograd lives in [`super::winograd`].

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use super::act::{Act, View, concat};
#[cfg(target_arch = "x86_64")]
use super::kernel::{Epilogue, matmul_bf16, matmul_f32, to_bf16_rows};
use super::kernel::{Isa, Packed, Seg};
use super::simd::bias_act;
use crate::plan::ConvWeights;

thread_local! {
    /// Each worker thread's im2col tile, kept between tiles and layers.
    static COL: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Each worker thread's left operand in bf16 (the bf16 kernel's input).
    pub(super) static COL_BF16: std::cell::RefCell<Vec<u16>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Bytes of im2col rows per tile: a tile and its output stay in L2.
const TILE_BYTES: usize = 256 * 1024;

/// A convolution (+ folded BatchNorm) (+ SiLU), weights packed for NHWC.
#[derive(Debug, Clone)]
pub(super) struct Conv {
    pub(super) cin: usize,
    pub(super) cout: usize,
    pub(super) k: usize,
    pub(super) stride: usize,
    pub(super) pad: usize,
    pub(super) depthwise: bool,
    /// Dense: `[k * k * cin, cout]`, rows ordered (ky, kx, ci) as im2col writes them
    /// (empty once [`Conv::compact`] found them packed). Depthwise: `[k * k, c]`.
    pub(super) w: Vec<f32>,
    pub(super) b: Vec<f32>,
    pub(super) act: bool,
    /// Winograd F(m×m, 3×3) weights `[(m+2)²][cin][cout]` (U = G·g·Gᵀ; m = 4, or 2 for
    /// bf16 operands) for the 3×3 stride-1 convolutions it pays for; `None` elsewhere.
    pub(super) wino: Option<Vec<f32>>,
    /// The dense weights packed for the microkernel ([`Conv::packed`]); only where the CPU
    /// has AVX-512, which every use of it relies on.
    pub(super) mm: Option<Packed>,
    /// The Winograd weight matrices (16 or 36) packed likewise.
    pub(super) wino_mm: Option<Vec<Packed>>,
}

impl Conv {
    /// Packs a plan's convolution; an error names what this executor does not run.
    pub(super) fn new(c: &ConvWeights) -> Result<Conv, String> {
        let (co, k, cin) = (c.c_out, c.k, c.c_in);
        let cig = cin / c.groups;
        let src = &c.weight;
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
            pad: c.pad,
            depthwise,
            w,
            b: c.bias.clone(),
            act: c.act,
            wino: None,
            mm: None,
            wino_mm: None,
        }
        .with_winograd())
    }

    /// Packs the dense (and Winograd) weights for the microkernel where `isa` runs it,
    /// with bf16 operands if `bf16` (the caller checked that `isa` has them).
    pub(super) fn packed(mut self, isa: Isa, bf16: bool) -> Conv {
        if isa == Isa::Portable || self.depthwise {
            return self;
        }
        // bf16 operands take F(2×2): F(4×4)'s larger transform coefficients amplify their
        // rounding (measured with F(4×4) in bf16: a YOLOv8n score off by 0.024, one conv of
        // the unit test off by 0.04).
        if bf16 && self.winograd_positions() == 36 {
            self = self.with_winograd_tile(2);
        }
        let (kk, cin, cout) = (self.k * self.k * self.cin, self.cin, self.cout);
        self.mm = Some(Packed::new(&self.w, kk, cout, cout, bf16));
        let positions = self.winograd_positions();
        self.wino_mm = self.wino.as_ref().map(|u| {
            (0..positions)
                .map(|xi| Packed::new(&u[xi * cin * cout..], cin, cout, cout, bf16))
                .collect()
        });
        self
    }

    /// Drops the row-major weights the packed ones replace (they would double the memory).
    pub(super) fn compact(&mut self) {
        if self.mm.is_some() {
            self.w = Vec::new();
        }
        if self.wino_mm.is_some() {
            self.wino = None;
        }
    }

    /// An empty convolution, for moving one out of a structure.
    pub(super) fn placeholder() -> Conv {
        Conv {
            cin: 0,
            cout: 0,
            k: 1,
            stride: 1,
            pad: 0,
            depthwise: false,
            w: Vec::new(),
            b: Vec::new(),
            act: false,
            wino: None,
            mm: None,
            wino_mm: None,
        }
    }

    pub(super) fn has_winograd(&self) -> bool {
        self.wino.is_some() || self.wino_mm.is_some()
    }

    pub(super) fn out_hw(&self, h: usize, w: usize) -> (usize, usize) {
        (
            (h + 2 * self.pad - self.k) / self.stride + 1,
            (w + 2 * self.pad - self.k) / self.stride + 1,
        )
    }

    pub(super) fn forward(&self, x: View<'_>) -> Act {
        debug_assert_eq!(x.c, self.cin);
        let (ho, wo) = self.out_hw(x.h, x.w);
        let mut out = Act::new(x.n, ho, wo, self.cout);
        if self.depthwise {
            self.depthwise(x, &mut out);
        } else if self.has_winograd() {
            self.winograd(x, &mut out);
        } else {
            self.dense(x, &mut out);
        }
        out
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
                let seg = Seg {
                    ptr: lhs,
                    stride: lhs_rs,
                    len: kk,
                };
                // SAFETY: dst is rows × cout (row stride cout); lhs is rows × kk with row
                // stride lhs_rs inside x.data or col (checked by the slicing above: the last
                // row of a direct tile ends within x.data as x.off + cin <= x.stride);
                // self.w / self.mm is kk × cout; mm exists only where the CPU has AVX-512.
                unsafe { self.product(&[seg], rows, dst) };
                COL.set(col);
            });
    }

    /// `dst = bias_act(A · W)` for one tile: A is `rows` rows of the segments (together
    /// k·k·cin columns), dst `rows × cout`; the packed kernels where the weights are packed
    /// (the epilogue in registers), else `gemm` (one accumulating product per segment) and
    /// a pass of [`bias_act`].
    ///
    /// # Safety
    /// Every segment addresses `rows` rows of its `len` values; dst overlaps none of them.
    unsafe fn product(&self, segs: &[Seg], rows: usize, dst: &mut [f32]) {
        let cout = self.cout;
        debug_assert_eq!(dst.len(), rows * cout);
        #[cfg(target_arch = "x86_64")]
        if let Some(mm) = &self.mm {
            let epi = Epilogue::Bias {
                bias: &self.b,
                act: self.act,
            };
            if mm.is_bf16() {
                let rs = mm.k.div_ceil(2) * 2;
                COL_BF16.with_borrow_mut(|h| {
                    if h.len() < rows * rs {
                        h.resize(rows * rs, 0);
                    }
                    // SAFETY: bf16 panels exist only where the CPU has AVX512_BF16; h holds
                    // rows × rs values; the caller's contract for the segments and dst.
                    unsafe {
                        to_bf16_rows(segs, rows, h, rs);
                        matmul_bf16(mm, h.as_ptr(), rs, rows, dst.as_mut_ptr(), cout, epi);
                    }
                });
            } else {
                // SAFETY: f32 panels exist only where the CPU has AVX-512F; the caller's
                // contract.
                unsafe { matmul_f32(mm, segs, rows, dst.as_mut_ptr(), cout, epi) };
            }
            return;
        }
        let mut w_row = 0;
        for (i, s) in segs.iter().enumerate() {
            // SAFETY: the caller's contract; the segment's weights are rows
            // w_row..w_row + s.len of the kk × cout matrix.
            unsafe {
                gemm_rows(
                    rows,
                    cout,
                    s.len,
                    (dst.as_mut_ptr(), cout),
                    (s.ptr, s.stride),
                    (self.w[w_row * cout..].as_ptr(), cout),
                    i > 0,
                );
            }
            w_row += s.len;
        }
        bias_act(dst, &self.b, self.act);
    }

    /// This 1×1 convolution applied to the channel concatenation of `parts`, without
    /// building it: one accumulating product per part, with that part's rows of the weights.
    pub(super) fn forward_concat(&self, parts: &[View<'_>]) -> Act {
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
                let segs: Vec<Seg> = parts
                    .iter()
                    .map(|x| Seg {
                        ptr: x.data[row0 * x.stride + x.off..].as_ptr(),
                        stride: x.stride,
                        len: x.c,
                    })
                    .collect();
                // SAFETY: as in `dense`'s direct case, per part.
                unsafe { self.product(&segs, rows, dst) };
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

/// `dst (+)= lhs · rhs` for row-major matrices given as (pointer, row stride): dst is
/// `rows × n`, lhs `rows × k`, rhs `k × n`; `accumulate` adds to dst instead of overwriting
/// it. Single-threaded: the convolutions call it per tile from their own parallel loops.
///
/// # Safety
/// Each pointer must address its whole matrix with its row stride (unit column stride),
/// and dst must not overlap lhs or rhs.
pub(super) unsafe fn gemm_rows(
    rows: usize,
    n: usize,
    k: usize,
    (dst, dst_rs): (*mut f32, usize),
    (lhs, lhs_rs): (*const f32, usize),
    (rhs, rhs_rs): (*const f32, usize),
    accumulate: bool,
) {
    // SAFETY: the caller's contract, in gemm's terms (column stride 1, dst = 1·dst + 1·lhs·rhs
    // when accumulating; gemm ignores alpha when it does not read dst).
    unsafe {
        gemm(
            rows,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs,
            1,
            lhs_rs as isize,
            rhs,
            1,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::pseudo;
    use super::*;

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

    /// The convolution as the portable path runs it, and packed for each kernel this CPU
    /// has (f32; bf16 operands, with the tolerance their 8-bit mantissa needs), compacted
    /// as the executor keeps them; each with its tolerance against a naive f32 loop.
    fn variants(conv: &Conv) -> Vec<(Conv, f32)> {
        let isa = Isa::detect();
        let packed = |bf16| {
            let mut c = conv.clone().packed(isa, bf16);
            c.compact();
            c
        };
        let mut v = vec![(conv.clone(), 1e-5)];
        if isa != Isa::Portable {
            v.push((packed(false), 1e-5));
        }
        if isa == Isa::Avx512Bf16 {
            v.push((packed(true), 0.03));
        }
        v
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
            (16, 12, 3, 1, false, true),
            (32, 24, 3, 1, false, true),
            (40, 7, 3, 1, false, false),
        ] {
            // Winograd clips its edge tiles: sizes that are no multiple of the tile, odd
            // ones, and one tile row; both tile sizes (F(4×4) and F(2×2)).
            for ((h, w), tile) in [(13, 11), (12, 10), (4, 130), (3, 5)]
                .into_iter()
                .flat_map(|hw| [(hw, 4), (hw, 2)])
            {
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
                    mm: None,
                    wino_mm: None,
                }
                .with_winograd_tile(tile);
                let want = naive_conv(&x, &conv);
                // The portable path, then the packed kernels this CPU runs (f32, bf16).
                for (conv, tol) in variants(&conv) {
                    // F(4×4)'s transform coefficients (up to 8) cost a few ulp in f32.
                    let tol = if conv.winograd_positions() == 36 {
                        tol.max(5e-5)
                    } else {
                        tol
                    };
                    let got = conv.forward(x.view());
                    assert_eq!((got.h, got.w, got.c), (want.h, want.w, want.c));
                    for (a, b) in got.data.iter().zip(&want.data) {
                        assert!(
                            (a - b).abs() < tol * b.abs().max(1.0),
                            "{cin}->{cout} k{k} s{stride} {h}x{w} F({tile}) tol {tol}: {a} vs {b}"
                        );
                    }
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
            mm: None,
            wino_mm: None,
        };
        let want = naive_conv(&x.channels(6, 4).to_act(), &conv);
        for (c, tol) in variants(&conv) {
            let got = c.forward(x.channels(6, 4));
            for (a, b) in got.data.iter().zip(&want.data) {
                assert!((a - b).abs() < tol);
            }
        }
        // A 3×3 conv on a channel slice takes im2col's pixel-by-pixel path.
        let conv3 = Conv {
            k: 3,
            pad: 1,
            w: pseudo(9 * 12, 4),
            ..conv
        };
        let want = naive_conv(&x.channels(2, 4).to_act(), &conv3);
        for (c, tol) in variants(&conv3) {
            let got = c.forward(x.channels(2, 4));
            for (a, b) in got.data.iter().zip(&want.data) {
                assert!((a - b).abs() < tol);
            }
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
            mm: None,
            wino_mm: None,
        };
        let parts = [a.view(), b.channels(8, 4)];
        let want = naive_conv(&concat(&parts), &conv);
        for (c, tol) in variants(&conv) {
            let got = c.forward_concat(&parts);
            for (x, y) in got.data.iter().zip(&want.data) {
                assert!((x - y).abs() < tol, "{x} vs {y}");
            }
        }
    }
}
