//! Tracking's output into the response: a response-wide id for every (tracker, local id),
//! and one entry per source frame, skipped frames (stride) interpolated.

use std::collections::HashMap;

use pitchside_plugin::{Detection, PluginError, TrackedObject, Tracker};

use crate::response::{BALL_CLASS, FrameResult, KEYPOINT_MIN_CONF, ObjectResult};

/// A processed frame before assembly: what [`super::RunOptions::on_frame`] and
/// [`super::Pipeline::detect_frames`] hand out.
#[derive(Debug, Clone)]
pub struct Processed {
    pub frame_number: u64,
    /// Boxes in source pixels, unrounded; ids response-wide (from 1; 0 for a detection
    /// not tracked, [`super::Pipeline::detect_frames`] without tracking).
    pub objects: Vec<TrackedObject>,
    /// The pitch keypoints, `[0, 0]` where unseen or below `KEYPOINT_MIN_CONF`.
    pub keypoints: Vec<[f32; 2]>,
}

impl Processed {
    /// The objects in the response's order: by class, then descending score.
    pub fn ordered_objects(&self) -> Vec<&TrackedObject> {
        ordered(&self.objects)
    }
}

/// The pitch keypoints of a frame: the best pose detection's keypoints, `[0, 0]` where
/// unseen or below `KEYPOINT_MIN_CONF`; always `nk` pairs.
pub fn pitch_keypoints(dets: &[Detection], nk: usize) -> Vec<[f32; 2]> {
    let mut out = vec![[0f32; 2]; nk];
    let best = dets.iter().max_by(|a, b| a.score.total_cmp(&b.score));
    if let Some(d) = best {
        for (o, k) in out.iter_mut().zip(&d.keypoints) {
            if k[2] >= KEYPOINT_MIN_CONF && k[0].is_finite() && k[1].is_finite() {
                *o = [k[0], k[1]];
            }
        }
    }
    out
}

/// Gives every (tracker, local id) a response-wide id, in order of first appearance.
#[derive(Default)]
pub(super) struct IdMap {
    map: HashMap<(u8, u64), u64>,
    next: u64,
}

impl IdMap {
    pub(super) fn get(&mut self, tracker: u8, id: u64) -> u64 {
        let next = &mut self.next;
        *self.map.entry((tracker, id)).or_insert_with(|| {
            *next += 1;
            *next
        })
    }
}

pub(super) fn track_frame(
    frame_number: u64,
    dets: &[Detection],
    tracker: &mut dyn Tracker,
    ball_tracker: Option<&mut (dyn Tracker + 'static)>,
    ids: &mut IdMap,
) -> Result<Vec<TrackedObject>, PluginError> {
    let mut out = Vec::new();
    let (main, ball): (Vec<Detection>, Vec<Detection>) = match &ball_tracker {
        Some(_) => dets.iter().cloned().partition(|d| d.class_id != BALL_CLASS),
        None => (dets.to_vec(), Vec::new()),
    };
    for t in tracker.update(frame_number, &main)? {
        out.push(TrackedObject {
            id: ids.get(0, t.id),
            bbox: t.bbox,
            score: t.score,
            class_id: t.class_id,
        });
    }
    if let Some(bt) = ball_tracker {
        for t in bt.update(frame_number, &ball)? {
            out.push(TrackedObject {
                id: ids.get(1, t.id),
                bbox: t.bbox,
                score: t.score,
                class_id: t.class_id,
            });
        }
    }
    Ok(out)
}

fn object_results(objects: &[TrackedObject]) -> Vec<ObjectResult> {
    ordered(objects)
        .into_iter()
        .map(|t| ObjectResult::new(t.id, t.bbox, t.class_id))
        .collect()
}

fn ordered(objects: &[TrackedObject]) -> Vec<&TrackedObject> {
    let mut o: Vec<&TrackedObject> = objects.iter().collect();
    // By class, then descending score; ids break ties so output is deterministic.
    o.sort_by(|a, b| {
        a.class_id
            .cmp(&b.class_id)
            .then(b.score.total_cmp(&a.score))
            .then(a.id.cmp(&b.id))
    });
    o
}

/// One entry per source frame `0..total`: processed frames as tracked, skipped frames with
/// each track's box interpolated between the neighbouring processed frames where it
/// appears in both, and the nearest processed frame's keypoints. Frames after the last
/// processed one repeat it.
pub(super) fn assemble(processed: &[Processed], total: u64) -> Vec<FrameResult> {
    let mut out = Vec::with_capacity(total as usize);
    let mut j = 0usize; // index of the last processed frame <= f
    for f in 0..total {
        while j + 1 < processed.len() && processed[j + 1].frame_number <= f {
            j += 1;
        }
        let Some(prev) = processed.get(j).filter(|p| p.frame_number <= f) else {
            // Before the first processed frame (cannot happen: frame 0 is always processed).
            out.push(FrameResult::new(f, &[], Vec::new()));
            continue;
        };
        if prev.frame_number == f {
            out.push(FrameResult::new(
                f,
                &prev.keypoints,
                object_results(&prev.objects),
            ));
            continue;
        }
        let next = processed.get(j + 1);
        let (objects, keypoints) = match next {
            Some(next) => {
                let span = (next.frame_number - prev.frame_number) as f32;
                let t = (f - prev.frame_number) as f32 / span;
                let objects: Vec<TrackedObject> = prev
                    .objects
                    .iter()
                    .filter_map(|a| {
                        let b = next.objects.iter().find(|b| b.id == a.id)?;
                        let bbox: [f32; 4] =
                            std::array::from_fn(|k| a.bbox[k] + (b.bbox[k] - a.bbox[k]) * t);
                        Some(TrackedObject { bbox, ..a.clone() })
                    })
                    .collect();
                let nearest = if f - prev.frame_number <= next.frame_number - f {
                    prev
                } else {
                    next
                };
                (objects, &nearest.keypoints)
            }
            None => (prev.objects.clone(), &prev.keypoints),
        };
        out.push(FrameResult::new(f, keypoints, object_results(&objects)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: u64, x: f32, class_id: u32, score: f32) -> TrackedObject {
        TrackedObject {
            id,
            bbox: [x, 0.0, x + 10.0, 10.0],
            score,
            class_id,
        }
    }

    fn p(frame_number: u64, objects: Vec<TrackedObject>, k: f32) -> Processed {
        Processed {
            frame_number,
            objects,
            keypoints: vec![[k, k]; 2],
        }
    }

    #[test]
    fn stride_keeps_source_numbers_and_interpolates() {
        let processed = vec![
            p(0, vec![t(1, 0.0, 2, 0.9), t(2, 50.0, 2, 0.8)], 1.0),
            p(2, vec![t(1, 10.0, 2, 0.9)], 2.0),
            p(4, vec![t(1, 20.0, 2, 0.9), t(2, 70.0, 2, 0.8)], 3.0),
        ];
        let frames = assemble(&processed, 6);
        assert_eq!(
            frames.iter().map(|f| f.frame_number).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5]
        );
        // Frame 1: track 1 halfway between 0 and 10; track 2 missing on frame 2 -> absent.
        assert_eq!(frames[1].objects.len(), 1);
        assert_eq!(frames[1].objects[0].bbox, [5.0, 0.0, 15.0, 10.0]);
        // Nearest processed frame's keypoints (ties go to the earlier frame).
        assert_eq!(frames[1].keypoints, vec![[1.0, 1.0]; 2]);
        assert_eq!(frames[3].objects[0].bbox, [15.0, 0.0, 25.0, 10.0]);
        // Tail frame after the last processed one repeats it.
        assert_eq!(frames[5].objects.len(), 2);
        assert_eq!(frames[5].keypoints, vec![[3.0, 3.0]; 2]);
    }

    #[test]
    fn uneven_gaps_interpolate_linearly_and_pick_nearest_keypoints() {
        let processed = vec![
            p(0, vec![t(7, 0.0, 2, 0.5)], 1.0),
            p(3, vec![t(7, 30.0, 2, 0.5)], 2.0),
        ];
        let frames = assemble(&processed, 4);
        assert_eq!(frames[1].objects[0].bbox[0], 10.0);
        assert_eq!(frames[2].objects[0].bbox[0], 20.0);
        assert_eq!(frames[1].keypoints[0], [1.0, 1.0]);
        assert_eq!(frames[2].keypoints[0], [2.0, 2.0]);
    }

    #[test]
    fn objects_sorted_by_class_then_score_and_rounded() {
        let objs = vec![
            t(1, 0.123, 2, 0.5),
            t(2, 0.0, 0, 0.3),
            t(3, 0.0, 2, 0.9),
            t(4, 0.0, 1, 0.1),
        ];
        let r = object_results(&objs);
        assert_eq!(r.iter().map(|o| o.id).collect::<Vec<_>>(), vec![2, 4, 3, 1]);
        assert_eq!(r[3].bbox[0], 0.12);
    }

    #[test]
    fn keypoints_are_always_nk_pairs_with_low_confidence_zeroed() {
        assert_eq!(pitch_keypoints(&[], 32), vec![[0.0, 0.0]; 32]);
        let d = |score: f32, c: f32| Detection {
            bbox: [0.0; 4],
            score,
            class_id: 0,
            keypoints: vec![[5.0, 6.0, c], [7.0, 8.0, 0.2]],
        };
        let k = pitch_keypoints(&[d(0.3, 0.9), d(0.8, 0.6)], 3);
        assert_eq!(k, vec![[5.0, 6.0], [0.0, 0.0], [0.0, 0.0]]);
    }

    #[test]
    fn ids_are_unique_across_trackers_in_order_of_appearance() {
        let mut ids = IdMap::default();
        assert_eq!(ids.get(0, 5), 1);
        assert_eq!(ids.get(1, 5), 2);
        assert_eq!(ids.get(0, 5), 1);
        assert_eq!(ids.get(0, 9), 3);
    }
}
