#!/usr/bin/env python3
"""Golden results for `pitchside score`: the Score Vision validator's own code, run on a
video and answers, written as JSON for score/tests/golden.rs to compare with.

Hand-run only (never in tests or CI). Needs numpy and OpenCV's Python module, and a
checkout of score-technologies/score-vision (its validator/ and miner/ directories):

    git clone https://github.com/score-technologies/score-vision /tmp/score-vision
    # (or, from a bare mirror: mkdir /tmp/score-vision &&
    #  git --git-dir=MIRROR archive 1791fe198fe6f66a1c69100491017ed69cdb94e3 validator miner |
    #  tar -x -C /tmp/score-vision)
    # Debian's OpenCV 4.6 (the library Pitchside links) without installing anything:
    mkdir -p /tmp/deb && cd /tmp/deb && apt-get download python3-opencv python3-numpy &&
        for d in *.deb; do dpkg-deb -x $d /tmp/deb/root; done
    PYTHONPATH=/tmp/deb/root/usr/lib/python3/dist-packages /usr/bin/python3 tools/score/golden.py \
        --score-vision /tmp/score-vision --commit 1791fe198fe6f66a1c69100491017ed69cdb94e3 \
        --video clip.mkv --answer exact=exact.json ... --out score/tests/fixtures/NAME.json
    # the rewrite's edge cases (no video):
    ... golden.py --score-vision /tmp/score-vision --rewrite-cases score/tests/fixtures/rewrite.json

What it runs is the validator's code itself: `optimize_response_data` (and the two
functions it calls) from validator/challenge/send_challenge.py, taken out of that module
with `ast` because the module imports the network stack (fiber, httpx); and
`detect_pitch_lines_tophat`, `process_input_file` and `calculate_final_score_keypoints`
from validator/evaluation/keypoint_scoring.py. The few lines around them that live in
modules importing the network stack (send_challenge: the rewrite then `store_response`'s
json.dumps and `get_pending_responses`' json.loads; evaluation.py, evaluation_loop.py: the
per-frame video loop, `evaluate_response`'s frame filtering, `validate_keypoints`'
try/except) are reproduced below, line for line. The one thing that is not: the validator
keeps the frames its CLIP model calls "a football pitch"; here every frame that decodes is
kept (pass --frames to choose others), which is what Pitchside does too.

Every answer is scored as the validator stores it (`final_score`), and for comparison as
sent (`final_score_as_sent`: the JSON handed straight to evaluate_response, whose legacy
branch for a frames list never runs in production).

OpenCV versions: the committed goldens use Debian bookworm's python3-opencv 4.6.0+dfsg-12
with its numpy 1.24.2, the same OpenCV build Pitchside links, so the two agree to ~1e-12.
The PyPI wheels differ from it in findHomography's final refinement on noisy inlier sets
(4.6.0.66 and 4.8.1.78, the version score-vision's uv.lock pins, a few thousandths of a
pixel; later builds, which the validator's unpinned `opencv-python>=4.8.0` may install,
move RANSAC's result by up to ~0.25 points on noisy answers). opencv-python 5.0 breaks
the validator's own code: HoughLinesP's output shape changed and
detect_pitch_lines_tophat raises a TypeError.
"""
import argparse
import ast
import contextlib
import importlib.util
import random
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


def load_optimize_response_data(root: Path):
    """optimize_response_data and its helpers, compiled from send_challenge.py's own source."""
    path = root / "validator" / "challenge" / "send_challenge.py"
    tree = ast.parse(path.read_text(), str(path))
    wanted = {"optimize_coordinates", "optimize_keypoints", "optimize_response_data"}
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted]
    assert {n.name for n in body} == wanted, "send_challenge.py no longer has the rewrite"
    ns = {"List": __import__("typing").List, "Dict": __import__("typing").Dict}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), ns)
    return ns["optimize_response_data"]


def stored_frames(optimize, response_data):
    """send_challenge: the rewrite, store_response's json.dumps(response.to_dict()), then
    _evaluate_single_response's json.loads(...) and response_data.get("frames", {})."""
    if response_data is None:
        response_data = {"frames": {}, "processing_time": 60.0}
    optimized = optimize(response_data)
    stored = json.dumps({"frames": optimized})
    return json.loads(stored).get("frames", {})


MASK64 = (1 << 64) - 1


def stored_digest(frames):
    """score/src/rewrite.rs's Stored::digest: every stored number as its hundredths, in order."""
    h = 0

    def mix(n):
        nonlocal h
        h = (h * 1000003 + n) & MASK64

    def hundredths(v):
        if math.isnan(v):
            return -(1 << 63) + 1
        if math.isinf(v):
            return (1 << 63) - 1 if v > 0 else -(1 << 63)
        return int(max(-1e18, min(1e18, round(v * 100))))

    for k, f in frames.items():
        for b in k.encode():
            mix(b)
        mix(-1)
        for p in f.get("keypoints", []):
            for v in p:
                mix(hundredths(v))
            mix(-2)
        mix(-3)
        for o in f.get("objects", []):
            if isinstance(o, dict) and "bbox" in o:
                for v in o["bbox"]:
                    mix(hundredths(v))
            mix(-4)
        mix(-5)
    return h


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


def score(ks, temp_frames, video, w, h, frames_to_validate, pitch_lines_by_frame):
    # evaluate_response (the list branch only runs for an answer scored as sent)
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
            "player_plausibility": float(r["player_plausibility"]),
            "keypoint_stability": float(r["keypoint_stability"]),
        } for k, r in results.items()},
    })
    return out


def score_answer(ks, optimize, response_data, video, w, h, frames, lines):
    """The answer as the validator stores and scores it, and as sent (for comparison)."""
    try:
        stored = stored_frames(optimize, response_data)
    except Exception as e:  # send_challenge's `finally: return response` drops it: no score
        out = {"stored": False, "store_error": f"{type(e).__name__}: {e}"}
    else:
        out = score(ks, stored, video, w, h, frames, lines)
        out["stored"] = True
        out["stored_digest"] = str(stored_digest(stored))
    try:
        as_sent = score(ks, response_data.get("frames", {}), video, w, h, frames, lines)
        out["final_score_as_sent"] = as_sent["final_score"]
    except Exception as e:
        out["final_score_as_sent"] = None
        out["as_sent_error"] = f"{type(e).__name__}: {e}"
    return out


def rewrite_cases():
    """Answers (as JSON text) probing optimize_response_data: Python's round and float()."""
    cases = {
        "edge": json.dumps({"frames": [
            {"frame_number": 3, "keypoints": [[1, 2], [0.125, "2.675"], [], "12", {"7": 1}],
             "objects": [{"id": 7, "class_id": 2, "bbox": [1.005, 2, 3.999, True], "x": [1]},
                         ["a"], {"id": "b"}],
             "extra": 1},
            {"frame_number": "1", "keypoints": {"a": 1}, "objects": 5},
            {"frame_number": " 4", "keypoints": [[" 1_0.5 ", "-InFinity"], ["nan", "1e400"]]},
            {"frame_number": 5, "keypoints": [[1, 1]]},
            {"frame_number": 5, "keypoints": [[9.999, 0]], "objects": []},
            {"frame_number": True, "keypoints": [[-0.001, -0.005]]},
            {"frame_number": None},
            {"frame_number": 12.0},
        ]}),
        "frames_dict": json.dumps({"frames": {"0": {"frame_number": 0, "keypoints": [[1, 2]]}}}),
        "no_frames": json.dumps({"challenge_id": "x"}),
        "null": "null",
        "list": "[1, 2]",
        "string": json.dumps("hello"),
    }
    for name, body in {
        "no_frame_number": {"frames": [{"keypoints": []}]},
        "frame_is_list": {"frames": [[1]]},
        "flat_keypoints": {"frames": [{"frame_number": 0, "keypoints": [5]}]},
        "bad_string": {"frames": [{"frame_number": 0, "keypoints": [["x", 1]]}]},
        "null_coordinate": {"frames": [{"frame_number": 0, "keypoints": [[None, 1]]}]},
        "string_object": {"frames": [{"frame_number": 0, "objects": ["a"]}]},
        "null_bbox": {"frames": [{"frame_number": 0, "objects": [{"bbox": None}]}]},
        "list_object_with_bbox": {"frames": [{"frame_number": 0, "objects": [["bbox"]]}]},
        "number": 7,
        "string_with_frames": "frames",
    }.items():
        cases[name] = json.dumps(body)
    # Numbers round() is hard on: exact ties (k/8), values one ulp either side of a
    # hundredth's midpoint, and long decimal strings near midpoints, all as JSON text.
    rng = random.Random(26)
    texts = ["2.675", "1.005", "0.125", "0.375", "-2.675", "0.135", "1e300", "5e-324",
             "123.45678901234567", "0.005", "0.015", "0.025", "1.115", "4503599627370495.5",
             "2.67500000000000004440892098500626", "2.6750000000000000444089209850062616169452667236328125",
             "9007199254740993", "18446744073709551617", "-0.0", "1234.565", "1919.995"]
    for _ in range(400):
        k = rng.randrange(0, 200000)
        texts.append(f"{k // 100}.{k % 100:02d}5")  # a decimal midpoint, as text
        mid = float(f"{k // 100}.{k % 100:02d}5")
        texts.append(repr(math.nextafter(mid, math.inf)))
        texts.append(repr(math.nextafter(mid, -math.inf)))
        texts.append(f"{k / 100 + rng.random() / 100:.{rng.randrange(3, 21)}f}")
        texts.append(repr(rng.uniform(0, 4000)))
        texts.append(f"{rng.randrange(-50, 3000) + rng.randrange(0, 8) / 8}")
    kps = ",".join(f"[{a},{b}]" for a, b in zip(texts[::2], texts[1::2]))
    cases["round"] = '{"frames":[{"frame_number":0,"keypoints":[%s]}]}' % kps
    return cases


def nonfinite_as_strings(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, list):
        return [nonfinite_as_strings(x) for x in v]
    if isinstance(v, dict):
        return {k: nonfinite_as_strings(x) for k, x in v.items()}
    return v


def write_rewrite_cases(optimize, commit, out: Path):
    result = {"score_vision_commit": commit, "python": sys.version.split()[0], "cases": {}}
    for name, body in rewrite_cases().items():
        entry = {"body": body}
        try:
            frames = stored_frames(optimize, json.loads(body))
        except Exception as e:
            entry["store_error"] = f"{type(e).__name__}: {e}"
        else:
            entry["stored"] = [[k, nonfinite_as_strings(f)] for k, f in frames.items()]
        result["cases"][name] = entry
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, sort_keys=True, allow_nan=False) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--score-vision", type=Path, required=True, help="checkout of score-technologies/score-vision")
    ap.add_argument("--commit", help="its commit (default: git rev-parse HEAD in the checkout)")
    ap.add_argument("--video", type=Path)
    ap.add_argument("--answer", action="append", metavar="NAME=PATH")
    ap.add_argument("--frames", help="frames to validate, e.g. 0-99 (default: every frame that decodes)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--rewrite-cases", type=Path, metavar="OUT",
                    help="write the rewrite's edge cases and what the validator stores of each")
    args = ap.parse_args()

    commit = args.commit
    if commit is None:
        commit = subprocess.run(["git", "-C", str(args.score_vision), "rev-parse", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
    optimize = load_optimize_response_data(args.score_vision)
    if args.rewrite_cases:
        write_rewrite_cases(optimize, commit, args.rewrite_cases)
        if not args.video:
            return
    if not (args.video and args.answer and args.out):
        ap.error("--video, --answer and --out are needed to score")
    ks = load_keypoint_scoring(args.score_vision)
    w, h, decoded, lines = video_evidence(ks, args.video)
    frames = decoded
    if args.frames:
        a, b = args.frames.split("-")
        frames = list(range(int(a), int(b) + 1))
    golden = {
        "score_vision_commit": commit,
        "opencv": cv2.__version__,
        "opencv_module": cv2.__file__,
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
        a = score_answer(ks, optimize, response_data, str(args.video), w, h, frames, lines)
        golden["answers"][name] = a
        print(f"{name}: stored {a.get('final_score')} as sent {a['final_score_as_sent']}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(golden, sort_keys=True, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
