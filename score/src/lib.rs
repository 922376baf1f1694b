//! `pitchside-score`: the keypoint half of the Score Vision (SN44) validator's score,
//! computed locally from the video and an answer, equal to what the validator's own code
//! gives.
//!
//! This is a port of `validator/evaluation/keypoint_scoring.py` of
//! `score-technologies/score-vision` (commit 1791fe198fe6f66a1c69100491017ed69cdb94e3,
//! 2025-08-14), together with the few lines of `evaluation.py` / `evaluation_loop.py` that
//! prepare its inputs (`evaluate_response`, `validate_keypoints`,
//! `evaluate_pending_responses`) and the rewrite `send_challenge.py` applies to every
//! answer before storing it (`optimize_response_data`, [`rewrite`]): the validator scores
//! the stored form, frames keyed by number and every coordinate rounded to 2 decimals, so
//! Pitchside does too. It runs on OpenCV's own functions where the Python does
//! (`findHomography` with RANSAC, `perspectiveTransform`, `pointPolygonTest`, the
//! top-hat/Canny/`HoughLinesP` line detection), so the numbers agree to the digits that
//! matter; `tools/score/golden.py` runs the Python on the same inputs and the tests compare.
//!
//! What cannot be mirrored: the validator picks the frames to validate with a CLIP model
//! ("a football pitch" vs "a close-up of a football player"), which cannot be fetched here;
//! Pitchside validates every frame that decodes (what the validator does when CLIP accepts
//! them all), or the frames the caller names. The bbox half of the validator's score (also
//! CLIP) is out of scope.
//!
//! The validator's quality score is `0.5 × bbox + 0.5 × keypoint_final_score / 100`
//! (`calculate_score.py`); [`KeypointScore::final_score`] is on the 0..100 scale of
//! `calculate_final_score_keypoints`.

pub mod analytics;
pub mod answer;
pub mod lines;
pub mod radar;
pub mod rewrite;
pub mod scoring;
pub mod synthetic;
pub mod teams;
pub mod template;

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use answer::{Frames, Raise, parse_answer};
pub use lines::VideoEvidence;

use scoring::{
    calculate_keypoint_score, calculate_keypoint_to_player_scale_ratio, check_keypoint_stability,
    check_player_plausibility, compute_scene_keypoint_consistency, detect_scene_transitions,
    estimate_homography_ransac, fraction_objects_inside, frame_of, get_valid_keypoints,
    mean_keypoint_to_line_distance_score, score_player_positions,
};

/// Errors that stop the score from being computed at all (the validator would fail the
/// response or the challenge rather than score it).
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("video: {0}")]
    Video(String),
    #[error("answer: {0}")]
    Answer(String),
    /// `optimize_response_data` raises: the validator stores no response, so no score.
    #[error(
        "answer: the validator would not store this answer, so it gets no score: {0} \
         (in send_challenge.py's optimize_response_data)"
    )]
    NotStored(String),
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("opencv: {0}")]
    OpenCv(#[from] opencv::Error),
}

/// The validator skips a challenge whose video has fewer pitch frames than this
/// (`evaluate_pending_responses`): no answer gets a score then.
pub const MIN_VALID_FRAMES: usize = 75;

/// The keypoint score of one answer, with every component the validator computes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KeypointScore {
    pub video_width: u32,
    pub video_height: u32,
    /// Frames validated (`len(frames_to_validate)`).
    pub frames_to_validate: usize,
    /// Answer frames among them.
    pub answer_frames: usize,
    /// Frames with a homography (`valid_frames`).
    pub valid_frames: usize,
    pub avg_inlier_ratio: f64,
    /// `None` where the validator has infinity (no frame has a homography).
    pub avg_reprojection_error: Option<f64>,
    /// 0..100: mean over frames with a homography of (inlier % + max(0, 100 − error)) / 2.
    pub avg_keypoint_score: f64,
    /// 0..1: keypoints close to the pitch lines detected in the frame.
    pub mean_on_line: f64,
    /// 0..1: objects whose centre maps inside the pitch outline.
    pub mean_inside: f64,
    /// Frames where at least half the players jumped more than 20 px (camera cuts).
    pub transitions: Vec<i64>,
    /// Continuous segments those transitions cut the answer into.
    pub segments: usize,
    /// 0..100: player track smoothness (2–10 px jumps count half).
    pub player_score: f64,
    pub avg_jump: f64,
    pub total_jumps: usize,
    pub biggest_jump: f64,
    pub large_jumps: usize,
    /// 0..1: per-segment stability of the keypoints' relative distances, averaged over frames
    /// with a homography.
    pub avg_keypoint_stability: f64,
    /// 0..1: per-segment stability of the homography (computed, not used in the final score).
    pub avg_homography_stability: f64,
    /// 0..1: share of player moves ≤ 30 px per frame, averaged like the stability.
    pub avg_player_plausibility: f64,
    /// 0..1: frame-to-frame keypoint consistency over the validated frames (a multiplier).
    pub scene_consistency: f64,
    /// 0..1: keypoint spread over player spread, capped (a multiplier, with `scale_valid`).
    pub mean_scale: f64,
    /// 0..1: frames with a homography over 40% of the validated frames, capped at 1.
    pub scale_valid: f64,
    /// 0..100: `calculate_final_score_keypoints`.
    pub final_score: f64,
    /// 0..1: `final_score / 100`, what the validator records (`keypoints_final_score`), half
    /// of its quality score.
    pub keypoints_final_score: f64,
    /// Why the stored answer holds no frames although the answer has some (a `frames` that
    /// is not a list): the answer then scores 0.
    pub frames_dropped: Option<String>,
    /// Where the validator's code raises (and its `validate_keypoints` scores 0).
    pub validator_error: Option<String>,
    /// Fewer than [`MIN_VALID_FRAMES`] validated frames: the validator would skip the challenge.
    pub validator_would_skip: bool,
    /// The validator's per-frame results (frames with a homography), in answer order.
    pub per_frame: Vec<FrameScore>,
}

/// One entry of the validator's per-frame `results`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FrameScore {
    pub frame: String,
    pub inlier_ratio: f64,
    pub avg_reprojection_error: f64,
    pub keypoint_score: f64,
    pub segment_id: usize,
    pub frac_inside: f64,
    pub frac_on_line: f64,
    pub scale_ratio: f64,
    /// The frame's segment's share of plausible player moves (`player_plausibility`).
    pub player_plausibility: f64,
    /// The frame's segment's keypoint stability (`keypoint_stability`).
    pub keypoint_stability: f64,
}

/// Score the answer file against the video.
pub fn score_answer(video: &Path, answer: &Path) -> Result<KeypointScore, ScoreError> {
    let json = read_answer(answer)?;
    // An answer the validator would not store fails here, before the video is read.
    rewrite::optimize_response_data(&json)?;
    let evidence = VideoEvidence::from_video(video)?;
    score_answer_json(&evidence, &json, None)
}

/// The largest answer file read: a 30 s challenge's answer is a few MB.
pub const MAX_ANSWER_BYTES: u64 = 256 << 20;

/// Reads an answer file: a regular file (a FIFO or a device is refused by its kind, not
/// waited on or read without end) of at most [`MAX_ANSWER_BYTES`].
fn read_answer(answer: &Path) -> Result<Vec<u8>, ScoreError> {
    use std::io::Read;
    let io = |source| ScoreError::Io {
        path: answer.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(answer).map_err(io)?;
    if !meta.is_file() {
        return Err(ScoreError::Answer(format!(
            "{} is not a regular file (a directory, FIFO or device)",
            answer.display()
        )));
    }
    let mut json = Vec::new();
    std::fs::File::open(answer)
        .map_err(io)?
        .take(MAX_ANSWER_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(io)?;
    if json.len() as u64 > MAX_ANSWER_BYTES {
        return Err(ScoreError::Answer(format!(
            "{} is larger than {MAX_ANSWER_BYTES} bytes",
            answer.display()
        )));
    }
    Ok(json)
}

/// Score an answer (JSON bytes) against evidence already taken from the video; `frames`
/// overrides the frames to validate (the validator's CLIP selection).
pub fn score_answer_json(
    evidence: &VideoEvidence,
    json: &[u8],
    frames: Option<&[i64]>,
) -> Result<KeypointScore, ScoreError> {
    let to_validate = frames.unwrap_or(&evidence.frames_to_validate);
    let (parsed, frames_dropped) = parse_answer(json, to_validate)?;
    let mut score = KeypointScore {
        video_width: evidence.width,
        video_height: evidence.height,
        frames_to_validate: to_validate.len(),
        answer_frames: parsed.len(),
        validator_would_skip: to_validate.len() < MIN_VALID_FRAMES,
        frames_dropped,
        ..Default::default()
    };
    if let Err(Raise(msg)) = process_input_file(&parsed, evidence, to_validate, &mut score) {
        // validate_keypoints catches every exception and returns a final score of 0.
        score = KeypointScore {
            validator_error: Some(msg),
            video_width: score.video_width,
            video_height: score.video_height,
            frames_to_validate: score.frames_to_validate,
            answer_frames: score.answer_frames,
            validator_would_skip: score.validator_would_skip,
            frames_dropped: score.frames_dropped,
            ..Default::default()
        };
    }
    score.keypoints_final_score = score.final_score / 100.0;
    Ok(score)
}

/// `process_input_file` followed by `calculate_final_score_keypoints`.
fn process_input_file(
    frames: &Frames,
    ev: &VideoEvidence,
    to_validate: &[i64],
    out: &mut KeypointScore,
) -> Result<(), Raise> {
    let (w, h) = (f64::from(ev.width), f64::from(ev.height));
    let (transitions, frame_to_segment) = detect_scene_transitions(frames)?;
    let scene = compute_scene_keypoint_consistency(frames, to_validate, w, h)?;
    let stability = check_keypoint_stability(frames, &frame_to_segment, w, h)?;
    let plausibility = check_player_plausibility(frames, &frame_to_segment)?;

    let (mut on_line, mut inside, mut scale) = (Vec::new(), Vec::new(), Vec::new());
    let (mut total_inlier, mut total_err, mut total_kp) = (0.0, 0.0, 0.0);
    let (mut kp_stab, mut h_stab, mut plaus) = (Vec::new(), Vec::new(), Vec::new());
    for (key, _) in frames.iter() {
        let frame = frame_of(frames, key)?;
        let kp = frame
            .keypoints
            .as_ref()
            .ok_or_else(|| Raise::new("KeyError: 'keypoints'"))?;
        let pts = kp.points.as_deref().map_err(Clone::clone)?;
        let (valid_kps, _) = get_valid_keypoints(pts, Some((w, h)), 25.0);
        let fit = estimate_homography_ransac(kp, w, h)?;
        let Some(hm) = fit.h else { continue };
        // `[obj['bbox'] for obj in objects]`: unused, but it raises on an object without one.
        for o in &frame.objects {
            o.bbox
                .as_ref()
                .ok_or_else(|| Raise::new("KeyError: 'bbox'"))?;
        }
        let keypoint_score = calculate_keypoint_score(fit.inlier_ratio, fit.avg_reprojection_error);
        // pitch_lines_by_frame is keyed by str(idx): only a canonical key finds its lines.
        let lines = answer::python_int_str(key)
            .filter(|n| n.to_string() == key)
            .and_then(|n| ev.lines.get(&n))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let frac_on_line = mean_keypoint_to_line_distance_score(&valid_kps, lines, w, h);
        let frac_inside = fraction_objects_inside(frame, &hm, w)?;
        let scale_ratio = calculate_keypoint_to_player_scale_ratio(pts, frame, w, h)?.min(1.5);
        let segment_id = frame_to_segment
            .iter()
            .find(|(k, _)| k == key)
            .map_or(0, |&(_, s)| s);
        let st = stability.get(&segment_id).copied();
        let keypoint_stability = st.map_or(1.0, |s| s.keypoint_stability);
        let player_plausibility = plausibility.get(&segment_id).copied().unwrap_or(1.0);
        kp_stab.push(keypoint_stability);
        h_stab.push(st.map_or(1.0, |s| s.homography_stability));
        plaus.push(player_plausibility);
        out.per_frame.push(FrameScore {
            frame: key.to_string(),
            inlier_ratio: fit.inlier_ratio,
            avg_reprojection_error: fit.avg_reprojection_error,
            keypoint_score,
            segment_id,
            frac_inside,
            frac_on_line,
            scale_ratio,
            player_plausibility,
            keypoint_stability,
        });
        total_inlier += fit.inlier_ratio;
        total_err += fit.avg_reprojection_error;
        total_kp += keypoint_score;
        on_line.push(frac_on_line);
        inside.push(frac_inside);
        scale.push(scale_ratio);
    }
    let mean_or = |v: &[f64], d: f64| {
        if v.is_empty() {
            d
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let valid = out.per_frame.len();
    out.valid_frames = valid;
    out.mean_on_line = mean_or(&on_line, 0.0);
    out.mean_inside = mean_or(&inside, 0.0);
    out.mean_scale = mean_or(&scale, 0.0).min(1.0);
    if to_validate.is_empty() {
        return Err(Raise::new("ZeroDivisionError: no frame to validate"));
    }
    out.scale_valid = (valid as f64 / to_validate.len() as f64 / 0.4).clamp(0.0, 1.0);
    out.avg_inlier_ratio = if valid > 0 {
        total_inlier / valid as f64
    } else {
        0.0
    };
    out.avg_reprojection_error = (valid > 0).then(|| total_err / valid as f64);
    out.avg_keypoint_score = if valid > 0 {
        total_kp / valid as f64
    } else {
        0.0
    };
    let pp = score_player_positions(frames)?;
    out.player_score = pp.player_score;
    out.avg_jump = pp.avg_jump;
    out.total_jumps = pp.total_jumps;
    out.biggest_jump = pp.biggest_jump;
    out.large_jumps = pp.large_jumps;
    out.avg_keypoint_stability = mean_or(&kp_stab, 0.0);
    out.avg_homography_stability = mean_or(&h_stab, 0.0);
    out.avg_player_plausibility = mean_or(&plaus, 0.0);
    out.segments = {
        let mut s: Vec<usize> = frame_to_segment.iter().map(|&(_, s)| s).collect();
        s.dedup();
        s.len()
    };
    out.transitions = transitions;
    out.scene_consistency = scene;
    out.final_score = calculate_final_score_keypoints(out);
    Ok(())
}

/// `calculate_final_score_keypoints`: 25% keypoint score, 40% on-line, 20% inside, 5%
/// keypoint stability, 10% players (mean of plausibility and track smoothness), all on
/// 0..100, times the scene consistency and the mean of `mean_scale` and `scale_valid`.
pub fn calculate_final_score_keypoints(s: &KeypointScore) -> f64 {
    let player_final = (s.avg_player_plausibility * 100.0 + s.player_score) / 2.0;
    let weighted = 0.25 * s.avg_keypoint_score
        + 0.4 * (s.mean_on_line * 100.0)
        + 0.2 * (s.mean_inside * 100.0)
        + 0.05 * (s.avg_keypoint_stability * 100.0)
        + 0.1 * player_final;
    weighted * (s.scene_consistency * ((s.mean_scale + s.scale_valid) / 2.0))
}

impl fmt::Display for KeypointScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "keypoint score (Score Vision validator, {}x{}, {} frames validated, {} in the answer)",
            self.video_width, self.video_height, self.frames_to_validate, self.answer_frames
        )?;
        if let Some(why) = &self.frames_dropped {
            writeln!(f, "  {why}")?;
        }
        if let Some(e) = &self.validator_error {
            writeln!(f, "  the validator's code raises on this answer: {e}")?;
            writeln!(f, "  final keypoint score           0.00 / 100")?;
            return Ok(());
        }
        let err = self
            .avg_reprojection_error
            .map_or("inf".to_string(), |e| format!("{e:.3}"));
        let rows: [(&str, String, &str); 17] = [
            (
                "frames with a homography",
                format!("{}", self.valid_frames),
                "",
            ),
            (
                "avg inlier ratio",
                format!("{:.4}", self.avg_inlier_ratio),
                "",
            ),
            (
                "avg reprojection error",
                err,
                "px of the stretched template",
            ),
            (
                "keypoint score",
                format!("{:.3}", self.avg_keypoint_score),
                "/100, weight 0.25",
            ),
            (
                "on line",
                format!("{:.4}", self.mean_on_line),
                "weight 0.40",
            ),
            (
                "players inside the pitch",
                format!("{:.4}", self.mean_inside),
                "weight 0.20",
            ),
            (
                "keypoint stability",
                format!("{:.4}", self.avg_keypoint_stability),
                "weight 0.05",
            ),
            (
                "homography stability",
                format!("{:.4}", self.avg_homography_stability),
                "not weighted",
            ),
            (
                "player plausibility",
                format!("{:.4}", self.avg_player_plausibility),
                "half of weight 0.10",
            ),
            (
                "player track score",
                format!("{:.3}", self.player_score),
                "/100, half of weight 0.10",
            ),
            (
                "scene transitions",
                format!(
                    "{} ({} segment{})",
                    self.transitions.len(),
                    self.segments,
                    if self.segments == 1 { "" } else { "s" }
                ),
                "",
            ),
            (
                "player jumps",
                format!(
                    "{} (avg {:.2} px, max {:.2}, {} large)",
                    self.total_jumps, self.avg_jump, self.biggest_jump, self.large_jumps
                ),
                "",
            ),
            (
                "scene consistency",
                format!("{:.4}", self.scene_consistency),
                "multiplier",
            ),
            (
                "mean scale",
                format!("{:.4}", self.mean_scale),
                "multiplier, with scale valid",
            ),
            ("scale valid", format!("{:.4}", self.scale_valid), ""),
            (
                "final keypoint score",
                format!("{:.3}", self.final_score),
                "/100",
            ),
            (
                "keypoints_final_score",
                format!("{:.5}", self.keypoints_final_score),
                "what the validator records (0..1)",
            ),
        ];
        for (name, value, note) in rows {
            writeln!(f, "  {name:<28} {value:>14}  {note}")?;
        }
        if self.validator_would_skip {
            writeln!(
                f,
                "  note: fewer than {MIN_VALID_FRAMES} validated frames; the validator would skip this challenge"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod read_tests {
    use super::*;

    #[test]
    fn an_answer_must_be_a_regular_file_of_bounded_size() {
        let e = read_answer(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = read_answer(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let f = dir.path().join("a.json");
        std::fs::write(&f, "{}").unwrap();
        assert_eq!(read_answer(&f).unwrap(), b"{}");
    }
}
