//! Element-wise math, compiled once per instruction set and chosen at run time (the crate
//! is built for baseline x86-64, where these loops would run 4 floats wide): the
//! `multiversion!` dispatch, e^x, SiLU, sigmoid, bias + activation.

/// e^x for f32 in straight-line, vectorisable code (Cephes' expf: 2^n · p(r), ~1 ulp).
/// Rounding and 2^n go through the bit pattern of `t = x·log2(e) + 1.5·2^23` (its low
/// mantissa bits hold n), so there is no float→int conversion to keep LLVM from vectorising.
#[inline(always)]
pub(super) fn exp_approx(x: f32) -> f32 {
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
pub(super) fn silu(x: f32) -> f32 {
    x / (1.0 + exp_approx(-x))
}

#[inline(always)]
pub(super) fn sigmoid(x: f32) -> f32 {
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
        pub(super) fn $name($($arg: $ty),*) {
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
}
