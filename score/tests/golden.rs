//! `pitchside score` against the validator's own code: the golden results in
//! tests/fixtures were written by tools/score/golden.py, which runs score-vision's
//! `optimize_response_data` (the rewrite the validator stores answers through) and
//! keypoint_scoring.py on the same video and answers, on Debian's OpenCV 4.6 (the build
//! Pitchside links). The stored form must be the same (a digest of every stored number),
//! the final score agree within 1e-4 and every component within 1e-6, and the pitch lines
//! found in every frame exactly.

use std::path::{Path, PathBuf};

use pitchside_score::rewrite::optimize_response_data;
use pitchside_score::{KeypointScore, ScoreError, VideoEvidence, score_answer_json, synthetic};
use serde_json::Value;

/// The bound on the final score (0..100).
const FINAL_TOL: f64 = 1e-4;
/// Every component: the same OpenCV build on both sides agrees to ~1e-12.
const TOL: f64 = 1e-6;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn golden(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn close(what: &str, ours: f64, theirs: &Value, errors: &mut Vec<String>) {
    close_within(what, ours, theirs, TOL, errors)
}

fn close_within(what: &str, ours: f64, theirs: &Value, tol: f64, errors: &mut Vec<String>) {
    let ok = match theirs.as_f64() {
        Some(t) => (ours - t).abs() <= tol || (ours.is_nan() && t.is_nan()),
        None => false,
    };
    if !ok {
        errors.push(format!("{what}: pitchside {ours} vs validator {theirs}"));
    }
}

/// Compare one answer's score with the golden entry; returns the differences.
fn compare(name: &str, s: &KeypointScore, g: &Value) -> Vec<String> {
    let mut e = Vec::new();
    close_within(
        &format!("{name}.final_score"),
        s.final_score,
        &g["final_score"],
        FINAL_TOL,
        &mut e,
    );
    close(
        &format!("{name}.keypoints_final_score"),
        s.keypoints_final_score,
        &Value::from(g["final_score"].as_f64().unwrap() / 100.0),
        &mut e,
    );
    assert_eq!(
        s.answer_frames as u64,
        g["answer_frames"].as_u64().unwrap(),
        "{name}: answer frames"
    );
    match (&s.validator_error, g["validator_error"].as_str()) {
        (None, None) => {}
        (Some(_), Some(_)) => return e,
        (ours, theirs) => {
            e.push(format!(
                "{name}: validator error pitchside {ours:?} vs validator {theirs:?}"
            ));
            return e;
        }
    }
    let f = |k: &str| &g[k];
    assert_eq!(
        s.valid_frames as u64,
        f("valid_frames").as_u64().unwrap(),
        "{name}: valid frames"
    );
    assert_eq!(
        s.total_jumps as u64,
        f("total_jumps").as_u64().unwrap(),
        "{name}: total jumps"
    );
    assert_eq!(
        s.large_jumps as u64,
        f("large_jumps").as_u64().unwrap(),
        "{name}: large jumps"
    );
    assert_eq!(
        s.segments as u64,
        f("segments").as_u64().unwrap(),
        "{name}: segments"
    );
    let transitions: Vec<i64> = serde_json::from_value(f("transitions").clone()).unwrap();
    assert_eq!(s.transitions, transitions, "{name}: transitions");
    match (
        s.avg_reprojection_error,
        f("avg_reprojection_error").as_f64(),
    ) {
        (Some(a), Some(_)) => close(
            &format!("{name}.avg_reprojection_error"),
            a,
            f("avg_reprojection_error"),
            &mut e,
        ),
        (None, None) => {}
        (a, b) => e.push(format!("{name}.avg_reprojection_error: {a:?} vs {b:?}")),
    }
    for (k, v) in [
        ("avg_inlier_ratio", s.avg_inlier_ratio),
        ("avg_keypoint_score", s.avg_keypoint_score),
        ("mean_on_line", s.mean_on_line),
        ("mean_inside", s.mean_inside),
        ("player_score", s.player_score),
        ("avg_jump", s.avg_jump),
        ("biggest_jump", s.biggest_jump),
        ("avg_keypoint_stability", s.avg_keypoint_stability),
        ("avg_homography_stability", s.avg_homography_stability),
        ("avg_player_plausibility", s.avg_player_plausibility),
        ("scene_consistency", s.scene_consistency),
        ("mean_scale", s.mean_scale),
        ("scale_valid", s.scale_valid),
    ] {
        close(&format!("{name}.{k}"), v, f(k), &mut e);
    }
    let per_frame = f("per_frame").as_object().unwrap();
    assert_eq!(
        s.per_frame.len(),
        per_frame.len(),
        "{name}: frames with a homography"
    );
    for fr in &s.per_frame {
        let Some(gf) = per_frame.get(&fr.frame) else {
            e.push(format!(
                "{name}: frame {} has a homography only in pitchside",
                fr.frame
            ));
            continue;
        };
        let p = format!("{name}[{}]", fr.frame);
        close(
            &format!("{p}.inlier_ratio"),
            fr.inlier_ratio,
            &gf["inlier_ratio"],
            &mut e,
        );
        for (k, v) in [
            ("avg_reprojection_error", fr.avg_reprojection_error),
            ("keypoint_score", fr.keypoint_score),
            ("player_plausibility", fr.player_plausibility),
            ("keypoint_stability", fr.keypoint_stability),
        ] {
            close(&format!("{p}.{k}"), v, &gf[k], &mut e);
        }
        close(
            &format!("{p}.frac_inside"),
            fr.frac_inside,
            &gf["frac_inside"],
            &mut e,
        );
        close(
            &format!("{p}.frac_on_line"),
            fr.frac_on_line,
            &gf["frac_on_line"],
            &mut e,
        );
        if fr.segment_id as u64 != gf["segment_id"].as_u64().unwrap() {
            e.push(format!(
                "{p}.segment_id: {} vs {}",
                fr.segment_id, gf["segment_id"]
            ));
        }
    }
    e
}

/// The validator's pitch lines, frame by frame, must be exactly Pitchside's: the golden
/// file holds each frame's segment count and checksum (tools/score/golden.py).
fn compare_lines(ev: &VideoEvidence, g: &Value) {
    let lines = g["pitch_lines"].as_object().unwrap();
    assert_eq!(ev.lines.len(), lines.len(), "decoded frames");
    let mut differing = Vec::new();
    for (k, v) in lines {
        let [count, sum]: [i64; 2] = serde_json::from_value(v.clone()).unwrap();
        let ours = &ev.lines[&k.parse::<i64>().unwrap()];
        if (ours.len() as i64, lines_checksum(ours)) != (count, sum) {
            differing.push(format!("frame {k}: {} vs {count} segments", ours.len()));
        }
    }
    assert!(differing.is_empty(), "pitch lines differ: {differing:?}");
}

/// `lines_checksum` of golden.py: the sum of (i + 1) * (x1 + 3 y1 + 7 x2 + 11 y2).
fn lines_checksum(segments: &[[i32; 4]]) -> i64 {
    segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (i as i64 + 1)
                * (i64::from(s[0])
                    + 3 * i64::from(s[1])
                    + 7 * i64::from(s[2])
                    + 11 * i64::from(s[3]))
        })
        .sum()
}

fn score_all(
    video: &Path,
    answers: &[(String, Vec<u8>)],
    g: &Value,
) -> Vec<(String, KeypointScore)> {
    let ev = VideoEvidence::from_video(video).unwrap();
    assert_eq!(ev.width as u64, g["video_width"].as_u64().unwrap());
    assert_eq!(ev.height as u64, g["video_height"].as_u64().unwrap());
    let frames: Vec<i64> = serde_json::from_value(g["frames_to_validate"].clone()).unwrap();
    assert_eq!(ev.frames_to_validate, frames);
    compare_lines(&ev, g);
    let mut errors = Vec::new();
    let mut scores = Vec::new();
    for (name, json) in answers {
        let ga = &g["answers"][name.as_str()];
        assert!(
            ga.is_object(),
            "{name}: no golden result (rerun tools/score/golden.py)"
        );
        let stored = optimize_response_data(json);
        let s = score_answer_json(&ev, json, None);
        if ga["stored"] == Value::Bool(false) {
            match s {
                Err(ScoreError::NotStored(_)) => continue,
                other => panic!("{name}: the validator stores nothing, pitchside: {other:?}"),
            }
        }
        let digest = stored.unwrap().digest().to_string();
        if ga["stored_digest"].as_str() != Some(digest.as_str()) {
            errors.push(format!(
                "{name}: stored form digest pitchside {digest} vs validator {}",
                ga["stored_digest"]
            ));
        }
        let s = s.unwrap();
        errors.extend(compare(name, &s, ga));
        scores.push((name.clone(), s));
    }
    assert!(
        errors.is_empty(),
        "differences from the validator:\n{}",
        errors.join("\n")
    );
    let worst = scores
        .iter()
        .map(|(n, s)| {
            (s.final_score - g["answers"][n.as_str()]["final_score"].as_f64().unwrap()).abs()
        })
        .fold(0.0, f64::max);
    eprintln!("largest final-score difference from the validator: {worst:e}");
    scores
}

#[test]
fn synthetic_clip_scores_as_the_validator_scores_it() {
    let g = golden("synthetic.json");
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("synthetic.mkv");
    let truth = synthetic::render(&video).unwrap();
    let answers: Vec<(String, Vec<u8>)> = synthetic::answers(&truth)
        .into_iter()
        .map(|(n, v)| (n.to_string(), serde_json::to_vec(&v).unwrap()))
        .collect();
    let scores = score_all(&video, &answers, &g);
    let get = |n: &str| scores.iter().find(|(k, _)| k == n).unwrap().1.final_score;
    assert!(
        get("exact") > get("noisy"),
        "exact {} > noisy {}",
        get("exact"),
        get("noisy")
    );
    assert!(
        get("noisy") > get("all_zero"),
        "noisy {} > all-zero {}",
        get("noisy"),
        get("all_zero")
    );
    assert!(get("exact") > get("wrong_order") && get("exact") > get("partial"));
    // Stored as floats, integer keypoints score like the exact ones rounded to a pixel.
    assert!(
        (get("integer_keypoints") - get("exact")).abs() < 0.5,
        "integer {} vs exact {}",
        get("integer_keypoints"),
        get("exact")
    );
    let dict = &scores.iter().find(|(k, _)| k == "frames_dict").unwrap().1;
    assert_eq!(dict.final_score, 0.0);
    assert!(
        dict.frames_dropped
            .as_deref()
            .is_some_and(|m| m.contains("`frames` is a dict")),
        "{:?}",
        dict.frames_dropped
    );
    assert!(dict.to_string().contains("`frames` is a dict"), "{dict}");
}

#[test]
fn vtest_answer_of_pitchside_scores_as_the_validator_scores_it() {
    let video = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/vtest.avi");
    assert!(
        video.is_file(),
        "{} is missing: run scripts/fetch-assets.sh",
        video.display()
    );
    let g = golden("vtest.json");
    let answer = std::fs::read(fixture("vtest-answer.json")).unwrap();
    score_all(&video, &[("pitchside".to_string(), answer)], &g);
}
