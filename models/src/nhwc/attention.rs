//! The core of ultralytics' Attention (C2PSA's PSA blocks) on NHWC activations: per head,
//! softmax(qᵀk · key_dim^-½) weighs v, as two matrix products per image and head.

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use super::act::Act;
use crate::plan::Attention;

/// Returns (attended values, v), both `[n, h, w, heads * head_dim]` with the heads side by
/// side (channel head * head_dim + d), as the reshape to [b, c, h, w] orders them.
pub(super) fn attention_core(qkv: &Act, a: &Attention) -> (Act, Act) {
    let (kd, hd, nh) = (a.key_dim, a.head_dim, a.num_heads);
    let per = 2 * kd + hd;
    let ctot = qkv.c;
    let n = qkv.h * qkv.w;
    let c = nh * hd;
    let scale = (kd as f32).powf(-0.5);
    let mut attended = Act::new(qkv.n, qkv.h, qkv.w, c);
    let mut v = Act::new(qkv.n, qkv.h, qkv.w, c);
    for p in 0..qkv.n * n {
        for h in 0..nh {
            v.data[p * c + h * hd..][..hd]
                .copy_from_slice(&qkv.data[p * ctot + h * per + 2 * kd..][..hd]);
        }
    }
    let mut scores = vec![0f32; n * n];
    for b in 0..qkv.n {
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
    (attended, v)
}
