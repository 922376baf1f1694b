//! Winograd F(2×2, 3×3) for 3×3 stride-1 convolutions with enough input channels: the
//! weight transform (once, at load), the input and output tile transforms, and the 16
//! matrix products per tile row.

use rayon::prelude::*;

use super::act::{Act, View};
#[cfg(target_arch = "x86_64")]
use super::conv::COL_BF16;
use super::conv::{Conv, gemm_rows};
#[cfg(target_arch = "x86_64")]
use super::kernel::{Epilogue, Seg, matmul_bf16, matmul_f32, to_bf16_rows};
use super::simd::silu;

/// Winograd needs enough input channels for its 16 matrix products to run efficiently.
const WINOGRAD_MIN_CIN: usize = 32;

thread_local! {
    /// Each worker thread's Winograd buffers (transformed inputs, products).
    static WINO: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

multiversion!(
    /// V = Bᵀ·d·B for one 4×4 tile `d` (row-major pixels), all channels; position ξ's cin
    /// values go to `v[ξ · stride..]`.
    fn winograd_input(d: &[&[f32]; 16], v: &mut [f32], stride: usize) => winograd_input_generic
);

/// Channels per step of the Winograd transforms: fixed-size arrays that LLVM vectorises.
const LANES: usize = 16;

#[inline(always)]
fn winograd_input_generic(d: &[&[f32]; 16], v: &mut [f32], stride: usize) {
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
                v[k * stride + c0..k * stride + c0 + LANES].copy_from_slice(ok);
            } else {
                v[k * stride + c0..k * stride + c0 + n].copy_from_slice(&ok[..n]);
            }
        }
        c0 += n;
    }
}

multiversion!(
    /// Y = Aᵀ·M·A + bias (then SiLU if `act`) for one tile: position ξ's cout values at
    /// `m[ξ · stride..]`, `y` the four output pixels (top-left, top-right, bottom-left,
    /// bottom-right).
    fn winograd_output(m: &[f32], stride: usize, y: [&mut [f32]; 4], bias: &[f32], act: bool) => winograd_output_generic
);

#[inline(always)]
fn winograd_output_generic(m: &[f32], stride: usize, y: [&mut [f32]; 4], bias: &[f32], act: bool) {
    let [y00, y01, y10, y11] = y;
    let cout = y00.len();
    let mut c0 = 0;
    while c0 < cout {
        let n = LANES.min(cout - c0);
        let mut x = [[0f32; LANES]; 16];
        for (k, xk) in x.iter_mut().enumerate() {
            if n == LANES {
                xk.copy_from_slice(&m[k * stride + c0..k * stride + c0 + LANES]);
            } else {
                xk[..n].copy_from_slice(&m[k * stride + c0..k * stride + c0 + n]);
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
        let mut b = [0f32; LANES];
        b[..n].copy_from_slice(&bias[c0..c0 + n]);
        for l in 0..LANES {
            out[0][l] = s[0][l] + s[1][l] + s[2][l] + b[l];
            out[1][l] = s[1][l] - s[2][l] - s[3][l] + b[l];
            out[2][l] = s[4][l] + s[5][l] + s[6][l] + b[l];
            out[3][l] = s[5][l] - s[6][l] - s[7][l] + b[l];
        }
        if act {
            for o in &mut out {
                for v in o.iter_mut() {
                    *v = silu(*v);
                }
            }
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

impl Conv {
    /// Adds the Winograd weights where this convolution can use them.
    pub(super) fn with_winograd(mut self) -> Conv {
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

    /// Winograd F(2×2, 3×3): per 4×4 input tile (2×2 outputs), V = Bᵀ·d·B; then for each of
    /// the 16 tile positions one matrix product V[ξ] (tiles × cin) · U[ξ] (cin × cout); then
    /// Y = Aᵀ·M·A. 16 products of 2.25× fewer multiplies in all than the 3×3 convolution.
    /// Jobs are runs of tile rows (two output rows each), so each writes contiguous output.
    pub(super) fn winograd(&self, x: View<'_>, out: &mut Act) {
        let (cin, cout, w) = (self.cin, self.cout, out.w);
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
                            winograd_input(&d, &mut v[t * cin..], tiles * cin);
                        }
                    }
                    self.winograd_products(tiles, v, m);
                    for r in 0..rows {
                        for tx in 0..tw {
                            let t = r * tw + tx;
                            let mt = &m[t * cout..];
                            let (top, bottom) = dst[2 * r * w * cout..(2 * r + 2) * w * cout]
                                .split_at_mut(w * cout);
                            let (y00, y01) =
                                top[2 * tx * cout..(2 * tx + 2) * cout].split_at_mut(cout);
                            let (y10, y11) =
                                bottom[2 * tx * cout..(2 * tx + 2) * cout].split_at_mut(cout);
                            winograd_output(
                                mt,
                                tiles * cout,
                                [y00, y01, y10, y11],
                                &self.b,
                                self.act,
                            );
                        }
                    }
                })
            });
    }

    /// The 16 products M[ξ] = V[ξ] · U[ξ] of `tiles` tiles: `v` holds V[ξ] as `tiles × cin`
    /// at `ξ · tiles · cin` (each product's rows contiguous: with the tiles interleaved, its
    /// rows were 16·cin floats apart, 4 KiB for 64 channels, and the 14 rows one microkernel
    /// call reads fell into one L1 set), `m` gets M[ξ] likewise.
    fn winograd_products(&self, tiles: usize, v: &[f32], m: &mut [f32]) {
        let (cin, cout) = (self.cin, self.cout);
        #[cfg(target_arch = "x86_64")]
        if let Some(packed) = &self.wino_mm {
            if packed[0].is_bf16() {
                let cin2 = cin.div_ceil(2) * 2;
                COL_BF16.with_borrow_mut(|h| {
                    if h.len() < tiles * 16 * cin2 {
                        h.resize(tiles * 16 * cin2, 0);
                    }
                    let all = Seg {
                        ptr: v.as_ptr(),
                        stride: cin,
                        len: cin,
                    };
                    // SAFETY: bf16 panels exist only where the CPU has AVX512_BF16; v is
                    // 16 · tiles rows of cin, h as many of cin2; row ξ · tiles + t of v, h
                    // and m is tile t's position ξ.
                    unsafe {
                        to_bf16_rows(&[all], tiles * 16, h, cin2);
                        for (xi, u) in packed.iter().enumerate() {
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
            } else {
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
            }
            return;
        }
        let u = self.wino.as_deref().expect("checked by the caller");
        for xi in 0..16 {
            // SAFETY: m and v hold 16 · tiles rows of cout / cin floats; row t of
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
