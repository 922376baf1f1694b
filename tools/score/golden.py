#!/usr/bin/env python3
"""Golden results for `pitchside score`: the Score Vision validator's own keypoint scoring
code, run on a video and answers, written as JSON for score/tests/golden.rs to compare with.

Hand-run only (never in tests or CI). Needs numpy and opencv-python(-headless), and a
checkout of score-technologies/score-vision (its validator/ and miner/ directories):

    git clone https://github.com/score-technologies/score-vision /tmp/score-vision
    # (or, from a bare mirror: mkdir /tmp/score-vision &&
    #  git --git-dir=MIRROR archive 1791fe198fe6f66a1c69100491017ed69cdb94e3 validator miner |
    #  tar -x -C /tmp/score-vision)
    python3 -m venv /tmp/sv && /tmp/sv/bin/pip install numpy==1.26.4 opencv-python-headless==4.8.1.78
    /tmp/sv/bin/python tools/score/golden.py --score-vision /tmp/score-vision \
        --commit 1791fe198fe6f66a1c69100491017ed69cdb94e3 \
        --video clip.mkv --answer exact=exact.json ... --out score/tests/fixtures/NAME.json

OpenCV versions: the committed goldens use 4.8.1.78, the version score-vision's uv.lock pins
(4.6.0.66 gives bit-identical results). opencv-python 5.0, which the validator's
unpinned `opencv-python>=4.8.0` resolves to today, breaks the validator's own code:
HoughLinesP's output shape changed and detect_pitch_lines_tophat raises a TypeError.
Debian's python3-opencv (4.6, the library Pitchside links) differs from the wheels only in
findHomography's final refinement on noisy inlier sets (a few thousandths of a pixel).

What it runs is the validator's code itself: `detect_pitch_lines_tophat`,
`process_input_file` and `calculate_final_score_keypoints` from
validator/evaluation/keypoint_scoring.py. The few lines around them that live in modules
importing the network stack (evaluation.py, evaluation_loop.py: the per-frame video loop,
`evaluate_response`'s frame filtering, `validate_keypoints`' try/except) are reproduced
below, line for line. The one thing that is not: the validator keeps the frames its CLIP
model calls "a football pitch"; here every frame that decodes is kept (pass --frames to
choose others), which is what Pitchside does too.
"""
import argparse
import contextlib
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np


def load_keypoint_scoring(root: Path):
    sys.path.insert(0, str(root))  # for `miner.sports.configs.soccer`
    path = root / "validator" / "evaluation" / "keypoint_scoring.py"
    spec = importlib.util.spec_from_file_location("keypoint_scoring", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def lines_checksum(segments):
    """sum over segments i of (i + 1) * (x1 + 3 y1 + 7 x2 + 11 y2): changes with any value or the order."""
    return sum((i + 1) * (int(x1) + 3 * int(y1) + 7 * int(x2) + 11 * int(y2))
               for i, (x1, y1, x2, y2) in enumerate(segments))


def finite(x):
    x = float(x)
    return x if math.isfinite(x) else None


def video_evidence(ks, video):
    """evaluate_pending_responses: seek + read every frame, detect its pitch lines."""
    pitch_lines_by_frame = {}
    frame_indices = []
    video_cap = cv2.VideoCapture(str(video))
    for idx in range(int(video_cap.get(cv2.CAP_PROP_FRAME_COUNT))):
        video_cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
        success, frame = video_cap.read()
        if not success:
            continue
        _, _, _, _, _, final_kept = ks.detect_pitch_lines_tophat(frame)
        pitch_lines_by_frame[str(idx)] = final_kept
        frame_indices.append(idx)
    video_width = int(video_cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    video_height = int(video_cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    video_cap.release()
    return video_width, video_height, frame_indices, pitch_lines_by_frame


def score(ks, response_data, video, w, h, frames_to_validate, pitch_lines_by_frame):
    # _evaluate_single_response / GSRResponse: response_data.get("frames", {})
    temp_frames = response_data.get("frames", {})
    # evaluate_response
    if isinstance(temp_frames, list):
        temp_frames = {frame.get("frame_number", str(i)): frame for i, frame in enumerate(temp_frames)}
    filtered_frames = {str(k): v for k, v in temp_frames.items() if int(k) in frames_to_validate}
    out = {"answer_frames": len(filtered_frames), "validator_error": None}
    # validate_keypoints
    try:
        with contextlib.redirect_stdout(sys.stderr):
            (results, valid_frames, avg_inlier_ratio, avg_reprojection_error, avg_keypoint_score,
             player_score, avg_jump, total_jumps, biggest_jump, large_jumps, transitions,
             avg_keypoint_stability, avg_player_plausibility, mean_on_line, mean_inside, mean_scale,
             scale_valid, scene_scores, kpts_stability_weighted_avg) = ks.process_input_file(
                filtered_frames, video, w, h, frames_to_validate, pitch_lines_by_frame)
            final_score = ks.calculate_final_score_keypoints(
                avg_keypoint_score, player_score, avg_keypoint_stability, avg_player_plausibility,
                mean_on_line, mean_inside, mean_scale, scale_valid, kpts_stability_weighted_avg)
            # Not returned by process_input_file: the homography stability it computes
            # (and does not weight), averaged over the scored frames like the keypoint one.
            data = {"frames": filtered_frames}
            _, frame_to_segment = ks.detect_scene_transitions(data["frames"])
            stab = ks.check_keypoint_stability(data["frames"], frame_to_segment, w, h)
            hs = [stab.get(r["segment_id"], {"homography_stability": 1.0})["homography_stability"]
                  for r in results.values()]
            avg_homography_stability = float(np.mean(hs)) if hs else 0.0
    except Exception as e:  # validate_keypoints returns final_score 0.0 on any exception
        out["validator_error"] = f"{type(e).__name__}: {e}"
        out["final_score"] = 0.0
        return out
    out.update({
        "valid_frames": valid_frames,
        "avg_inlier_ratio": float(avg_inlier_ratio),
        "avg_reprojection_error": finite(avg_reprojection_error),
        "avg_keypoint_score": float(avg_keypoint_score),
        "mean_on_line": float(mean_on_line),
        "mean_inside": float(mean_inside),
        "transitions": [int(t) for t in transitions],
        "segments": len(set(frame_to_segment.values())),
        "player_score": float(player_score),
        "avg_jump": float(avg_jump),
        "total_jumps": int(total_jumps),
        "biggest_jump": float(biggest_jump),
        "large_jumps": int(large_jumps),
        "avg_keypoint_stability": float(avg_keypoint_stability),
        "avg_homography_stability": avg_homography_stability,
        "avg_player_plausibility": float(avg_player_plausibility),
        "scene_consistency": float(kpts_stability_weighted_avg),
        "mean_scale": float(mean_scale),
        "scale_valid": float(scale_valid),
        "final_score": float(final_score),
        "per_frame": {k: {
            "inlier_ratio": float(r["inlier_ratio"]),
            "avg_reprojection_error": float(r["avg_reprojection_error"]),
            "keypoint_score": float(r["keypoint_score"]),
            "segment_id": int(r["segment_id"]),
            "frac_inside": float(r["frac_inside"]),
            "frac_on_line": float(r["frac_on_line"]),
        } for k, r in results.items()},
    })
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--score-vision", type=Path, required=True, help="checkout of score-technologies/score-vision")
    ap.add_argument("--commit", help="its commit (default: git rev-parse HEAD in the checkout)")
    ap.add_argument("--video", type=Path, required=True)
    ap.add_argument("--answer", action="append", required=True, metavar="NAME=PATH")
    ap.add_argument("--frames", help="frames to validate, e.g. 0-99 (default: every frame that decodes)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    commit = args.commit
    if commit is None:
        commit = subprocess.run(["git", "-C", str(args.score_vision), "rev-parse", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
    ks = load_keypoint_scoring(args.score_vision)
    w, h, decoded, lines = video_evidence(ks, args.video)
    frames = decoded
    if args.frames:
        a, b = args.frames.split("-")
        frames = list(range(int(a), int(b) + 1))
    golden = {
        "score_vision_commit": commit,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "video": args.video.name,
        "video_width": w,
        "video_height": h,
        "frames_to_validate": frames,
        # Per frame: the number of kept segments and a position-weighted checksum of them
        # (the full lists run to megabytes on a busy video); score/tests/golden.rs computes
        # the same from Pitchside's segments.
        "pitch_lines": {k: [len(v), lines_checksum(v)] for k, v in lines.items()},
        "answers": {},
    }
    for spec in args.answer:
        name, path = spec.split("=", 1)
        with open(path) as f:
            response_data = json.load(f)
        golden["answers"][name] = score(ks, response_data, str(args.video), w, h, frames, lines)
        print(f"{name}: {golden['answers'][name]['final_score']:.4f}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(golden, sort_keys=True, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
