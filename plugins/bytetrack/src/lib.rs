//! ByteTrack, reproducing supervision 0.22's `sv.ByteTrack` as the Score Vision miner runs
//! it: `tracker.update_with_detections(detections)` once per processed frame.
//!
//! Faithful means same ids and same boxes on the same input, frame by frame, which the
//! parity fixtures in `tests/fixtures/bytetrack` (generated with supervision by
//! `tools/bytetrack_fixtures.py`) check. That takes more than the algorithm:
//!
//! * the Kalman filter is bit-exact with numpy, float32 corners included ([`kalman`]);
//! * assignment is a port of scipy's `linear_sum_assignment`, so ties break the same way,
//!   and unmatched indices come in CPython's set order ([`assignment`]);
//! * IoU follows numpy's float32/float64 promotion;
//! * the track lists are kept exactly as supervision keeps them, quirks included: a lost
//!   track that times out is only dropped from the lost list one frame later (and can be
//!   re-found in that frame), and new tracks consume an id even if never confirmed when
//!   `minimum_consecutive_frames` is 1.
//!
//! Differences, all deliberate: ids are per tracker instance and restart at 1 on
//! [`ByteTrack::reset`] (supervision's counters are process-wide class attributes), and
//! detections with non-finite values, an inverted box or a zero height are ignored
//! (supervision's Kalman update raises on a zero height).

pub mod assignment;
mod iou;
pub mod kalman;

use assignment::{Assignment, LsaWorkspace, linear_assignment_into};
use iou::{Boxes, fuse_score, iou_distance};
use kalman::KalmanState;
use pitchside_plugin::{Detection, PluginError, PluginInfo, PluginKind, TrackedObject, Tracker};
use serde::{Deserialize, Serialize};

/// ByteTrack's parameters, named and defaulted as in `sv.ByteTrack`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ByteTrackParams {
    /// Detections scoring above this start tracks and take part in the first association;
    /// those in (0.1, this) only in the second. New tracks need this + 0.1.
    pub track_activation_threshold: f64,
    /// Frames (at 30 fps) a lost track is kept for re-identification.
    pub lost_track_buffer: u32,
    /// Maximum fused cost `1 - IoU * score` for the first association.
    pub minimum_matching_threshold: f64,
    /// Frame rate of the processed frames; scales `lost_track_buffer`.
    pub frame_rate: f64,
    /// Updates a new track needs before it gets an id and is reported.
    pub minimum_consecutive_frames: u32,
}

impl Default for ByteTrackParams {
    fn default() -> Self {
        ByteTrackParams {
            track_activation_threshold: 0.25,
            lost_track_buffer: 30,
            minimum_matching_threshold: 0.8,
            frame_rate: 30.0,
            minimum_consecutive_frames: 1,
        }
    }
}

impl ByteTrackParams {
    /// Checks the ranges; the message names the parameter and the accepted range.
    pub fn validate(&self) -> Result<(), ByteTrackError> {
        let unit = |name: &str, v: f64| {
            if v.is_finite() && (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(ByteTrackError::InvalidParams(format!(
                    "{name} must be within [0, 1], got {v}"
                )))
            }
        };
        unit(
            "track_activation_threshold",
            self.track_activation_threshold,
        )?;
        unit(
            "minimum_matching_threshold",
            self.minimum_matching_threshold,
        )?;
        if !(self.frame_rate.is_finite() && self.frame_rate > 0.0) {
            return Err(ByteTrackError::InvalidParams(format!(
                "frame_rate must be a positive number, got {}",
                self.frame_rate
            )));
        }
        if self.minimum_consecutive_frames == 0 {
            return Err(ByteTrackError::InvalidParams(
                "minimum_consecutive_frames must be at least 1, got 0".into(),
            ));
        }
        Ok(())
    }

    /// `int(frame_rate / 30.0 * lost_track_buffer)`: frames a lost track survives.
    pub fn max_time_lost(&self) -> u64 {
        // `as` truncates toward zero like Python's int().
        (self.frame_rate / 30.0 * self.lost_track_buffer as f64) as u64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ByteTrackError {
    #[error("invalid ByteTrack parameters: {0}")]
    InvalidParams(String),
    #[error("invalid ByteTrack parameters: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<ByteTrackError> for PluginError {
    fn from(e: ByteTrackError) -> Self {
        PluginError::InvalidParams(e.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrackState {
    Tracked,
    Lost,
    Removed,
}

/// supervision's `STrack` once activated.
#[derive(Debug, Clone)]
struct Track {
    /// Identity for the list bookkeeping (supervision's `internal_track_id`).
    internal_id: u64,
    /// The id reported to the caller (`external_track_id`), once assigned.
    external_id: Option<u64>,
    kf: KalmanState,
    state: TrackState,
    is_activated: bool,
    tracklet_len: u32,
    frame_id: u64,
    start_frame: u64,
}

/// A detection as supervision turns it into an unactivated `STrack`.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    /// `tlbr` of the float32 `tlwh`: `[x1, y1, x1 + w, y1 + h]` in float32.
    tlbr: [f64; 4],
    /// `tlwh_to_xyah` of the float32 `tlwh`, in float32: the Kalman measurement.
    xyah: [f32; 4],
    score: f64,
}

impl Candidate {
    /// `None` for boxes supervision cannot track (non-finite, or zero/negative height).
    fn new(d: &Detection) -> Option<Self> {
        let [x1, y1, x2, y2] = d.bbox;
        if !(d.bbox.iter().all(|v| v.is_finite()) && d.score.is_finite()) {
            return None;
        }
        // tlbr_to_tlwh runs in float64 on the float32 inputs, then STrack stores float32.
        let w = (x2 as f64 - x1 as f64) as f32;
        let h = (y2 as f64 - y1 as f64) as f32;
        if !(h > 0.0 && w >= 0.0) {
            return None;
        }
        Some(Candidate {
            tlbr: [x1 as f64, y1 as f64, (x1 + w) as f64, (y1 + h) as f64],
            xyah: [x1 + w / 2.0, y1 + h / 2.0, w / h, h],
            score: d.score as f64,
        })
    }
}

/// Scratch buffers reused across frames.
#[derive(Debug, Default, Clone)]
struct Scratch {
    a: Boxes,
    b: Boxes,
    cost: Vec<f64>,
    scores: Vec<f64>,
    lsa: LsaWorkspace,
    assignment: Assignment,
}

impl Scratch {
    /// `linear_assignment(iou_distance(a, b) [fused with scores], thresh)`.
    fn associate(&mut self, fuse: bool, thresh: f64) -> Assignment {
        let is_f32 = iou_distance(&self.a, &self.b, &mut self.cost);
        if fuse {
            fuse_score(&mut self.cost, is_f32, self.b.len(), &self.scores);
        } else {
            // Every non-fused association here has a float64 side (predicted tracks or
            // raw float64 boxes); a float32 cost would need float32 thresholding.
            debug_assert!(!is_f32 || self.cost.is_empty());
        }
        linear_assignment_into(
            &mut self.cost,
            self.a.len(),
            self.b.len(),
            thresh,
            &mut self.lsa,
            &mut self.assignment,
        );
        self.assignment.clone()
    }
}

/// ByteTrack over all classes together, class ids carried through from the detections.
#[derive(Debug, Clone)]
pub struct ByteTrack {
    params: ByteTrackParams,
    max_time_lost: u64,
    /// Calls since construction or reset (supervision's `frame_id`, 1-based).
    frame_id: u64,
    tracked: Vec<Track>,
    lost: Vec<Track>,
    /// Internal ids of the tracks removed in the previous frame (supervision keeps only
    /// one frame's worth, and subtracts it from the lost list before replacing it).
    removed_ids: Vec<u64>,
    last_internal_id: u64,
    last_external_id: u64,
    scratch: Scratch,
}

impl ByteTrack {
    pub fn new(params: ByteTrackParams) -> Result<Self, ByteTrackError> {
        params.validate()?;
        Ok(ByteTrack {
            max_time_lost: params.max_time_lost(),
            params,
            frame_id: 0,
            tracked: Vec::new(),
            lost: Vec::new(),
            removed_ids: Vec::new(),
            last_internal_id: 0,
            last_external_id: 0,
            scratch: Scratch::default(),
        })
    }

    /// From the engine's `params:` mapping; `null` means all defaults.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, ByteTrackError> {
        let params = if value.is_null() {
            ByteTrackParams::default()
        } else {
            ByteTrackParams::deserialize(value)?
        };
        Self::new(params)
    }

    pub fn params(&self) -> &ByteTrackParams {
        &self.params
    }

    /// Forgets every track; ids restart at 1.
    pub fn reset(&mut self) {
        self.frame_id = 0;
        self.tracked.clear();
        self.lost.clear();
        self.removed_ids.clear();
        self.last_internal_id = 0;
        self.last_external_id = 0;
    }

    /// `update_with_detections`: the detections that belong to a track with an id, in
    /// input order, each with its own box, score and class and the track's id.
    pub fn track(&mut self, detections: &[Detection]) -> Vec<TrackedObject> {
        let valid: Vec<(usize, Candidate)> = detections
            .iter()
            .enumerate()
            .filter_map(|(i, d)| Candidate::new(d).map(|c| (i, c)))
            .collect();
        let output_tracks = self.update_with_tensors(valid.iter().map(|(_, c)| *c));
        if output_tracks.is_empty() || valid.is_empty() {
            return Vec::new();
        }

        // Ids go to detections by a fresh IoU assignment against the tracks' filtered
        // boxes (not by the association above), threshold 0.5. Detection boxes are the
        // raw float64 tensor rows here.
        let s = &mut self.scratch;
        s.a.clear();
        for (i, _) in &valid {
            let b = detections[*i].bbox;
            s.a.push([b[0] as f64, b[1] as f64, b[2] as f64, b[3] as f64], false);
        }
        s.b.clear();
        for t in &output_tracks {
            s.b.push(t.kf.tlbr(), t.kf.mean_is_f32);
        }
        let assignment = s.associate(false, 0.5);
        let mut ids = vec![None; valid.len()];
        for &(det, trk) in &assignment.matches {
            ids[det] = output_tracks[trk].external_id;
        }
        valid
            .iter()
            .zip(ids)
            .filter_map(|((i, _), id)| {
                let d = &detections[*i];
                id.map(|id| TrackedObject {
                    id,
                    bbox: d.bbox,
                    score: d.score,
                    class_id: d.class_id,
                })
            })
            .collect()
    }

    fn next_internal_id(&mut self) -> u64 {
        self.last_internal_id += 1;
        self.last_internal_id
    }

    fn next_external_id(&mut self) -> u64 {
        self.last_external_id += 1;
        self.last_external_id
    }

    /// `update_with_tensors`: one ByteTrack step; returns the activated tracked tracks in
    /// supervision's list order.
    fn update_with_tensors(&mut self, candidates: impl Iterator<Item = Candidate>) -> Vec<Track> {
        self.frame_id += 1;
        let frame_id = self.frame_id;
        let thr = self.params.track_activation_threshold;
        let min_consecutive = self.params.minimum_consecutive_frames;

        let mut high = Vec::new();
        let mut low = Vec::new();
        for c in candidates {
            if c.score > thr {
                high.push(c);
            }
            if c.score > 0.1 && c.score < thr {
                low.push(c);
            }
        }

        // All tracks live in one arena for this step; lists hold indices, as supervision's
        // lists hold references to shared STrack objects.
        let mut arena: Vec<Track> =
            Vec::with_capacity(self.tracked.len() + self.lost.len() + high.len());
        arena.append(&mut self.tracked);
        let old_tracked: Vec<usize> = (0..arena.len()).collect();
        arena.append(&mut self.lost);
        let old_lost: Vec<usize> = (old_tracked.len()..arena.len()).collect();

        let (tracked_stracks, unconfirmed): (Vec<usize>, Vec<usize>) =
            old_tracked.iter().partition(|&&i| arena[i].is_activated);
        let mut activated = Vec::new();
        let mut refind = Vec::new();
        let mut lost_now = Vec::new();
        let mut removed_now = Vec::new();

        // Step 2: first association, high-score detections against tracked + lost tracks.
        let pool = joint(&arena, &tracked_stracks, &old_lost);
        let batch_f32 = pool.iter().all(|&i| arena[i].kf.mean_is_f32);
        for &i in &pool {
            let not_tracked = arena[i].state != TrackState::Tracked;
            arena[i].kf.predict(not_tracked, batch_f32);
        }
        let s = &mut self.scratch;
        fill_tracks(&mut s.a, &arena, &pool);
        fill_candidates(&mut s.b, &mut s.scores, &high);
        let first = s.associate(true, self.params.minimum_matching_threshold);
        for &(it, id) in &first.matches {
            let t = pool[it];
            if arena[t].state == TrackState::Tracked {
                self.update_track(&mut arena[t], &high[id], frame_id);
                activated.push(t);
            } else {
                re_activate(&mut arena[t], &high[id], frame_id);
                refind.push(t);
            }
        }

        // Step 3: second association, low-score detections against the still-tracked
        // tracks left over.
        let r_tracked: Vec<usize> = first
            .unmatched_rows
            .iter()
            .map(|&i| pool[i])
            .filter(|&t| arena[t].state == TrackState::Tracked)
            .collect();
        let s = &mut self.scratch;
        fill_tracks(&mut s.a, &arena, &r_tracked);
        fill_candidates(&mut s.b, &mut s.scores, &low);
        let second = s.associate(false, 0.5);
        for &(it, id) in &second.matches {
            let t = r_tracked[it];
            // Only tracked tracks are in r_tracked: this is always an update.
            self.update_track(&mut arena[t], &low[id], frame_id);
            activated.push(t);
        }
        for &it in &second.unmatched_rows {
            let t = r_tracked[it];
            if arena[t].state != TrackState::Lost {
                arena[t].state = TrackState::Lost;
                lost_now.push(t);
            }
        }

        // Unconfirmed tracks (one hit so far) against the high-score detections left.
        let remaining: Vec<Candidate> = first.unmatched_cols.iter().map(|&i| high[i]).collect();
        let s = &mut self.scratch;
        fill_tracks(&mut s.a, &arena, &unconfirmed);
        fill_candidates(&mut s.b, &mut s.scores, &remaining);
        let third = s.associate(true, 0.7);
        for &(it, id) in &third.matches {
            let t = unconfirmed[it];
            self.update_track(&mut arena[t], &remaining[id], frame_id);
            activated.push(t);
        }
        for &it in &third.unmatched_rows {
            let t = unconfirmed[it];
            arena[t].state = TrackState::Removed;
            removed_now.push(t);
        }

        // Step 4: new tracks from confident leftovers.
        let det_thresh = thr + 0.1;
        for &inew in &third.unmatched_cols {
            let c = &remaining[inew];
            if c.score < det_thresh {
                continue;
            }
            let internal_id = self.next_internal_id();
            let external_id = (min_consecutive == 1).then(|| self.next_external_id());
            arena.push(Track {
                internal_id,
                external_id,
                kf: KalmanState::initiate(c.xyah),
                state: TrackState::Tracked,
                // Only the very first frame's tracks are reported without a second hit.
                is_activated: frame_id == 1,
                tracklet_len: 0,
                frame_id,
                start_frame: frame_id,
            });
            activated.push(arena.len() - 1);
        }

        // Step 5: expire lost tracks (those lost before this frame).
        for &t in &old_lost {
            if frame_id - arena[t].frame_id > self.max_time_lost {
                arena[t].state = TrackState::Removed;
                removed_now.push(t);
            }
        }

        let still_tracked: Vec<usize> = old_tracked
            .iter()
            .copied()
            .filter(|&t| arena[t].state == TrackState::Tracked)
            .collect();
        let new_tracked = joint(&arena, &joint(&arena, &still_tracked, &activated), &refind);
        let mut new_lost = sub(
            &arena,
            &old_lost,
            new_tracked.iter().map(|&t| arena[t].internal_id),
        );
        new_lost.extend_from_slice(&lost_now);
        let new_lost = sub(&arena, &new_lost, self.removed_ids.iter().copied());
        self.removed_ids = removed_now.iter().map(|&t| arena[t].internal_id).collect();
        let (new_tracked, new_lost) = self.remove_duplicate_tracks(&arena, new_tracked, new_lost);

        let output: Vec<Track> = new_tracked
            .iter()
            .filter(|&&t| arena[t].is_activated)
            .map(|&t| arena[t].clone())
            .collect();
        // Move the survivors back out of the arena, in list order.
        let mut slots: Vec<Option<Track>> = arena.into_iter().map(Some).collect();
        self.tracked = new_tracked
            .iter()
            .filter_map(|&t| slots[t].take())
            .collect();
        self.lost = new_lost.iter().filter_map(|&t| slots[t].take()).collect();
        output
    }

    /// `STrack.update`.
    fn update_track(&mut self, t: &mut Track, c: &Candidate, frame_id: u64) {
        t.frame_id = frame_id;
        t.tracklet_len += 1;
        t.kf.update(c.xyah);
        t.state = TrackState::Tracked;
        if t.tracklet_len == self.params.minimum_consecutive_frames {
            t.is_activated = true;
            if t.external_id.is_none() {
                t.external_id = Some(self.next_external_id());
            }
        }
    }

    /// `remove_duplicate_tracks`: a tracked and a lost track overlapping at IoU > 0.85 are
    /// the same object; the younger one goes.
    fn remove_duplicate_tracks(
        &mut self,
        arena: &[Track],
        a: Vec<usize>,
        b: Vec<usize>,
    ) -> (Vec<usize>, Vec<usize>) {
        let s = &mut self.scratch;
        fill_tracks(&mut s.a, arena, &a);
        fill_tracks(&mut s.b, arena, &b);
        let is_f32 = iou_distance(&s.a, &s.b, &mut s.cost);
        let mut dup_a = vec![false; a.len()];
        let mut dup_b = vec![false; b.len()];
        for (i, &ta) in a.iter().enumerate() {
            for (j, &tb) in b.iter().enumerate() {
                let d = s.cost[i * b.len() + j];
                // `pairwise_distance < 0.15` compares in the array's dtype.
                let close = if is_f32 {
                    (d as f32) < 0.15f32
                } else {
                    d < 0.15
                };
                if !close {
                    continue;
                }
                let age_a = arena[ta].frame_id - arena[ta].start_frame;
                let age_b = arena[tb].frame_id - arena[tb].start_frame;
                if age_a > age_b {
                    dup_b[j] = true;
                } else {
                    dup_a[i] = true;
                }
            }
        }
        let keep = |v: Vec<usize>, dup: Vec<bool>| -> Vec<usize> {
            v.into_iter()
                .zip(dup)
                .filter(|(_, d)| !d)
                .map(|(t, _)| t)
                .collect()
        };
        (keep(a, dup_a), keep(b, dup_b))
    }
}

/// `STrack.re_activate` (never with a new id in supervision's ByteTrack).
fn re_activate(t: &mut Track, c: &Candidate, frame_id: u64) {
    t.kf.update(c.xyah);
    t.tracklet_len = 0;
    t.state = TrackState::Tracked;
    t.frame_id = frame_id;
}

fn fill_tracks(boxes: &mut Boxes, arena: &[Track], list: &[usize]) {
    boxes.clear();
    for &t in list {
        boxes.push(arena[t].kf.tlbr(), arena[t].kf.mean_is_f32);
    }
}

fn fill_candidates(boxes: &mut Boxes, scores: &mut Vec<f64>, cands: &[Candidate]) {
    boxes.clear();
    scores.clear();
    for c in cands {
        boxes.push(c.tlbr, true);
        scores.push(c.score);
    }
}

/// `joint_tracks`: `a` then the tracks of `b` not already in it, by internal id.
fn joint(arena: &[Track], a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::with_capacity(a.len() + b.len());
    for &t in a.iter().chain(b) {
        let id = arena[t].internal_id;
        if !out.iter().any(|&o| arena[o].internal_id == id) {
            out.push(t);
        }
    }
    out
}

/// `sub_tracks`: the tracks of `a` whose internal id is not in `ids`, order kept.
fn sub(arena: &[Track], a: &[usize], ids: impl Iterator<Item = u64>) -> Vec<usize> {
    let ids: Vec<u64> = ids.collect();
    let mut out: Vec<usize> = Vec::with_capacity(a.len());
    for &t in a {
        let id = arena[t].internal_id;
        // A dict keyed by id: the first position of an id wins.
        if !ids.contains(&id) && !out.iter().any(|&o| arena[o].internal_id == id) {
            out.push(t);
        }
    }
    out
}

impl Tracker for ByteTrack {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "bytetrack".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Tracker,
        }
    }

    /// `frame_number` is not used: like supervision, the tracker counts calls, so
    /// `lost_track_buffer` is in processed frames.
    fn update(
        &mut self,
        _frame_number: u64,
        detections: &[Detection],
    ) -> Result<Vec<TrackedObject>, PluginError> {
        Ok(self.track(detections))
    }

    fn reset(&mut self) {
        ByteTrack::reset(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x1: f32, y1: f32, x2: f32, y2: f32, score: f32, class_id: u32) -> Detection {
        Detection {
            bbox: [x1, y1, x2, y2],
            score,
            class_id,
            keypoints: Vec::new(),
        }
    }

    fn ids(out: &[TrackedObject]) -> Vec<u64> {
        out.iter().map(|o| o.id).collect()
    }

    #[test]
    fn params_defaults_and_json() {
        let t = ByteTrack::from_json(&serde_json::Value::Null).unwrap();
        assert_eq!(t.params(), &ByteTrackParams::default());
        let t =
            ByteTrack::from_json(&serde_json::json!({"frame_rate": 25, "lost_track_buffer": 60}))
                .unwrap();
        assert_eq!(t.params().frame_rate, 25.0);
        assert_eq!(t.max_time_lost, 50);
        assert_eq!(t.params().track_activation_threshold, 0.25);
    }

    #[test]
    fn params_are_validated() {
        let err = |v: serde_json::Value| ByteTrack::from_json(&v).unwrap_err().to_string();
        assert!(err(serde_json::json!({"track_thresh": 0.5})).contains("unknown field"));
        assert!(err(serde_json::json!({"track_activation_threshold": 1.5})).contains("[0, 1]"));
        assert!(err(serde_json::json!({"frame_rate": 0})).contains("frame_rate"));
        assert!(err(serde_json::json!({"minimum_consecutive_frames": 0})).contains("at least 1"));
        assert!(ByteTrack::from_json(&serde_json::json!({"lost_track_buffer": -1})).is_err());
    }

    #[test]
    fn max_time_lost_truncates_like_python() {
        let p = ByteTrackParams {
            frame_rate: 25.0,
            lost_track_buffer: 10,
            ..Default::default()
        };
        assert_eq!(p.max_time_lost(), 8);
        let p = ByteTrackParams {
            frame_rate: 29.97,
            ..Default::default()
        };
        assert_eq!(p.max_time_lost(), 29);
    }

    #[test]
    fn first_frame_tracks_are_reported_at_once_later_ones_on_second_hit() {
        let mut t = ByteTrack::new(ByteTrackParams::default()).unwrap();
        let a = det(10.0, 10.0, 50.0, 90.0, 0.9, 2);
        let b = det(200.0, 10.0, 240.0, 90.0, 0.8, 0);
        assert_eq!(ids(&t.track(std::slice::from_ref(&a))), [1]);
        // b is new on frame 2: id 2 is taken now but only reported from its second hit.
        let out = t.track(&[a.clone(), b.clone()]);
        assert_eq!(ids(&out), [1]);
        let out = t.track(&[b.clone(), a.clone()]);
        assert_eq!(ids(&out), [2, 1]);
        // Output carries the detection's own box, score and class.
        assert_eq!(out[0].bbox, b.bbox);
        assert_eq!(out[0].score, 0.8);
        assert_eq!(out[0].class_id, 0);
    }

    #[test]
    fn reset_restarts_ids() {
        let mut t = ByteTrack::new(ByteTrackParams::default()).unwrap();
        let a = det(10.0, 10.0, 50.0, 90.0, 0.9, 2);
        for _ in 0..3 {
            t.track(std::slice::from_ref(&a));
        }
        t.reset();
        let b = det(300.0, 300.0, 340.0, 380.0, 0.9, 2);
        assert_eq!(ids(&t.track(std::slice::from_ref(&b))), [1]);
    }

    #[test]
    fn low_scores_and_garbage() {
        let mut t = ByteTrack::new(ByteTrackParams::default()).unwrap();
        // Below the activation threshold + 0.1: no track; NaN and zero-height: ignored.
        let out = t.track(&[
            det(10.0, 10.0, 50.0, 90.0, 0.3, 2),
            det(f32::NAN, 10.0, 50.0, 90.0, 0.9, 2),
            det(100.0, 10.0, 150.0, 10.0, 0.9, 2),
        ]);
        assert!(out.is_empty());
        assert!(t.track(&[]).is_empty());
    }

    #[test]
    fn lost_tracks_keep_moving() {
        // A track moving right, then unseen: its prediction keeps moving so that it is
        // re-found further along (a frozen prediction would not overlap any more).
        let mut t = ByteTrack::new(ByteTrackParams::default()).unwrap();
        let at = |x: f32| det(x, 100.0, x + 30.0, 180.0, 0.9, 2);
        for f in 0..20 {
            assert_eq!(ids(&t.track(&[at(100.0 + 10.0 * f as f32)])), [1]);
        }
        for _ in 0..5 {
            assert!(t.track(&[]).is_empty());
        }
        // 5 frames later the object is 50 px on, beyond its width.
        assert_eq!(ids(&t.track(&[at(100.0 + 10.0 * 25.0)])), [1]);
    }
}
