//! The Detect / Pose head on NHWC activations: per level, the branches' first convolutions
//! merged into one where they read the level alike, then DFL box decoding, class sigmoids
//! and keypoint decoding per anchor (vectorised), scattered into the channel-major output.

use rayon::prelude::*;

use super::act::{Act, View};
use super::conv::Conv;
use super::simd::{exp_approx, sigmoid};
use crate::plan::{ConvId, Head, YoloTask};

/// The head's executor state: per level, the branches' first convolutions that read the
/// level's features the same way, as one convolution with their outputs side by side (one
/// im2col or Winograd input transform instead of one per branch, and a wider product).
#[derive(Debug, Clone)]
pub(super) struct HeadX {
    merged_first: Vec<Option<MergedFirst>>,
}

#[derive(Debug, Clone)]
struct MergedFirst {
    conv: Conv,
    /// (branch index: 0 box, 1 cls, 2 keypoints; first output channel) of each merged
    /// branch.
    members: Vec<(usize, usize)>,
}

/// The first convolutions of a level's branches (by index: 0 box, 1 cls, 2 keypoints) that
/// can share their input, merged.
fn merge_first(firsts: [Option<&Conv>; 3]) -> Option<MergedFirst> {
    let firsts: Vec<(usize, &Conv)> = firsts
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.map(|c| (i, c)))
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
        mm: None,
        wino_mm: None,
    }
    .with_winograd();
    Some(MergedFirst {
        conv,
        members: offsets,
    })
}

impl HeadX {
    pub(super) fn new(convs: &[Conv], head: &Head) -> HeadX {
        let merged_first = head
            .levels
            .iter()
            .map(|l| {
                merge_first([
                    l.boxes.first().map(|&c| &convs[c]),
                    l.classes.first().map(|&c| &convs[c]),
                    l.keypoints
                        .as_ref()
                        .and_then(|k| k.first())
                        .map(|&c| &convs[c]),
                ])
            })
            .collect();
        HeadX { merged_first }
    }

    /// Applies `prepare` to the merged convolutions (packing them for the microkernel).
    pub(super) fn prepare(&mut self, prepare: impl Fn(Conv) -> Conv) {
        for m in self.merged_first.iter_mut().flatten() {
            let conv = std::mem::replace(&mut m.conv, Conv::placeholder());
            m.conv = prepare(conv);
        }
    }

    /// `[batch, 4 + nc (+ nk), anchors]`, channel-major: what the head of
    /// [`crate::burn_net`] returns.
    pub(super) fn forward(
        &self,
        convs: &[Conv],
        head: &Head,
        xs: &[View<'_>],
        input_h: usize,
    ) -> (Vec<f32>, [usize; 3]) {
        let run_seq = |ids: &[ConvId], x: View<'_>| -> Act {
            let mut y = convs[ids[0]].forward(x);
            for &id in &ids[1..] {
                y = convs[id].forward(y.view());
            }
            y
        };
        let b = xs[0].n;
        let nk = match head.task {
            YoloTask::Detect => 0,
            YoloTask::Pose { keypoints, dims } => keypoints * dims,
        };
        let ch = 4 + head.nc + nk;
        let n: usize = xs.iter().map(|x| x.h * x.w).sum();
        let mut out = vec![0f32; b * ch * n];
        let mut a0 = 0;
        for (i, x) in xs.iter().enumerate() {
            let first = self.merged_first[i]
                .as_ref()
                .map(|m| (m.conv.forward(*x), &m.members));
            let branch = |kind: usize, ids: &[ConvId]| -> Act {
                let merged = first.as_ref().and_then(|(y, members)| {
                    let &(_, off) = members.iter().find(|(k, _)| *k == kind)?;
                    Some(y.channels(off, convs[ids[0]].cout))
                });
                match merged {
                    Some(v) if ids.len() > 1 => run_seq(&ids[1..], v),
                    Some(v) => v.to_act(),
                    None => run_seq(ids, *x),
                }
            };
            let level = &head.levels[i];
            let boxes = branch(0, &level.boxes);
            let cls = branch(1, &level.classes);
            let kpts = level.keypoints.as_ref().map(|k| branch(2, k));
            let (h, w) = (x.h, x.w);
            let stride = (input_h / h) as f32;
            let hw = h * w;
            // Decode 64 anchors at a time (rows of `ch` values, in cache) on all cores and
            // write each channel's 64 values as one run of the channel-major output (a second
            // pass gathering every channel from rows `ch` floats apart cost ~1 ms at 80×80).
            let level = Level {
                boxes: &boxes.data,
                cls: &cls.data,
                kpts: kpts.as_ref().map(|k| &k.data[..]),
                hw,
                w,
                stride,
            };
            let dst = OutPtr(out.as_mut_ptr());
            let total = b * hw;
            (0..total.div_ceil(ANCHORS_PER_JOB))
                .into_par_iter()
                .for_each_init(
                    || vec![0f32; ANCHORS_PER_JOB * ch],
                    |rows, job| {
                        let first = job * ANCHORS_PER_JOB;
                        let count = ANCHORS_PER_JOB.min(total - first);
                        let rows = &mut rows[..count * ch];
                        decode_anchors(head, &level, first, rows);
                        for c in 0..ch {
                            for (r, row) in rows.chunks_exact(ch).enumerate() {
                                let (bi, p) = ((first + r) / hw, (first + r) % hw);
                                // SAFETY: out holds b × ch × n values; (bi, c, a0 + p) is
                                // inside it and written by this job only (its anchors).
                                unsafe { *dst.at((bi * ch + c) * n + a0 + p) = row[c] };
                            }
                        }
                    },
                );
            a0 += hw;
        }
        (out, [b, ch, n])
    }
}

/// Anchors per decoding job.
const ANCHORS_PER_JOB: usize = 64;

/// The head's output, written by the decoding jobs at disjoint places.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);

// SAFETY: the jobs write disjoint elements (each its own anchors), and the vector outlives
// the parallel loop.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// # Safety
    /// `i` is inside the output.
    unsafe fn at(self, i: usize) -> *mut f32 {
        unsafe { self.0.add(i) }
    }
}

/// One pyramid level's head outputs, NHWC, for [`decode_anchors`].
pub(super) struct Level<'a> {
    pub(super) boxes: &'a [f32],
    pub(super) cls: &'a [f32],
    pub(super) kpts: Option<&'a [f32]>,
    pub(super) hw: usize,
    pub(super) w: usize,
    pub(super) stride: f32,
}

multiversion!(
    /// Decodes anchors `first..` of a level into `rows` (one row of `4 + nc (+ nk)` values per
    /// anchor): DFL boxes as xywh in input pixels, class probabilities, keypoints.
    fn decode_anchors(head: &Head, level: &Level<'_>, first: usize, rows: &mut [f32]) => decode_anchors_generic
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
fn decode_anchors_generic(head: &Head, level: &Level<'_>, first: usize, rows: &mut [f32]) {
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
