//! Non-maximum suppression and scaling back to the source image, as ultralytics'
//! `non_max_suppression` + `scale_boxes` / `scale_coords` do it.

use pitchside_plugin::Detection;

use crate::preprocess::Letterbox;

/// ultralytics' class offset for class-aware NMS in one pass.
const MAX_WH: f32 = 7680.0;
/// ultralytics' cap on boxes entering NMS.
const MAX_NMS: usize = 30000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NmsOptions {
    pub conf: f32,
    pub iou: f32,
    pub max_det: usize,
    pub agnostic: bool,
}

impl Default for NmsOptions {
    /// ultralytics' `predict` defaults.
    fn default() -> Self {
        NmsOptions {
            conf: 0.25,
            iou: 0.7,
            max_det: 300,
            agnostic: false,
        }
    }
}

/// A candidate in network-input coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub xyxy: [f32; 4],
    pub score: f32,
    pub class_id: u32,
    pub anchor: usize,
}

/// Runs NMS on one image's raw head output, laid out channel-major: `pred[c * n + a]` for
/// channel `c` (4 box xywh, `nc` classes, then extras) and anchor `a`.
pub fn nms(
    pred: &[f32],
    channels: usize,
    n: usize,
    nc: usize,
    opts: &NmsOptions,
) -> Vec<Candidate> {
    debug_assert_eq!(pred.len(), channels * n);
    let mut cands: Vec<Candidate> = Vec::new();
    for a in 0..n {
        let mut best = f32::NEG_INFINITY;
        let mut cls = 0usize;
        for c in 0..nc {
            let s = pred[(4 + c) * n + a];
            // First maximum wins, like torch.max.
            if s > best {
                best = s;
                cls = c;
            }
        }
        // NaN scores never pass.
        if best.partial_cmp(&opts.conf) != Some(std::cmp::Ordering::Greater) {
            continue;
        }
        let (cx, cy, w, h) = (pred[a], pred[n + a], pred[2 * n + a], pred[3 * n + a]);
        let (dw, dh) = (w / 2.0, h / 2.0);
        cands.push(Candidate {
            xyxy: [cx - dw, cy - dh, cx + dw, cy + dh],
            score: best,
            class_id: cls as u32,
            anchor: a,
        });
    }
    // Descending score; stable, so ties keep anchor order.
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    cands.truncate(MAX_NMS);
    let offset = |c: &Candidate| {
        if opts.agnostic {
            0.0
        } else {
            c.class_id as f32 * MAX_WH
        }
    };
    let boxes: Vec<[f32; 4]> = cands
        .iter()
        .map(|c| {
            let o = offset(c);
            [c.xyxy[0] + o, c.xyxy[1] + o, c.xyxy[2] + o, c.xyxy[3] + o]
        })
        .collect();
    let areas: Vec<f32> = boxes
        .iter()
        .map(|b| (b[2] - b[0]) * (b[3] - b[1]))
        .collect();
    let mut suppressed = vec![false; cands.len()];
    let mut keep = Vec::new();
    for i in 0..cands.len() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        if keep.len() >= opts.max_det {
            break;
        }
        for j in i + 1..cands.len() {
            if !suppressed[j] && iou(&boxes[i], &boxes[j], areas[i], areas[j]) > opts.iou {
                suppressed[j] = true;
            }
        }
    }
    keep.into_iter().map(|i| cands[i].clone()).collect()
}

/// Intersection over union of two xyxy boxes; 0 when both are empty.
pub fn box_iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    iou(
        a,
        b,
        (a[2] - a[0]) * (a[3] - a[1]),
        (b[2] - b[0]) * (b[3] - b[1]),
    )
}

/// [`box_iou`] with the areas given (NMS computes each box's once).
fn iou(a: &[f32; 4], b: &[f32; 4], area_a: f32, area_b: f32) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = area_a + area_b - inter;
    // Two empty boxes: no overlap (NMS compares with `>` a threshold >= 0 either way).
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Maps candidates back to the source image (boxes and keypoints clipped to it).
/// `keypoints`: (count, dims) when the head predicts them after the class channels.
pub fn to_detections(
    cands: &[Candidate],
    pred: &[f32],
    n: usize,
    nc: usize,
    keypoints: Option<(usize, usize)>,
    lb: &Letterbox,
) -> Vec<Detection> {
    let (gain_x, gain_y, pad_x, pad_y) = lb.inverse();
    let (w0, h0) = (lb.src_w as f32, lb.src_h as f32);
    let sx = |x: f32| ((x - pad_x) / gain_x).clamp(0.0, w0);
    let sy = |y: f32| ((y - pad_y) / gain_y).clamp(0.0, h0);
    cands
        .iter()
        .map(|c| {
            let kps = match keypoints {
                None => Vec::new(),
                Some((k, dims)) => (0..k)
                    .map(|i| {
                        let ch = |d: usize| pred[(4 + nc + i * dims + d) * n + c.anchor];
                        let conf = if dims == 3 { ch(2) } else { 1.0 };
                        [sx(ch(0)), sy(ch(1)), conf]
                    })
                    .collect(),
            };
            Detection {
                bbox: [sx(c.xyxy[0]), sy(c.xyxy[1]), sx(c.xyxy[2]), sy(c.xyxy[3])],
                score: c.score,
                class_id: c.class_id,
                keypoints: kps,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a channel-major prediction from (cx, cy, w, h, class scores) rows.
    fn pred(rows: &[(f32, f32, f32, f32, Vec<f32>)]) -> (Vec<f32>, usize) {
        let n = rows.len();
        let nc = rows[0].4.len();
        let mut p = vec![0f32; (4 + nc) * n];
        for (a, r) in rows.iter().enumerate() {
            p[a] = r.0;
            p[n + a] = r.1;
            p[2 * n + a] = r.2;
            p[3 * n + a] = r.3;
            for (c, s) in r.4.iter().enumerate() {
                p[(4 + c) * n + a] = *s;
            }
        }
        (p, nc)
    }

    #[test]
    fn suppresses_overlaps_of_the_same_class_only() {
        // Two boxes 10x10 offset by 1 px: IoU = 90/110 = 0.818.
        let (p, nc) = pred(&[
            (5.0, 5.0, 10.0, 10.0, vec![0.9, 0.0]),
            (6.0, 5.0, 10.0, 10.0, vec![0.8, 0.0]),
            (6.0, 5.0, 10.0, 10.0, vec![0.0, 0.7]),
            (50.0, 50.0, 10.0, 10.0, vec![0.2, 0.0]),
        ]);
        let opts = NmsOptions::default();
        let k = nms(&p, 4 + nc, 4, nc, &opts);
        assert_eq!(k.iter().map(|c| c.anchor).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(k[0].xyxy, [0.0, 0.0, 10.0, 10.0]);
        assert_eq!(k[1].class_id, 1);
        // Agnostic: the class-1 box overlaps the first too.
        let k = nms(
            &p,
            4 + nc,
            4,
            nc,
            &NmsOptions {
                agnostic: true,
                ..opts
            },
        );
        assert_eq!(k.iter().map(|c| c.anchor).collect::<Vec<_>>(), vec![0]);
        // A higher IoU threshold keeps the overlapping box.
        let k = nms(&p, 4 + nc, 4, nc, &NmsOptions { iou: 0.85, ..opts });
        assert_eq!(k.len(), 3);
        // Confidence threshold is strict (>).
        let k = nms(&p, 4 + nc, 4, nc, &NmsOptions { conf: 0.9, ..opts });
        assert!(k.is_empty());
        // max_det caps the result.
        let k = nms(
            &p,
            4 + nc,
            4,
            nc,
            &NmsOptions {
                iou: 0.99,
                max_det: 2,
                ..opts
            },
        );
        assert_eq!(k.len(), 2);
    }

    #[test]
    fn scales_boxes_and_keypoints_back_and_clips() {
        // 1920x1080 source in a 640x384 input: gain 1/3, pad y 12.
        let lb = Letterbox::new(1920, 1080, 640, true, 32);
        let n = 1;
        let nc = 1;
        // box centre (320, 192) size 30x30, one keypoint at (10, 5) conf 0.9.
        let p = vec![320.0, 192.0, 30.0, 30.0, 0.95, 10.0, 5.0, 0.9];
        let c = nms(&p, 8, n, nc, &NmsOptions::default());
        let d = to_detections(&c, &p, n, nc, Some((1, 3)), &lb);
        assert_eq!(d.len(), 1);
        let b = d[0].bbox;
        let want = [915.0, 495.0, 1005.0, 585.0];
        for i in 0..4 {
            assert!((b[i] - want[i]).abs() < 1e-3, "{b:?}");
        }
        // y = (5 - 12) * 3 < 0 -> clipped to 0.
        assert!((d[0].keypoints[0][0] - 30.0).abs() < 1e-4);
        assert_eq!(d[0].keypoints[0][1], 0.0);
        assert_eq!(d[0].keypoints[0][2], 0.9);
    }
}
