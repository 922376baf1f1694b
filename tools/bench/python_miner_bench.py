#!/usr/bin/env python3
"""The Python Score Vision (SN44) miner's pipeline, timed, as the yardstick for Pitchside.

Run by hand (never from tests/CI).  Re-implements what the reference miner's
`process_soccer_video` does per frame, synchronously and on the CPU:

    decode       cv2.VideoCapture.read(), frame by frame
    pitch model  pitch_model(frame)[0] -> sv.KeyPoints.from_ultralytics -> keypoints.xy[0]
    player model player_model(frame)[0] -> sv.Detections.from_ultralytics
    tracking     sv.ByteTrack().update_with_detections(detections) (supervision 0.22 defaults)
    (the JSON building is counted under tracking; it is negligible)

and builds the Score Vision response:

    {"challenge_id": ..., "frames": [{"frame_number": n, "keypoints": [[x, y], ...],
      "objects": [{"id": track_id, "bbox": [x1, y1, x2, y2], "class_id": c}, ...]}, ...],
     "processing_time": seconds}

We have no football checkpoints, so the stand-ins are yolov8n-railway.pt (player model,
6 classes) and yolo11n-pose.pt (pitch model: a pose model, 17 keypoints per detection,
the miner keeps the first detection's keypoints).  Both run at imgsz 640, conf 0.25, CPU.
Note: the reference miner runs the player model at imgsz=1280; use --player-imgsz 1280
to reproduce that.

Usage (venv from tools/golden/README.md):

    /work/venv-ul/bin/python tools/bench/python_miner_bench.py [--video assets/vtest.avi]
        [--frames 100] [--out /tmp/python_miner.json] [--player-imgsz 640] [--pitch-imgsz 640]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, default=ROOT / "assets/vtest.avi")
    ap.add_argument("--player-model", type=Path, default=ROOT / "assets/yolov8n-railway.pt")
    ap.add_argument("--pitch-model", type=Path, default=ROOT / "assets/yolo11n-pose.pt")
    ap.add_argument("--frames", type=int, default=0, help="process at most N frames (default: all)")
    ap.add_argument("--player-imgsz", type=int, default=640)
    ap.add_argument("--pitch-imgsz", type=int, default=640)
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--challenge-id", default="bench-0")
    ap.add_argument("--out", type=Path, default=Path("/tmp/python_miner.json"))
    a = ap.parse_args()

    import supervision as sv
    import torch
    import ultralytics
    from ultralytics import YOLO

    player_model = YOLO(str(a.player_model))
    pitch_model = YOLO(str(a.pitch_model))
    kw = dict(conf=a.conf, device="cpu", verbose=False)
    # Warm up (model fuse, predictor setup) outside the timed loop, like a long-running miner.
    cap = cv2.VideoCapture(str(a.video))
    ok, first = cap.read()
    if not ok:
        raise SystemExit(f"cannot read {a.video}")
    player_model(first, imgsz=a.player_imgsz, **kw)
    pitch_model(first, imgsz=a.pitch_imgsz, **kw)
    cap.release()

    tracker = sv.ByteTrack()
    t = {"decode": 0.0, "pitch_model": 0.0, "player_model": 0.0, "tracking": 0.0}
    frames = []
    n_objects = n_kpt_frames = 0
    start = time.perf_counter()
    cap = cv2.VideoCapture(str(a.video))
    frame_number = 0
    while not a.frames or frame_number < a.frames:
        t0 = time.perf_counter()
        ok, frame = cap.read()
        t1 = time.perf_counter()
        t["decode"] += t1 - t0
        if not ok:
            break

        pitch_result = pitch_model(frame, imgsz=a.pitch_imgsz, **kw)[0]
        keypoints = sv.KeyPoints.from_ultralytics(pitch_result)
        t2 = time.perf_counter()
        t["pitch_model"] += t2 - t1

        player_result = player_model(frame, imgsz=a.player_imgsz, **kw)[0]
        detections = sv.Detections.from_ultralytics(player_result)
        t3 = time.perf_counter()
        t["player_model"] += t3 - t2

        detections = tracker.update_with_detections(detections)
        kps = keypoints.xy[0].tolist() if keypoints and keypoints.xy is not None else []
        objects = []
        if detections and detections.tracker_id is not None:
            for tid, box, cid in zip(detections.tracker_id, detections.xyxy, detections.class_id):
                objects.append({"id": int(tid), "bbox": [float(v) for v in box], "class_id": int(cid)})
        frames.append({"frame_number": frame_number, "keypoints": kps, "objects": objects})
        t["tracking"] += time.perf_counter() - t3
        n_objects += len(objects)
        n_kpt_frames += bool(kps)
        frame_number += 1
    cap.release()
    wall = time.perf_counter() - start

    response = {"challenge_id": a.challenge_id, "frames": frames, "processing_time": wall}
    n = len(frames)
    track_ids = {o["id"] for f in frames for o in f["objects"]}
    bench = {
        "frames": n,
        "wall_s": wall,
        "fps": n / wall if wall else 0.0,
        "stage_s": t,
        "stage_ms_per_frame": {k: v / n * 1e3 for k, v in t.items()} if n else {},
        "objects_total": n_objects,
        "distinct_track_ids": len(track_ids),
        "frames_with_keypoints": n_kpt_frames,
        "player_imgsz": a.player_imgsz,
        "pitch_imgsz": a.pitch_imgsz,
        "versions": {"ultralytics": ultralytics.__version__, "supervision": sv.__version__,
                     "torch": torch.__version__, "opencv": cv2.__version__},
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "loadavg_end": os.getloadavg(),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({**response, "bench": bench}) + "\n")

    print(f"{a.video.name}: {n} frames in {wall:.2f} s = {bench['fps']:.2f} fps "
          f"(torch threads {bench['torch_threads']}, loadavg {bench['loadavg_end'][0]:.2f})")
    for k, v in t.items():
        print(f"  {k:13s} {v:7.2f} s  {v / max(n, 1) * 1e3:7.1f} ms/frame  {v / wall * 100:5.1f} %")
    print(f"  objects {n_objects} ({len(track_ids)} track ids), frames with keypoints {n_kpt_frames}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
