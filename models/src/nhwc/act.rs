//! Activations: NHWC buffers from the pool, channel views of them, and the element-wise
//! operations that are not convolutions.

use std::sync::Arc;

use rayon::prelude::*;

use super::pool::{buffer, recycle};

/// Activations of a batch: `[n, h, w, c]`, contiguous. The buffer comes from and goes back
/// to the [pool](super::pool).
#[derive(Debug)]
pub(super) struct Act {
    pub(super) n: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) c: usize,
    pub(super) data: Vec<f32>,
}

impl Drop for Act {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.data));
    }
}

/// Some channels of an [`Act`]: pixel `p` holds `data[p * stride + off..][..c]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct View<'a> {
    pub(super) data: &'a [f32],
    pub(super) n: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) c: usize,
    pub(super) stride: usize,
    pub(super) off: usize,
}

impl Act {
    /// An activation whose every value the caller will write.
    pub(super) fn new(n: usize, h: usize, w: usize, c: usize) -> Act {
        Act {
            n,
            h,
            w,
            c,
            data: buffer(n * h * w * c),
        }
    }

    pub(super) fn view(&self) -> View<'_> {
        self.channels(0, self.c)
    }

    pub(super) fn channels(&self, off: usize, c: usize) -> View<'_> {
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
    pub(super) fn pixel(&self, p: usize) -> &[f32] {
        &self.data[p * self.stride + self.off..][..self.c]
    }

    pub(super) fn to_act(self) -> Act {
        concat(&[self])
    }
}

/// Channel concatenation.
pub(super) fn concat(parts: &[View<'_>]) -> Act {
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
pub(super) fn add(mut a: Act, b: View<'_>) -> Act {
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

/// Max pooling, `k`×`k`, stride 1, padding `k / 2` (SPPF): rows, then columns.
pub(super) fn max_pool(x: &Act, k: usize) -> Act {
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
pub(super) fn upsample(x: &Act, f: usize) -> Act {
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

/// An executor activation: channels `off..off + c` of a shared [`Act`], so that a channel
/// slice (C2f's split, C2PSA's halves) is a view, not a copy.
#[derive(Debug, Clone)]
pub struct Feature {
    act: Arc<Act>,
    off: usize,
    c: usize,
}

impl Feature {
    pub(super) fn whole(act: Act) -> Feature {
        let c = act.c;
        Feature {
            act: Arc::new(act),
            off: 0,
            c,
        }
    }

    pub(super) fn view(&self) -> View<'_> {
        self.act.channels(self.off, self.c)
    }

    pub(super) fn slice(&self, off: usize, c: usize) -> Feature {
        debug_assert!(off + c <= self.c);
        Feature {
            act: self.act.clone(),
            off: self.off + off,
            c,
        }
    }

    /// The channels as a contiguous activation: shared when they are the whole buffer.
    pub(super) fn contiguous(&self) -> Arc<Act> {
        if self.off == 0 && self.c == self.act.c {
            self.act.clone()
        } else {
            Arc::new(self.view().to_act())
        }
    }

    /// `self + b`, in place when nothing else holds this buffer.
    pub(super) fn add(self, b: &Feature) -> Feature {
        let whole = self.off == 0 && self.c == self.act.c;
        let base = if whole {
            Arc::try_unwrap(self.act).unwrap_or_else(|shared| shared.view().to_act())
        } else {
            self.view().to_act()
        };
        Feature::whole(add(base, b.view()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::pseudo;
    use super::*;

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
