//! The functions of score-vision's `validator/evaluation/keypoint_scoring.py`, one Rust
//! function per Python function, same names, same order of operations. Where the Python
//! does something surprising, the comment says "quirk" and what it does; Pitchside mirrors
//! it, since the point is to give the number the validator gives.

use std::collections::{BTreeMap, HashMap};

use opencv::calib3d;
use opencv::core::{Mat, Point, Point2d, Point2f, Vector};
use opencv::imgproc;
use opencv::prelude::*;

use crate::answer::{Frame, Frames, Keypoints, Object, Raise};
use crate::lines::Segment;
use crate::template;

/// A 3×3 homography, row-major.
pub type Homography = [[f64; 3]; 3];

type R<T> = Result<T, Raise>;

/// `frame_to_segment`: frame key → segment, in insertion order.
pub type FrameSegments = Vec<(String, usize)>;

/// A player track: (frame, centre) by player id, in first-seen order.
type Tracks<'a> = Vec<(&'a str, Vec<(i64, [f64; 2])>)>;

fn norm2(a: [f64; 2], b: [f64; 2]) -> f64 {
    // np.linalg.norm of a 2-vector: sqrt(dot(x, x)).
    let (dx, dy) = (a[0] - b[0], a[1] - b[1]);
    (dx * dx + dy * dy).sqrt()
}

/// `np.mean`: NaN for an empty list (numpy warns and returns nan).
fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

pub(crate) fn frame_of<'a>(frames: &'a Frames, key: &str) -> R<&'a Frame> {
    match frames.get(key) {
        Some(Ok(f)) => Ok(f),
        Some(Err(e)) => Err(e.clone()),
        None => Err(Raise::new(format!("KeyError: '{key}'"))),
    }
}

fn keypoints(frame: &Frame) -> R<&Keypoints> {
    frame
        .keypoints
        .as_ref()
        .ok_or_else(|| Raise::new("KeyError: 'keypoints'"))
}

fn points(kp: &Keypoints) -> R<&[[f64; 2]]> {
    kp.points.as_deref().map_err(Clone::clone)
}

/// `get_valid_keypoints`: the keypoints that are not exactly `[0, 0]` (quirk: a point with
/// one zero coordinate counts, and `[0, 0]` can never be a real keypoint), optionally
/// inside `[0, w) × [0, h)`, then greedily thinned so that no two kept points are closer
/// than `min_dist` (25 px), in index order. Returns the points and their indices.
pub fn get_valid_keypoints(
    kps: &[[f64; 2]],
    bounds: Option<(f64, f64)>,
    min_dist: f64,
) -> (Vec<[f64; 2]>, Vec<usize>) {
    let mut out_p: Vec<[f64; 2]> = Vec::new();
    let mut out_i = Vec::new();
    for (i, &p) in kps.iter().enumerate() {
        if p[0] == 0.0 && p[1] == 0.0 {
            continue;
        }
        if let Some((w, h)) = bounds
            && !(p[0] >= 0.0 && p[0] < w && p[1] >= 0.0 && p[1] < h)
        {
            continue;
        }
        if out_p.iter().all(|&q| norm2(p, q) >= min_dist) {
            out_p.push(p);
            out_i.push(i);
        }
    }
    (out_p, out_i)
}

const MIN_DIST: f64 = 25.0;

/// What `estimate_homography_ransac` returns.
#[derive(Debug, Clone, Copy)]
pub struct HomographyFit {
    pub h: Option<Homography>,
    pub inlier_ratio: f64,
    /// Mean distance between the reprojected keypoints and the scaled template, in the
    /// scaled template's pixels; infinite without a homography.
    pub avg_reprojection_error: f64,
}

impl HomographyFit {
    const NONE: Self = Self {
        h: None,
        inlier_ratio: 0.0,
        avg_reprojection_error: f64::INFINITY,
    };
}

/// `estimate_homography_ransac`: OpenCV's RANSAC homography from the valid keypoints to
/// the matching vertices of the stretched template (`template::scaled_vertices`), with the
/// threshold `max(1% of the width, 12 px)`, then the inlier ratio and the mean reprojection
/// error over all valid keypoints.
///
/// Quirk: a keypoint's index is its template vertex, so an answer with more than 32
/// keypoints raises (an index past the template) as soon as one of them is valid, and a
/// shorter one is matched to the first vertices.
pub fn estimate_homography_ransac(
    kp: &Keypoints,
    video_width: f64,
    video_height: f64,
) -> R<HomographyFit> {
    let scaled = template::scaled_vertices(video_width, video_height);
    let (valid, idx) =
        get_valid_keypoints(points(kp)?, Some((video_width, video_height)), MIN_DIST);
    if valid.len() < 4 {
        return Ok(HomographyFit::NONE);
    }
    let dst: Vec<[f64; 2]> = idx
        .iter()
        .map(|&i| {
            scaled.get(i).copied().ok_or_else(|| {
                Raise::new(format!(
                    "IndexError: keypoint {i} past the 32-vertex template"
                ))
            })
        })
        .collect::<R<_>>()?;
    let thresh = (video_width * 0.01).max(12.0);
    let src_v: Vector<Point2d> = valid.iter().map(|p| Point2d::new(p[0], p[1])).collect();
    let dst_v: Vector<Point2d> = dst.iter().map(|p| Point2d::new(p[0], p[1])).collect();
    let mut mask = Mat::default();
    // cv2.findHomography's defaults: maxIters 2000, confidence 0.995. RANSAC draws from a
    // local RNG((uint64)-1) on every call, so the result is deterministic and equal to cv2's.
    let h = calib3d::find_homography_ext(
        &src_v,
        &dst_v,
        calib3d::RANSAC,
        thresh,
        &mut mask,
        2000,
        0.995,
    )
    .map_err(|e| Raise::new(format!("cv2.error: {e}")))?;
    if h.empty() || mask.empty() {
        return Ok(HomographyFit::NONE);
    }
    let mut hm = [[0.0; 3]; 3];
    for (r, row) in hm.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = *h
                .at_2d::<f64>(r as i32, c as i32)
                .map_err(|e| Raise::new(e.to_string()))?;
        }
    }
    let total = mask.total();
    let inliers = mask
        .data_bytes()
        .map_err(|e| Raise::new(e.to_string()))?
        .iter()
        .map(|&b| f64::from(b))
        .sum::<f64>();
    let inlier_ratio = inliers / total as f64;
    let reproj = perspective_transform_d(&valid, &hm)?;
    let errors: Vec<f64> = reproj
        .iter()
        .zip(&dst)
        .map(|(&p, &q)| norm2(p, q))
        .collect();
    Ok(HomographyFit {
        h: Some(hm),
        inlier_ratio,
        avg_reprojection_error: mean(&errors),
    })
}

fn h_mat(h: &Homography) -> R<Mat> {
    Mat::from_slice_2d(h).map_err(|e| Raise::new(e.to_string()))
}

/// cv2.perspectiveTransform on float64 points.
fn perspective_transform_d(pts: &[[f64; 2]], h: &Homography) -> R<Vec<[f64; 2]>> {
    let src: Vector<Point2d> = pts.iter().map(|p| Point2d::new(p[0], p[1])).collect();
    let mut dst: Vector<Point2d> = Vector::new();
    opencv::core::perspective_transform(&src, &mut dst, &h_mat(h)?)
        .map_err(|e| Raise::new(e.to_string()))?;
    Ok(dst.iter().map(|p| [p.x, p.y]).collect())
}

/// cv2.perspectiveTransform on one float32 point.
fn perspective_transform_f(p: [f32; 2], h: &Homography) -> R<[f32; 2]> {
    let src: Vector<Point2f> = std::iter::once(Point2f::new(p[0], p[1])).collect();
    let mut dst: Vector<Point2f> = Vector::new();
    opencv::core::perspective_transform(&src, &mut dst, &h_mat(h)?)
        .map_err(|e| Raise::new(e.to_string()))?;
    let q = dst.get(0).map_err(|e| Raise::new(e.to_string()))?;
    Ok([q.x, q.y])
}

/// `detect_scene_transitions`: a frame starts a new segment when at least half of its
/// players (class 2) moved more than 20 px from where the same id was in the previous
/// frame of the answer. Returns the transition frames and the segment of every frame
/// (keyed by `str(int(key))`, in frame order).
pub fn detect_scene_transitions(frames: &Frames) -> R<(Vec<i64>, FrameSegments)> {
    let frame_ids = sorted_int_keys(frames)?;
    let mut transitions = Vec::new();
    let mut frame_to_segment: Vec<(String, usize)> = Vec::new();
    let mut current_segment = 0;
    let mut player_positions: HashMap<&str, [f64; 2]> = HashMap::new();
    for (i, &fid) in frame_ids.iter().enumerate() {
        let key = fid.to_string();
        set_ordered(&mut frame_to_segment, key.clone(), current_segment);
        let frame = frame_of(frames, &key)?;
        if i == 0 {
            for obj in frame.objects.iter().filter(|o| o.is_player()) {
                player_positions.insert(obj.player_id()?, obj.center()?);
            }
            continue;
        }
        let (mut large_jumps, mut total_players) = (0usize, 0usize);
        let mut current: HashMap<&str, [f64; 2]> = HashMap::new();
        for obj in frame.objects.iter().filter(|o| o.is_player()) {
            let pid = obj.player_id()?;
            let center = obj.center()?;
            current.insert(pid, center);
            if let Some(&prev) = player_positions.get(pid)
                && norm2(center, prev) > 20.0
            {
                large_jumps += 1;
            }
            total_players += 1;
        }
        player_positions = current;
        if total_players > 0 && large_jumps as f64 / total_players as f64 >= 0.5 {
            transitions.push(fid);
            current_segment += 1;
        }
    }
    Ok((transitions, frame_to_segment))
}

/// `sorted([int(fid) for fid in frames.keys()])`.
fn sorted_int_keys(frames: &Frames) -> R<Vec<i64>> {
    let mut ids = frames
        .iter()
        .map(|(k, _)| {
            crate::answer::python_int_str(k)
                .ok_or_else(|| Raise::new(format!("ValueError: int({k:?})")))
        })
        .collect::<R<Vec<_>>>()?;
    ids.sort_unstable();
    Ok(ids)
}

/// A dict assignment into an insertion-ordered list.
fn set_ordered<V>(list: &mut Vec<(String, V)>, key: String, value: V) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => list.push((key, value)),
    }
}

/// `defaultdict(list)` of segment → frames, in first-seen order of the segments.
fn group_segments(frame_to_segment: &[(String, usize)]) -> Vec<(usize, Vec<String>)> {
    let mut segs: Vec<(usize, Vec<String>)> = Vec::new();
    for (fid, seg) in frame_to_segment {
        match segs.iter_mut().find(|(s, _)| s == seg) {
            Some((_, v)) => v.push(fid.clone()),
            None => segs.push((*seg, vec![fid.clone()])),
        }
    }
    segs
}

/// One segment's entry of `check_keypoint_stability`.
#[derive(Debug, Clone, Copy)]
pub struct SegmentStability {
    pub keypoint_stability: f64,
    pub homography_stability: f64,
}

/// `check_keypoint_stability`: per segment, `exp(-mean Frobenius distance)` between the
/// norm-1 homographies of successive frames, and `exp(-10 × mean relative change)` of the
/// pairwise distances between the keypoints two successive frames share; 1.0 for a
/// one-frame segment, 0.5 when fewer than two frames have a homography (or no two share
/// two keypoints).
///
/// Quirk: "successive" is in the *string* order of the frame keys ("10" < "9"), and the
/// shared keypoints are thinned without the image bounds.
pub fn check_keypoint_stability(
    frames: &Frames,
    frame_to_segment: &[(String, usize)],
    video_width: f64,
    video_height: f64,
) -> R<BTreeMap<usize, SegmentStability>> {
    let mut out = BTreeMap::new();
    for (segment_id, segment_frames) in group_segments(frame_to_segment) {
        if segment_frames.len() < 2 {
            out.insert(
                segment_id,
                SegmentStability {
                    keypoint_stability: 1.0,
                    homography_stability: 1.0,
                },
            );
            continue;
        }
        let mut homographies: BTreeMap<String, Homography> = BTreeMap::new();
        let mut valid_map: HashMap<String, (Vec<[f64; 2]>, Vec<usize>)> = HashMap::new();
        for fid in &segment_frames {
            let Some(kp) = frame_of(frames, fid)?.keypoints.as_ref() else {
                continue;
            };
            let fit = estimate_homography_ransac(kp, video_width, video_height)?;
            if let Some(h) = fit.h {
                homographies.insert(fid.clone(), h);
                valid_map.insert(
                    fid.clone(),
                    get_valid_keypoints(points(kp)?, None, MIN_DIST),
                );
            }
        }
        if homographies.len() < 2 {
            out.insert(
                segment_id,
                SegmentStability {
                    keypoint_stability: 0.5,
                    homography_stability: 0.5,
                },
            );
            continue;
        }
        // BTreeMap<String, _> iterates in Python's sorted(str) order.
        let ids: Vec<&String> = homographies.keys().collect();
        let hs: Vec<&Homography> = homographies.values().collect();
        let diffs: Vec<f64> = hs
            .windows(2)
            .map(|w| {
                let (a, b) = (normalized(w[0]), normalized(w[1]));
                let mut s = 0.0;
                for r in 0..3 {
                    for c in 0..3 {
                        s += (a[r][c] - b[r][c]).powi(2);
                    }
                }
                s.sqrt()
            })
            .collect();
        let homography_stability = (-mean(&diffs)).exp();

        let mut keypoint_diffs = Vec::new();
        for w in ids.windows(2) {
            let (Some((pk, pi)), Some((ck, ci))) = (valid_map.get(w[0]), valid_map.get(w[1]))
            else {
                continue;
            };
            let common = intersect_sorted(pi, ci);
            if common.len() < 2 {
                continue;
            }
            let at = |kps: &[[f64; 2]], idx: &[usize], i: usize| {
                kps[idx.iter().position(|&x| x == i).unwrap_or(0)]
            };
            let prev: Vec<[f64; 2]> = common.iter().map(|&i| at(pk, pi, i)).collect();
            let curr: Vec<[f64; 2]> = common.iter().map(|&i| at(ck, ci, i)).collect();
            let mut rel = Vec::new();
            for i in 0..common.len() {
                for j in i + 1..common.len() {
                    let pd = norm2(prev[i], prev[j]);
                    let cd = norm2(curr[i], curr[j]);
                    rel.push((pd - cd).abs() / (pd + 1e-6));
                }
            }
            if !rel.is_empty() {
                keypoint_diffs.push(mean(&rel));
            }
        }
        let keypoint_stability = if keypoint_diffs.is_empty() {
            0.5
        } else {
            (-10.0 * mean(&keypoint_diffs)).exp()
        };
        out.insert(
            segment_id,
            SegmentStability {
                keypoint_stability,
                homography_stability,
            },
        );
    }
    Ok(out)
}

fn normalized(h: &Homography) -> Homography {
    let n = h.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
    h.map(|row| row.map(|v| v / n))
}

/// `np.intersect1d`: the sorted unique common values.
fn intersect_sorted(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut v: Vec<usize> = a.iter().copied().filter(|x| b.contains(x)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// `check_player_plausibility`: per segment, `1 - implausible / total` over the player
/// moves between successive frames at most two frame numbers apart, a move of more than
/// 30 px being implausible; 1.0 for a one-frame segment, 0.5 with no move to judge.
pub fn check_player_plausibility(
    frames: &Frames,
    frame_to_segment: &[(String, usize)],
) -> R<BTreeMap<usize, f64>> {
    let mut out = BTreeMap::new();
    for (segment_id, segment_frames) in group_segments(frame_to_segment) {
        let mut ids = segment_frames
            .iter()
            .map(|k| {
                crate::answer::python_int_str(k)
                    .ok_or_else(|| Raise::new(format!("ValueError: int({k:?})")))
            })
            .collect::<R<Vec<i64>>>()?;
        ids.sort_unstable();
        if ids.len() < 2 {
            out.insert(segment_id, 1.0);
            continue;
        }
        let mut positions: HashMap<&str, [f64; 2]> = HashMap::new();
        let (mut implausible, mut total) = (0usize, 0usize);
        for (i, &fid) in ids.iter().enumerate() {
            let key = fid.to_string();
            let frame = frame_of(frames, &key)?;
            let mut current: HashMap<&str, [f64; 2]> = HashMap::new();
            for obj in frame.objects.iter().filter(|o| o.is_player()) {
                let pid = obj.player_id()?;
                let center = obj.center()?;
                current.insert(pid, center);
                if i > 0
                    && let Some(&prev) = positions.get(pid)
                    && fid - ids[i - 1] <= 2
                {
                    total += 1;
                    if norm2(center, prev) > 30.0 {
                        implausible += 1;
                    }
                }
            }
            positions = current;
        }
        let score = if total > 0 {
            (1.0 - implausible as f64 / total as f64).max(0.0)
        } else {
            0.5
        };
        out.insert(segment_id, score);
    }
    Ok(out)
}

/// What `score_player_positions` returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlayerPositions {
    /// 0..100: every jump of a track scores 1, except 2–10 px jumps, which score 0.5.
    pub player_score: f64,
    pub avg_jump: f64,
    pub total_jumps: usize,
    pub biggest_jump: f64,
    pub large_jumps: usize,
}

/// `score_player_positions`: the jumps of every player track (class 2 objects by id,
/// sorted by frame). Quirk: only "medium" 2–10 px jumps are penalised; jumps over 10 px
/// score as well as still players.
pub fn score_player_positions(frames: &Frames) -> R<PlayerPositions> {
    let mut tracks: Tracks = Vec::new();
    for (key, frame) in frames.iter() {
        let frame = frame.as_ref().map_err(Clone::clone)?;
        for obj in frame.objects.iter().filter(|o| o.is_player()) {
            let center = obj.center()?;
            let pid = obj.player_id()?;
            let fid = crate::answer::python_int_str(key)
                .ok_or_else(|| Raise::new(format!("ValueError: int({key:?})")))?;
            match tracks.iter_mut().find(|(p, _)| *p == pid) {
                Some((_, t)) => t.push((fid, center)),
                None => tracks.push((pid, vec![(fid, center)])),
            }
        }
    }
    let mut r = PlayerPositions::default();
    let (mut total_jump, mut total_score, mut max_score) = (0.0, 0.0, 0.0);
    for (_, track) in &mut tracks {
        track.sort_by_key(|&(f, _)| f); // stable, as Python's sort
        for w in track.windows(2) {
            let jump = norm2(w[1].1, w[0].1);
            total_jump += jump;
            r.total_jumps += 1;
            r.biggest_jump = r.biggest_jump.max(jump);
            if jump <= 2.0 {
                total_score += 1.0;
            } else if jump <= 10.0 {
                total_score += 0.5;
            } else {
                r.large_jumps += 1;
                total_score += 1.0;
            }
            max_score += 1.0;
        }
    }
    r.avg_jump = if r.total_jumps > 0 {
        total_jump / r.total_jumps as f64
    } else {
        0.0
    };
    r.player_score = if max_score > 0.0 {
        total_score / max_score * 100.0
    } else {
        0.0
    };
    Ok(r)
}

/// `calculate_keypoint_score`: the mean of the inlier percentage and `100 - error` (≥ 0).
pub fn calculate_keypoint_score(inlier_ratio: f64, avg_reprojection_error: f64) -> f64 {
    let inlier_score = (inlier_ratio * 100.0).min(100.0);
    let reprojection_score = (100.0 - avg_reprojection_error).max(0.0);
    (inlier_score + reprojection_score) / 2.0
}

/// `filter_valid_bboxes_for_keypoints`: boxes at least 15×40 px (the ball, class 0, always
/// passes) and not "touching the scoreboard zone". Quirk: that zone is the whole band
/// `y ≤ 150 px` across the frame, whatever the frame's height, so every object whose top
/// edge is in the top 150 px is dropped.
fn filter_valid_bboxes(objs: &[Object], video_width: f64) -> R<Vec<&Object>> {
    let mut out = Vec::new();
    for o in objs {
        let [x1, y1, x2, y2] = o.corners()?;
        let large_enough = o.class_id == Some(0.0) || (x2 - x1 >= 15.0 && y2 - y1 >= 40.0);
        let touching = !(x2 < 0.0 || x1 > video_width || y2 < 0.0 || y1 > 150.0);
        if large_enough && !touching {
            out.push(o);
        }
    }
    Ok(out)
}

/// `point_to_segment_dist`.
fn point_to_segment_dist(px: f64, py: f64, s: [f64; 4]) -> f64 {
    let [x1, y1, x2, y2] = s;
    let (vx, vy) = (x2 - x1, y2 - y1);
    let (wx, wy) = (px - x1, py - y1);
    let t = (wx * vx + wy * vy) / (vx * vx + vy * vy);
    // Python's max(0, min(1, t)): a NaN t (zero-length segment) makes min() return 1.
    let t = if t.is_nan() { 1.0 } else { t.clamp(0.0, 1.0) };
    let (projx, projy) = (x1 + t * vx, y1 + t * vy);
    (px - projx).hypot(py - projy)
}

/// The validator's logistic: 1 at distance 0 (0.9955), 0.5 at 2% of the unit, ~0 past 4%.
fn logistic(d: f64) -> f64 {
    1.0 / (1.0 + ((d - 0.02) / 0.0037).exp())
}

/// `mean_keypoint_to_line_distance_score`: the logistic of the mean distance from each
/// valid keypoint to its nearest detected pitch-line segment, both normalised by the frame
/// size (x by the width, y by the height); 0.5 without a valid keypoint, 0 without lines.
pub fn mean_keypoint_to_line_distance_score(
    keypoints: &[[f64; 2]],
    segments: &[Segment],
    video_width: f64,
    video_height: f64,
) -> f64 {
    let (valid, _) = get_valid_keypoints(keypoints, Some((video_width, video_height)), MIN_DIST);
    if valid.is_empty() {
        return 0.5;
    }
    if segments.is_empty() {
        return 0.0;
    }
    let norm_segs: Vec<[f64; 4]> = segments
        .iter()
        .map(|s| {
            [
                f64::from(s[0]) / video_width,
                f64::from(s[1]) / video_height,
                f64::from(s[2]) / video_width,
                f64::from(s[3]) / video_height,
            ]
        })
        .collect();
    let distances: Vec<f64> = valid
        .iter()
        .map(|p| {
            let (u, v) = (p[0] / video_width, p[1] / video_height);
            norm_segs
                .iter()
                .map(|&s| point_to_segment_dist(u, v, s))
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    logistic(mean(&distances))
}

/// `calculate_keypoint_to_player_scale_ratio`: mean pairwise distance of the valid
/// keypoints over the mean pairwise distance of the valid objects' centres (1.0 when
/// either has fewer than two).
pub fn calculate_keypoint_to_player_scale_ratio(
    keypoints: &[[f64; 2]],
    frame: &Frame,
    video_width: f64,
    video_height: f64,
) -> R<f64> {
    let (valid, _) = get_valid_keypoints(keypoints, Some((video_width, video_height)), MIN_DIST);
    if valid.len() < 2 {
        return Ok(1.0);
    }
    let mean_kp = mean_pairwise(&valid);
    let centers: Vec<[f64; 2]> = filter_valid_bboxes(&frame.objects, video_width)?
        .iter()
        .map(|o| o.center())
        .collect::<R<_>>()?;
    if centers.len() < 2 {
        return Ok(1.0);
    }
    Ok(mean_kp / (mean_pairwise(&centers) + 1e-6))
}

fn mean_pairwise(p: &[[f64; 2]]) -> f64 {
    let mut d = Vec::new();
    for i in 0..p.len() {
        for j in i + 1..p.len() {
            d.push(norm2(p[i], p[j]));
        }
    }
    mean(&d)
}

/// `fraction_objects_inside`: the share of valid objects whose centre, mapped through the
/// frame's homography, falls inside the pitch outline (vertices 1, 6, 30, 25).
///
/// Quirk: the outline is in the template's centimetres (0..12000 × 0..7000) while the
/// homography maps to the stretched pixel template (`template::scaled_vertices`, about
/// 0..W·12/7 × 0..H·7/12), so the test is really "x ≥ 0 and y ≥ 0 on the pitch, and not
/// absurdly far": nearly every object on the near side of the pitch's far corner counts.
pub fn fraction_objects_inside(frame: &Frame, h: &Homography, video_width: f64) -> R<f64> {
    let verts = template::vertices();
    let contour: Vector<Point> = [0usize, 5, 29, 24]
        .iter()
        .map(|&i| Point::new(verts[i][0] as f32 as i32, verts[i][1] as f32 as i32))
        .collect();
    let (mut inside, mut total) = (0usize, 0usize);
    for obj in filter_valid_bboxes(&frame.objects, video_width)? {
        let [x0, y0, x1, y1] = obj.corners()?;
        let c = [((x0 + x1) / 2.0) as f32, ((y0 + y1) / 2.0) as f32];
        let p = perspective_transform_f(c, h)?;
        let test = imgproc::point_polygon_test(&contour, Point2f::new(p[0], p[1]), false)
            .map_err(|e| Raise::new(e.to_string()))?;
        if test >= 0.0 {
            inside += 1;
        }
        total += 1;
    }
    Ok(if total > 0 {
        inside as f64 / total as f64
    } else {
        0.0
    })
}

/// `compute_scene_keypoint_consistency`: the validated frames split into runs of
/// consecutive frame numbers ("scenes"); in each, the first frame scores 1 and every other
/// the logistic of the mean move of the keypoints it shares with the previous frame, over
/// the frame diagonal. A frame scores 0 when it or the previous one is missing from the
/// answer, when they share no valid keypoint, or (quirk: the exactly-32 rule) when either
/// has other than exactly 32 keypoints; 1 when both are all `[0, 0]`. Returns the
/// length-weighted mean over the scenes (1.0 with nothing to validate).
pub fn compute_scene_keypoint_consistency(
    frames: &Frames,
    valid_frame_ids: &[i64],
    video_width: f64,
    video_height: f64,
) -> R<f64> {
    if valid_frame_ids.is_empty() {
        return Ok(1.0);
    }
    let mut ids: Vec<i64> = valid_frame_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut scenes: Vec<Vec<i64>> = vec![vec![ids[0]]];
    for w in ids.windows(2) {
        if w[1] == w[0] + 1 {
            scenes
                .last_mut()
                .unwrap_or_else(|| unreachable!())
                .push(w[1]);
        } else {
            scenes.push(vec![w[1]]);
        }
    }
    let diag = video_width.hypot(video_height);
    let (mut total_len, mut weighted_sum) = (0usize, 0.0);
    for scene in &scenes {
        let mut scores = Vec::with_capacity(scene.len());
        for (idx, &fid) in scene.iter().enumerate() {
            if idx == 0 {
                scores.push(1.0);
                continue;
            }
            let (prev_key, key) = (scene[idx - 1].to_string(), fid.to_string());
            let (Some(_), Some(_)) = (frames.get(&prev_key), frames.get(&key)) else {
                scores.push(0.0);
                continue;
            };
            let prev = keypoints(frame_of(frames, &prev_key)?)?;
            let curr = keypoints(frame_of(frames, &key)?)?;
            if prev.raw_len != template::KEYPOINT_COUNT || curr.raw_len != template::KEYPOINT_COUNT
            {
                scores.push(0.0);
                continue;
            }
            let bounds = Some((video_width, video_height));
            let (kp_prev, idx_prev) = get_valid_keypoints(points(prev)?, bounds, MIN_DIST);
            let (kp_curr, idx_curr) = get_valid_keypoints(points(curr)?, bounds, MIN_DIST);
            if prev.all_zero_pairs && curr.all_zero_pairs {
                scores.push(1.0);
                continue;
            }
            let common = intersect_sorted(&idx_prev, &idx_curr);
            if common.is_empty() {
                scores.push(0.0);
                continue;
            }
            let at = |kps: &[[f64; 2]], ix: &[usize], i: usize| {
                kps[ix.iter().position(|&x| x == i).unwrap_or(0)]
            };
            let dists: Vec<f64> = common
                .iter()
                .map(|&i| norm2(at(&kp_curr, &idx_curr, i), at(&kp_prev, &idx_prev, i)))
                .collect();
            scores.push(logistic(mean(&dists) / diag));
        }
        let avg = if scores.is_empty() {
            1.0
        } else {
            mean(&scores)
        };
        total_len += scores.len();
        weighted_sum += avg * scores.len() as f64;
    }
    Ok(if total_len > 0 {
        weighted_sum / total_len as f64
    } else {
        1.0
    })
}
