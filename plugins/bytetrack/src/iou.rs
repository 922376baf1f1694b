//! supervision's `box_iou_batch` / `matching.iou_distance`, with numpy's dtype rules.
//!
//! Track boxes are float32 or float64 arrays depending on where their mean came from, and
//! detection boxes are float32. numpy computes each side's areas in that side's dtype and
//! the rest in the promoted dtype (float32 only if both sides are float32). A cost that
//! lands a hair either side of a threshold decides a match, so we follow the same rules.

use std::ops::{Add, Div, Mul, Sub};

/// A list of `[x1, y1, x2, y2]` boxes as numpy would hold them: values are stored as f64,
/// `f32` says the array is float32 (every value is then exactly an f32).
#[derive(Debug, Clone, Default)]
pub struct Boxes {
    pub xyxy: Vec<[f64; 4]>,
    pub f32: bool,
}

impl Boxes {
    pub fn clear(&mut self) {
        self.xyxy.clear();
        // np.asarray of a list of float32 arrays is float32; any float64 makes it float64.
        self.f32 = true;
    }

    pub fn push(&mut self, b: [f64; 4], is_f32: bool) {
        self.xyxy.push(b);
        self.f32 &= is_f32;
    }

    pub fn len(&self) -> usize {
        self.xyxy.len()
    }
}

trait Real:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    const MAX: Self;
    fn of(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn is_nan(self) -> bool;
}

macro_rules! real {
    ($t:ty) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const MAX: Self = <$t>::MAX;
            fn of(x: f64) -> Self {
                x as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
        }
    };
}
real!(f32);
real!(f64);

fn area<T: Real>(b: &[f64; 4]) -> T {
    (T::of(b[2]) - T::of(b[0])) * (T::of(b[3]) - T::of(b[1]))
}

fn area_in(b: &[f64; 4], is_f32: bool) -> f64 {
    if is_f32 {
        area::<f32>(b).to_f64()
    } else {
        area::<f64>(b)
    }
}

/// `1 - box_iou_batch(a, b)` into `out` (row-major, `a.len() x b.len()`); returns whether
/// the result is a float32 array.
pub fn iou_distance(a: &Boxes, b: &Boxes, out: &mut Vec<f64>) -> bool {
    out.clear();
    let both_f32 = a.f32 && b.f32;
    if a.len() == 0 || b.len() == 0 {
        return true; // np.zeros(..., dtype=np.float32), empty anyway
    }
    out.reserve(a.len() * b.len());
    let area_b: Vec<f64> = b.xyxy.iter().map(|x| area_in(x, b.f32)).collect();
    for ba in &a.xyxy {
        let aa = area_in(ba, a.f32);
        for (bb, &ab) in b.xyxy.iter().zip(&area_b) {
            out.push(if both_f32 {
                cost::<f32>(ba, bb, aa, ab)
            } else {
                cost::<f64>(ba, bb, aa, ab)
            });
        }
    }
    both_f32
}

fn cost<T: Real>(a: &[f64; 4], b: &[f64; 4], area_a: f64, area_b: f64) -> f64 {
    let max = |x: f64, y: f64| T::of(if x >= y { x } else { y });
    let min = |x: f64, y: f64| T::of(if x <= y { x } else { y });
    // np.clip(..., a_min=0): negative overlaps become 0.
    let clip0 = |x: T| if x < T::ZERO { T::ZERO } else { x };
    let w = clip0(min(a[2], b[2]) - max(a[0], b[0]));
    let h = clip0(min(a[3], b[3]) - max(a[1], b[1]));
    let inter = w * h;
    let iou = inter / (T::of(area_a) + T::of(area_b) - inter);
    // np.nan_to_num: NaN -> 0, +-inf -> +-max.
    let iou = if iou.is_nan() {
        T::ZERO
    } else if iou > T::MAX {
        T::MAX
    } else if iou < T::ZERO - T::MAX {
        T::ZERO - T::MAX
    } else {
        iou
    };
    (T::ONE - iou).to_f64()
}

/// `matching.fuse_score`: `1 - (1 - cost) * score` per column (detection).
pub fn fuse_score(cost: &mut [f64], cost_f32: bool, cols: usize, scores: &[f64]) {
    if cols == 0 {
        return;
    }
    for row in cost.chunks_mut(cols) {
        for (c, &s) in row.iter_mut().zip(scores) {
            // `1 - cost` stays in the cost's dtype; the product with float64 scores is float64.
            let sim = if cost_f32 {
                (1.0f32 - *c as f32) as f64
            } else {
                1.0 - *c
            };
            *c = 1.0 - sim * s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxes(v: &[[f64; 4]], f32: bool) -> Boxes {
        Boxes {
            xyxy: v.to_vec(),
            f32,
        }
    }

    #[test]
    fn iou_basics() {
        let a = boxes(&[[0.0, 0.0, 10.0, 10.0]], false);
        let b = boxes(
            &[
                [0.0, 0.0, 10.0, 10.0],
                [5.0, 0.0, 15.0, 10.0],
                [20.0, 20.0, 30.0, 30.0],
                [10.0, 0.0, 20.0, 10.0],
            ],
            true,
        );
        let mut out = Vec::new();
        assert!(!iou_distance(&a, &b, &mut out));
        assert_eq!(out, [0.0, 1.0 - 50.0 / 150.0, 1.0, 1.0]);
    }

    #[test]
    fn degenerate_boxes_give_zero_iou() {
        // 0 / 0 -> NaN -> 0, as np.nan_to_num does.
        let a = boxes(&[[5.0, 5.0, 5.0, 5.0]], true);
        let mut out = Vec::new();
        assert!(iou_distance(&a, &a, &mut out));
        assert_eq!(out, [1.0]);
    }

    #[test]
    fn float32_arithmetic_when_both_sides_are_float32() {
        // Checked with numpy: box_iou_batch on float32 arrays.
        let a = [[
            10.3f32 as f64,
            20.7f32 as f64,
            50.1f32 as f64,
            90.9f32 as f64,
        ]];
        let b = [[
            12.2f32 as f64,
            22.4f32 as f64,
            51.3f32 as f64,
            93.3f32 as f64,
        ]];
        let mut out = Vec::new();
        iou_distance(&boxes(&a, true), &boxes(&b, true), &mut out);
        assert_eq!(out[0], 0.1258752942085266);
        iou_distance(&boxes(&a, false), &boxes(&b, true), &mut out);
        assert_eq!(out[0], 0.12587538919591235);
    }

    #[test]
    fn fuse() {
        let mut c = [0.2, 1.0, 0.5, 0.0];
        fuse_score(&mut c, false, 2, &[0.5, 0.9]);
        assert_eq!(c, [1.0 - 0.8 * 0.5, 1.0, 1.0 - 0.5 * 0.5, 1.0 - 0.9]);
    }
}
