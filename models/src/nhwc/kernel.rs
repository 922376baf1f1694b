//! The convolutions' matrix-product microkernels for AVX-512: weights packed once, at load,
//! into column panels, and the bias + SiLU epilogue applied to the accumulators in registers
//! before the one store of each output tile (the `gemm` crate re-packs the weights on every
//! call and leaves the epilogue to a second pass over memory). Two flavours:
//! - f32 (AVX-512F): `vfmadd231ps` with the left operand broadcast from memory;
//! - bf16 operands, f32 accumulation (AVX512_BF16): `vdpbf16ps` multiplies pairs of bf16
//!   values along k and adds both products to an f32 lane, 32 multiplies per instruction.
//!
//! Chosen at run time ([`Isa::detect`]); where the CPU has no AVX-512 (and on other
//! architectures) the convolutions keep their row-major weights and the `gemm` crate.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Columns per weight panel (two 16-float vectors); a last panel of ≤ 16 columns is 16 wide.
pub(super) const NR: usize = 32;
/// Rows per microkernel call: 14 × 2 accumulators + 2 weight vectors of the 32 registers.
const MR: usize = 14;

/// The matrix kernels this CPU can run, detected once per network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Isa {
    /// No AVX-512 (or not x86-64): row-major weights and the `gemm` crate.
    Portable,
    /// AVX-512F: the packed f32 microkernel.
    Avx512,
    /// AVX-512F + AVX512_BF16: bf16 operands also possible.
    Avx512Bf16,
}

impl Isa {
    pub(super) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                if std::arch::is_x86_feature_detected!("avx512bf16") {
                    return Isa::Avx512Bf16;
                }
                return Isa::Avx512;
            }
        }
        Isa::Portable
    }
}

/// Weights `[k][n]` packed into column panels: panel `p` holds columns `p·NR..` for every
/// k, `width` (32, or 16 for a narrow last panel) values per k, zero beyond `n`.
#[derive(Debug, Clone)]
pub(super) struct Packed {
    pub(super) k: usize,
    pub(super) n: usize,
    panels: Panels,
}

#[derive(Debug, Clone)]
enum Panels {
    F32(Vec<f32>),
    /// bf16 bit patterns, k in pairs: element (kp, j, e) of a panel at `(kp·width + j)·2 + e`
    /// is row `2·kp + e` (zero past `k`), as `vdpbf16ps` reads them.
    Bf16(Vec<u16>),
}

fn panel_width(n: usize, p: usize) -> usize {
    if n - p * NR <= 16 { 16 } else { NR }
}

/// f32 → bf16, round to nearest even (what `vcvtneps2bf16` does for finite values).
pub(super) fn bf16_bits(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}

impl Packed {
    /// Packs `[k][n]` row-major weights (row stride `rs`); `bf16` for the bf16 kernel.
    pub(super) fn new(w: &[f32], k: usize, n: usize, rs: usize, bf16: bool) -> Packed {
        let panels = n.div_ceil(NR);
        let at = |kk: usize, col: usize| {
            if kk < k && col < n {
                w[kk * rs + col]
            } else {
                0.0
            }
        };
        let panels = if bf16 {
            let k2 = k.div_ceil(2);
            let mut out = Vec::with_capacity(panels * k2 * NR * 2);
            for p in 0..panels {
                let width = panel_width(n, p);
                for kp in 0..k2 {
                    for j in 0..width {
                        for e in 0..2 {
                            out.push(bf16_bits(at(2 * kp + e, p * NR + j)));
                        }
                    }
                }
            }
            Panels::Bf16(out)
        } else {
            let mut out = Vec::with_capacity(panels * k * NR);
            for p in 0..panels {
                let width = panel_width(n, p);
                for kk in 0..k {
                    for j in 0..width {
                        out.push(at(kk, p * NR + j));
                    }
                }
            }
            Panels::F32(out)
        };
        Packed { k, n, panels }
    }

    pub(super) fn is_bf16(&self) -> bool {
        matches!(self.panels, Panels::Bf16(_))
    }
}

/// A run of the left operand's columns: `len` values per row from `ptr`, rows `stride`
/// apart (the parts of a concatenation are several segments of one k range).
#[derive(Debug, Clone, Copy)]
pub(super) struct Seg {
    pub(super) ptr: *const f32,
    pub(super) stride: usize,
    pub(super) len: usize,
}

/// What happens to the accumulators before they are stored.
#[derive(Debug, Clone, Copy)]
pub(super) enum Epilogue<'a> {
    /// Stored as they are (Winograd's products, transformed afterwards).
    None,
    /// `+ bias`, then SiLU if `act`.
    Bias { bias: &'a [f32], act: bool },
}

/// `dst = epilogue(A · W)` with f32 operands: A is `rows × packed.k` given as segments,
/// dst `rows × packed.n` with row stride `dst_rs`.
///
/// # Safety
/// The CPU has AVX-512F; every segment addresses `rows` rows of its `len` values; the
/// segments' lengths sum to `packed.k`; dst addresses `rows × n` with row stride `dst_rs`
/// and overlaps no operand; `packed` holds f32 panels.
#[cfg(target_arch = "x86_64")]
pub(super) unsafe fn matmul_f32(
    packed: &Packed,
    segs: &[Seg],
    rows: usize,
    dst: *mut f32,
    dst_rs: usize,
    epi: Epilogue<'_>,
) {
    let Panels::F32(w) = &packed.panels else {
        unreachable!("f32 product of bf16 panels")
    };
    debug_assert_eq!(segs.iter().map(|s| s.len).sum::<usize>(), packed.k);
    let (k, n) = (packed.k, packed.n);
    for p in 0..n.div_ceil(NR) {
        let width = panel_width(n, p);
        let cols = (n - p * NR).min(NR);
        let b = w[p * k * NR..].as_ptr();
        let bias = match epi {
            Epilogue::None => None,
            Epilogue::Bias { bias, act } => Some((bias[p * NR..].as_ptr(), act)),
        };
        let mut r0 = 0;
        while r0 < rows {
            let m = (rows - r0).min(MR);
            let mut sub = [Seg {
                ptr: std::ptr::null(),
                stride: 0,
                len: 0,
            }; 8];
            let nseg = segs.len();
            // SAFETY: row r0 of each segment is inside it (r0 < rows); the caller's contract
            // covers the rest. Concatenations have at most a handful of parts.
            let segs_here: Vec<Seg>;
            let segs_r: &[Seg] = if nseg <= sub.len() {
                for (d, s) in sub.iter_mut().zip(segs) {
                    *d = Seg {
                        ptr: unsafe { s.ptr.add(r0 * s.stride) },
                        ..*s
                    };
                }
                &sub[..nseg]
            } else {
                segs_here = segs
                    .iter()
                    .map(|s| Seg {
                        ptr: unsafe { s.ptr.add(r0 * s.stride) },
                        ..*s
                    })
                    .collect();
                &segs_here
            };
            let out = unsafe { dst.add(r0 * dst_rs + p * NR) };
            macro_rules! call {
                ($(($m:literal, $f1:ident, $f2:ident))*) => {
                    match (m, width) {
                        $(
                            ($m, 16) => unsafe { $f1(segs_r, b, out, dst_rs, cols, bias) },
                            ($m, _) => unsafe { $f2(segs_r, b, out, dst_rs, cols, bias) },
                        )*
                        _ => unreachable!(),
                    }
                };
            }
            call!((1, tile_f32_1_1, tile_f32_1_2)(
                2,
                tile_f32_2_1,
                tile_f32_2_2
            )(3, tile_f32_3_1, tile_f32_3_2)(
                4, tile_f32_4_1, tile_f32_4_2
            )(5, tile_f32_5_1, tile_f32_5_2)(
                6, tile_f32_6_1, tile_f32_6_2
            )(7, tile_f32_7_1, tile_f32_7_2)(
                8, tile_f32_8_1, tile_f32_8_2
            )(9, tile_f32_9_1, tile_f32_9_2)(
                10, tile_f32_10_1, tile_f32_10_2
            )(11, tile_f32_11_1, tile_f32_11_2)(
                12,
                tile_f32_12_1,
                tile_f32_12_2
            )(13, tile_f32_13_1, tile_f32_13_2)(
                14,
                tile_f32_14_1,
                tile_f32_14_2
            ));
            r0 += m;
        }
    }
}

/// `dst = epilogue(A · W)` with bf16 operands: A is `rows` rows of `2·⌈k/2⌉` bf16 values
/// (zero-padded), row stride `a_rs` (in values).
///
/// # Safety
/// The CPU has AVX-512F and AVX512_BF16; a addresses `rows × 2⌈k/2⌉` values with row
/// stride `a_rs`; dst as for [`matmul_f32`]; `packed` holds bf16 panels.
#[cfg(target_arch = "x86_64")]
pub(super) unsafe fn matmul_bf16(
    packed: &Packed,
    a: *const u16,
    a_rs: usize,
    rows: usize,
    dst: *mut f32,
    dst_rs: usize,
    epi: Epilogue<'_>,
) {
    let Panels::Bf16(w) = &packed.panels else {
        unreachable!("bf16 product of f32 panels")
    };
    let (k2, n) = (packed.k.div_ceil(2), packed.n);
    for p in 0..n.div_ceil(NR) {
        let width = panel_width(n, p);
        let cols = (n - p * NR).min(NR);
        let b = w[p * k2 * NR * 2..].as_ptr();
        let bias = match epi {
            Epilogue::None => None,
            Epilogue::Bias { bias, act } => Some((bias[p * NR..].as_ptr(), act)),
        };
        let mut r0 = 0;
        while r0 < rows {
            let m = (rows - r0).min(MR);
            // SAFETY: the caller's contract; r0 < rows.
            let (ar, out) = unsafe { (a.add(r0 * a_rs), dst.add(r0 * dst_rs + p * NR)) };
            macro_rules! call {
                ($(($m:literal, $h1:ident, $h2:ident))*) => {
                    match (m, width) {
                        $(
                            ($m, 16) => unsafe { $h1(ar, a_rs, k2, b, out, dst_rs, cols, bias) },
                            ($m, _) => unsafe { $h2(ar, a_rs, k2, b, out, dst_rs, cols, bias) },
                        )*
                        _ => unreachable!(),
                    }
                };
            }
            call!((1, tile_bf16_1_1, tile_bf16_1_2)(
                2,
                tile_bf16_2_1,
                tile_bf16_2_2
            )(3, tile_bf16_3_1, tile_bf16_3_2)(
                4,
                tile_bf16_4_1,
                tile_bf16_4_2
            )(5, tile_bf16_5_1, tile_bf16_5_2)(
                6,
                tile_bf16_6_1,
                tile_bf16_6_2
            )(7, tile_bf16_7_1, tile_bf16_7_2)(
                8,
                tile_bf16_8_1,
                tile_bf16_8_2
            )(9, tile_bf16_9_1, tile_bf16_9_2)(
                10,
                tile_bf16_10_1,
                tile_bf16_10_2
            )(11, tile_bf16_11_1, tile_bf16_11_2)(
                12,
                tile_bf16_12_1,
                tile_bf16_12_2
            )(13, tile_bf16_13_1, tile_bf16_13_2)(
                14,
                tile_bf16_14_1,
                tile_bf16_14_2
            ));
            r0 += m;
        }
    }
}

/// The microkernels for one tile of M rows × 16 or 32 columns, one per M (1..=14): each
/// accumulator a named local, so that all 2M stay in registers (an array of them, indexed
/// in loops, was kept in memory by LLVM: 2.4× slower).
macro_rules! tiles {
    ($m:literal, $f1:ident, $f2:ident, $h1:ident, $h2:ident, $(($r:literal, $c0:ident, $c1:ident))*) => {
        /// f32, 16 columns.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        unsafe fn $f1(segs: &[Seg], b: *const f32, dst: *mut f32, dst_rs: usize, cols: usize, bias: Option<(*const f32, bool)>) {
            // SAFETY (whole body): the caller's contract; bp walks the panel, k × 16 floats.
            unsafe {
                $( let mut $c0 = _mm512_setzero_ps(); )*
                let mut bp = b;
                for s in segs {
                    let (mut a, rs) = (s.ptr, s.stride);
                    for _ in 0..s.len {
                        let b0 = _mm512_loadu_ps(bp);
                        $(
                            let av = _mm512_set1_ps(*a.add($r * rs));
                            $c0 = _mm512_fmadd_ps(av, b0, $c0);
                        )*
                        a = a.add(1);
                        bp = bp.add(16);
                    }
                }
                let (b0, _, act) = bias_vectors(bias, cols);
                $( store_row(dst.add($r * dst_rs), $c0, b0, act, cols); )*
            }
        }

        /// f32, 32 columns.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        unsafe fn $f2(segs: &[Seg], b: *const f32, dst: *mut f32, dst_rs: usize, cols: usize, bias: Option<(*const f32, bool)>) {
            // SAFETY (whole body): the caller's contract; bp walks the panel, k × 32 floats.
            unsafe {
                $( let mut $c0 = _mm512_setzero_ps(); let mut $c1 = _mm512_setzero_ps(); )*
                let mut bp = b;
                for s in segs {
                    let (mut a, rs) = (s.ptr, s.stride);
                    for _ in 0..s.len {
                        let b0 = _mm512_loadu_ps(bp);
                        let b1 = _mm512_loadu_ps(bp.add(16));
                        $(
                            let av = _mm512_set1_ps(*a.add($r * rs));
                            $c0 = _mm512_fmadd_ps(av, b0, $c0);
                            $c1 = _mm512_fmadd_ps(av, b1, $c1);
                        )*
                        a = a.add(1);
                        bp = bp.add(32);
                    }
                }
                let (b0, b1, act) = bias_vectors(bias, cols);
                $(
                    store_row(dst.add($r * dst_rs), $c0, b0, act, cols);
                    store_row(dst.add($r * dst_rs + 16), $c1, b1, act, cols.saturating_sub(16));
                )*
            }
        }

        /// bf16 operands, 16 columns.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512bf16")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $h1(a: *const u16, a_rs: usize, k2: usize, b: *const u16, dst: *mut f32, dst_rs: usize, cols: usize, bias: Option<(*const f32, bool)>) {
            // SAFETY (whole body): the caller's contract; bp walks the panel, k2 × 32
            // values; ap the pairs of row 0, each row's a_rs values further.
            unsafe {
                $( let mut $c0 = _mm512_setzero_ps(); )*
                let (mut ap, mut bp) = (a, b);
                for _ in 0..k2 {
                    let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp as *const __m512i));
                    $(
                        let av: __m512bh = std::mem::transmute(_mm512_set1_epi32((ap.add($r * a_rs) as *const i32).read_unaligned()));
                        $c0 = _mm512_dpbf16_ps($c0, av, b0);
                    )*
                    ap = ap.add(2);
                    bp = bp.add(32);
                }
                let (b0, _, act) = bias_vectors(bias, cols);
                $( store_row(dst.add($r * dst_rs), $c0, b0, act, cols); )*
            }
        }

        /// bf16 operands, 32 columns.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512bf16")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $h2(a: *const u16, a_rs: usize, k2: usize, b: *const u16, dst: *mut f32, dst_rs: usize, cols: usize, bias: Option<(*const f32, bool)>) {
            // SAFETY (whole body): as for the 16-column one, k2 × 64 values of panel.
            unsafe {
                $( let mut $c0 = _mm512_setzero_ps(); let mut $c1 = _mm512_setzero_ps(); )*
                let (mut ap, mut bp) = (a, b);
                for _ in 0..k2 {
                    let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp as *const __m512i));
                    let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(32) as *const __m512i));
                    $(
                        let av: __m512bh = std::mem::transmute(_mm512_set1_epi32((ap.add($r * a_rs) as *const i32).read_unaligned()));
                        $c0 = _mm512_dpbf16_ps($c0, av, b0);
                        $c1 = _mm512_dpbf16_ps($c1, av, b1);
                    )*
                    ap = ap.add(2);
                    bp = bp.add(64);
                }
                let (b0, b1, act) = bias_vectors(bias, cols);
                $(
                    store_row(dst.add($r * dst_rs), $c0, b0, act, cols);
                    store_row(dst.add($r * dst_rs + 16), $c1, b1, act, cols.saturating_sub(16));
                )*
            }
        }
    };
}

tiles!(
    1,
    tile_f32_1_1,
    tile_f32_1_2,
    tile_bf16_1_1,
    tile_bf16_1_2,
    (0, c0_0, c0_1)
);
tiles!(
    2,
    tile_f32_2_1,
    tile_f32_2_2,
    tile_bf16_2_1,
    tile_bf16_2_2,
    (0, c0_0, c0_1)(1, c1_0, c1_1)
);
tiles!(
    3,
    tile_f32_3_1,
    tile_f32_3_2,
    tile_bf16_3_1,
    tile_bf16_3_2,
    (0, c0_0, c0_1)(1, c1_0, c1_1)(2, c2_0, c2_1)
);
tiles!(
    4,
    tile_f32_4_1,
    tile_f32_4_2,
    tile_bf16_4_1,
    tile_bf16_4_2,
    (0, c0_0, c0_1)(1, c1_0, c1_1)(2, c2_0, c2_1)(3, c3_0, c3_1)
);
tiles!(
    5,
    tile_f32_5_1,
    tile_f32_5_2,
    tile_bf16_5_1,
    tile_bf16_5_2,
    (0, c0_0, c0_1)(1, c1_0, c1_1)(2, c2_0, c2_1)(3, c3_0, c3_1)(4, c4_0, c4_1)
);
tiles!(
    6,
    tile_f32_6_1,
    tile_f32_6_2,
    tile_bf16_6_1,
    tile_bf16_6_2,
    (0, c0_0, c0_1)(1, c1_0, c1_1)(2, c2_0, c2_1)(3, c3_0, c3_1)(4, c4_0, c4_1)(5, c5_0, c5_1)
);
tiles!(
    7,
    tile_f32_7_1,
    tile_f32_7_2,
    tile_bf16_7_1,
    tile_bf16_7_2,
    (0, c0_0, c0_1)(1, c1_0, c1_1)(2, c2_0, c2_1)(3, c3_0, c3_1)(4, c4_0, c4_1)(5, c5_0, c5_1)(
        6, c6_0, c6_1
    )
);
tiles!(
    8,
    tile_f32_8_1,
    tile_f32_8_2,
    tile_bf16_8_1,
    tile_bf16_8_2,
    (0, c0_0, c0_1)(1, c1_0, c1_1)(2, c2_0, c2_1)(3, c3_0, c3_1)(4, c4_0, c4_1)(5, c5_0, c5_1)(
        6, c6_0, c6_1
    )(7, c7_0, c7_1)
);
tiles!(
    9,
    tile_f32_9_1,
    tile_f32_9_2,
    tile_bf16_9_1,
    tile_bf16_9_2,
    (0, c0_0, c0_1)(1, c1_0, c1_1)(2, c2_0, c2_1)(3, c3_0, c3_1)(4, c4_0, c4_1)(5, c5_0, c5_1)(
        6, c6_0, c6_1
    )(7, c7_0, c7_1)(8, c8_0, c8_1)
);
tiles!(
    10,
    tile_f32_10_1,
    tile_f32_10_2,
    tile_bf16_10_1,
    tile_bf16_10_2,
    (0, c0_0, c0_1)(1, c1_0, c1_1)(2, c2_0, c2_1)(3, c3_0, c3_1)(4, c4_0, c4_1)(5, c5_0, c5_1)(
        6, c6_0, c6_1
    )(7, c7_0, c7_1)(8, c8_0, c8_1)(9, c9_0, c9_1)
);
tiles!(
    11,
    tile_f32_11_1,
    tile_f32_11_2,
    tile_bf16_11_1,
    tile_bf16_11_2,
    (0, c0_0, c0_1)(1, c1_0, c1_1)(2, c2_0, c2_1)(3, c3_0, c3_1)(4, c4_0, c4_1)(5, c5_0, c5_1)(
        6, c6_0, c6_1
    )(7, c7_0, c7_1)(8, c8_0, c8_1)(9, c9_0, c9_1)(10, c10_0, c10_1)
);
tiles!(
    12,
    tile_f32_12_1,
    tile_f32_12_2,
    tile_bf16_12_1,
    tile_bf16_12_2,
    (0, c0_0, c0_1)(1, c1_0, c1_1)(2, c2_0, c2_1)(3, c3_0, c3_1)(4, c4_0, c4_1)(5, c5_0, c5_1)(
        6, c6_0, c6_1
    )(7, c7_0, c7_1)(8, c8_0, c8_1)(9, c9_0, c9_1)(10, c10_0, c10_1)(11, c11_0, c11_1)
);
tiles!(
    13,
    tile_f32_13_1,
    tile_f32_13_2,
    tile_bf16_13_1,
    tile_bf16_13_2,
    (0, c0_0, c0_1)(1, c1_0, c1_1)(2, c2_0, c2_1)(3, c3_0, c3_1)(4, c4_0, c4_1)(5, c5_0, c5_1)(
        6, c6_0, c6_1
    )(7, c7_0, c7_1)(8, c8_0, c8_1)(9, c9_0, c9_1)(10, c10_0, c10_1)(11, c11_0, c11_1)(
        12, c12_0, c12_1
    )
);
tiles!(
    14,
    tile_f32_14_1,
    tile_f32_14_2,
    tile_bf16_14_1,
    tile_bf16_14_2,
    (0, c0_0, c0_1)(1, c1_0, c1_1)(2, c2_0, c2_1)(3, c3_0, c3_1)(4, c4_0, c4_1)(5, c5_0, c5_1)(
        6, c6_0, c6_1
    )(7, c7_0, c7_1)(8, c8_0, c8_1)(9, c9_0, c9_1)(10, c10_0, c10_1)(11, c11_0, c11_1)(
        12, c12_0, c12_1
    )(13, c13_0, c13_1)
);

/// The bias for a tile's two column vectors (zero past `cols`, or without a bias), and
/// whether SiLU follows.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn bias_vectors(bias: Option<(*const f32, bool)>, cols: usize) -> (__m512, __m512, bool) {
    // SAFETY: inlined into the target_feature kernels; the bias holds `cols` values.
    unsafe {
        match bias {
            None => (_mm512_setzero_ps(), _mm512_setzero_ps(), false),
            Some((b, act)) => (
                _mm512_maskz_loadu_ps(lanes(cols), b),
                _mm512_maskz_loadu_ps(lanes(cols.saturating_sub(16)), b.add(16)),
                act,
            ),
        }
    }
}

/// The mask of the first `min(cols, 16)` lanes.
#[inline(always)]
fn lanes(cols: usize) -> u16 {
    ((1u32 << cols.min(16)) - 1) as u16
}

/// The epilogue of one accumulator vector in registers (+ bias, SiLU), then its store
/// (masked to `cols` lanes when fewer than 16).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn store_row(out: *mut f32, acc: __m512, bias: __m512, act: bool, cols: usize) {
    // SAFETY: inlined into the target_feature kernels; out holds min(cols, 16) floats.
    unsafe {
        let mut y = _mm512_add_ps(acc, bias);
        if act {
            y = silu(y);
        }
        if cols >= 16 {
            _mm512_storeu_ps(out, y);
        } else {
            _mm512_mask_storeu_ps(out, lanes(cols), y);
        }
    }
}

/// x·σ(x) = x / (1 + e^-x) on 16 lanes: [`super::simd::exp_approx`]'s polynomial with
/// `vscalefps` for 2^n, and the division as a reciprocal estimate refined by one Newton
/// step (relative error ~2⁻²³, against ~12 cycles of `vdivps` per vector).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn silu(x: __m512) -> __m512 {
    // SAFETY: inlined into the target_feature kernels.
    unsafe {
        let e = exp(_mm512_sub_ps(_mm512_setzero_ps(), x));
        let d = _mm512_add_ps(_mm512_set1_ps(1.0), e);
        let r = _mm512_rcp14_ps(d);
        // r' = r·(2 - d·r)
        let r = _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0)));
        _mm512_mul_ps(x, r)
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn exp(x: __m512) -> __m512 {
    // SAFETY: inlined into the target_feature kernels.
    unsafe {
        let x = _mm512_min_ps(
            _mm512_max_ps(x, _mm512_set1_ps(-87.0)),
            _mm512_set1_ps(88.0),
        );
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
        let r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.987_569_1e-4);
        for c in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            5e-1,
        ] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let e = _mm512_fmadd_ps(
            p,
            _mm512_mul_ps(r, r),
            _mm512_add_ps(r, _mm512_set1_ps(1.0)),
        );
        _mm512_scalef_ps(e, n)
    }
}

/// Rows of f32 segments → rows of bf16 pairs (`2⌈k/2⌉` values, the odd tail zero), the
/// left operand of [`matmul_bf16`].
///
/// # Safety
/// The CPU has AVX-512F and AVX512_BF16; the segments address `rows` rows; dst holds
/// `rows × dst_rs` values with `dst_rs ≥ 2⌈k/2⌉`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn to_bf16_rows(segs: &[Seg], rows: usize, dst: &mut [u16], dst_rs: usize) {
    let k: usize = segs.iter().map(|s| s.len).sum();
    for r in 0..rows {
        let row = &mut dst[r * dst_rs..r * dst_rs + k.div_ceil(2) * 2];
        let mut o = 0;
        for s in segs {
            // SAFETY: the caller's contract.
            let src = unsafe { std::slice::from_raw_parts(s.ptr.add(r * s.stride), s.len) };
            let mut i = 0;
            while i + 16 <= s.len {
                // SAFETY: 16 values in src and in row (o + 16 ≤ k).
                unsafe {
                    let h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src[i..].as_ptr()));
                    _mm256_storeu_si256(
                        row[o..o + 16].as_mut_ptr() as *mut __m256i,
                        std::mem::transmute::<__m256bh, __m256i>(h),
                    );
                }
                i += 16;
                o += 16;
            }
            for &x in &src[i..] {
                row[o] = bf16_bits(x);
                o += 1;
            }
        }
        if o < row.len() {
            row[o] = 0;
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::pseudo;
    use super::*;

    fn naive(
        a: &[f32],
        w: &[f32],
        rows: usize,
        k: usize,
        n: usize,
        bias: &[f32],
        act: bool,
    ) -> Vec<f32> {
        let mut out = vec![0f32; rows * n];
        for r in 0..rows {
            for c in 0..n {
                let mut s = bias[c];
                for i in 0..k {
                    s += a[r * k + i] * w[i * n + c];
                }
                out[r * n + c] = if act { s / (1.0 + (-s).exp()) } else { s };
            }
        }
        out
    }

    #[test]
    fn packed_products_match_a_naive_loop() {
        if Isa::detect() == Isa::Portable {
            eprintln!("no AVX-512 on this CPU: the packed kernels are not used here");
            return;
        }
        for &(rows, k, n) in &[
            (1, 3, 5),
            (15, 27, 16),
            (29, 64, 80),
            (14, 33, 48),
            (3, 7, 33),
        ] {
            let a = pseudo(rows * k, 1);
            let w = pseudo(k * n, 2);
            let bias = pseudo(n, 3);
            for act in [false, true] {
                let want = naive(&a, &w, rows, k, n, &bias, act);
                // Two segments (a concatenation) of the same rows.
                let cut = k / 2;
                let segs = [
                    Seg {
                        ptr: a.as_ptr(),
                        stride: k,
                        len: cut,
                    },
                    Seg {
                        ptr: a[cut..].as_ptr(),
                        stride: k,
                        len: k - cut,
                    },
                ];
                let pf = Packed::new(&w, k, n, n, false);
                let mut got = vec![f32::NAN; rows * n];
                // SAFETY: AVX-512 checked; shapes as documented.
                unsafe {
                    matmul_f32(
                        &pf,
                        &segs,
                        rows,
                        got.as_mut_ptr(),
                        n,
                        Epilogue::Bias { bias: &bias, act },
                    );
                }
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-5, "f32 {rows}x{k}x{n}: {g} vs {w}");
                }
                if Isa::detect() != Isa::Avx512Bf16 {
                    continue;
                }
                let pb = Packed::new(&w, k, n, n, true);
                let rs = k.div_ceil(2) * 2 + 2;
                let mut ah = vec![0xffffu16; rows * rs];
                let mut got = vec![f32::NAN; rows * n];
                // SAFETY: AVX512_BF16 checked; shapes as documented.
                unsafe {
                    to_bf16_rows(&segs, rows, &mut ah, rs);
                    matmul_bf16(
                        &pb,
                        ah.as_ptr(),
                        rs,
                        rows,
                        got.as_mut_ptr(),
                        n,
                        Epilogue::Bias { bias: &bias, act },
                    );
                }
                // bf16 operands: relative error ~2⁻⁸ per product, values here ~0.25 each.
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() < 0.02 * (k as f32).sqrt(),
                        "bf16 {rows}x{k}x{n}: {g} vs {w}"
                    );
                }
            }
        }
    }
}
