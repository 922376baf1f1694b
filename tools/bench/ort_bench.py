#!/usr/bin/env python3
"""ONNX Runtime CPU yardstick for `pitchside detect` (run by hand, never from tests/CI).

Exports the real YOLO checkpoints to ONNX (static 1x3x640x640, simplified) into a scratch
directory outside git, then times one image end to end with onnxruntime on the CPU:

    preprocess   letterbox to 640x640 (auto=False, like ultralytics for a static ONNX model)
                 with cv2, BGR->RGB, HWC->CHW, /255 -> float32
    forward      InferenceSession.run, CPUExecutionProvider, default threads
    postprocess  ultralytics-style NMS in numpy (conf > 0.25, best class, class offset 7680,
                 IoU 0.7, max_det 300) + rescale boxes to source pixels

median and p90 over --runs runs after --warmup warm-ups.  For reference it also times
ultralytics' own predict on the .pt (result.speed: torch CPU, rect letterbox).

Usage (venv from tools/golden/README.md):

    /work/venv-ul/bin/python tools/bench/ort_bench.py [--image assets/bus.jpg] [--runs 30]
        [--warmup 5] [--work /tmp/pitchside-ort-bench] [--out /tmp/ort_bench.json]
        [--models yolov8n-railway.pt yolov8s-fall.pt yolo11n-pose.pt] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODELS = ["yolov8n-railway.pt", "yolov8s-fall.pt", "yolo11n-pose.pt"]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(np.floor(k)), int(np.ceil(k))
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def stats(xs: list[float]) -> dict:
    return {"median_ms": statistics.median(xs), "p90_ms": pct(xs, 0.9), "min_ms": min(xs), "n": len(xs)}


def letterbox(img: np.ndarray, size: int = 640) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    nw, nh = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = (size - nw) / 2, (size - nh) / 2
    top, bottom, left, right = round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1)
    if (w, h) != (nw, nh):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return img, (nh / h, nw / w), (left, top)


def preprocess(bgr: np.ndarray, size: int = 640):
    lb, gain, pad = letterbox(bgr, size)
    x = np.ascontiguousarray(lb[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0
    return x, gain, pad


def nms_numpy(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    order = scores.argsort()[::-1]
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(x1[i], x1[rest])
        yy1 = np.maximum(y1[i], y1[rest])
        xx2 = np.minimum(x2[i], x2[rest])
        yy2 = np.minimum(y2[i], y2[rest])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        o = inter / (areas[i] + areas[rest] - inter)
        order = rest[o <= iou]
    return np.array(keep, dtype=np.int64)


def postprocess(out: np.ndarray, nc: int, gain, pad, shape, conf=0.25, iou=0.7, max_det=300,
                max_nms=30000, max_wh=7680.0) -> np.ndarray:
    p = out[0].T  # [N, C]
    cls = p[:, 4:4 + nc]
    best = cls.argmax(1)
    score = cls[np.arange(len(p)), best]
    m = score > conf
    p, best, score = p[m], best[m], score[m]
    if len(p) > max_nms:
        o = score.argsort()[::-1][:max_nms]
        p, best, score = p[o], best[o], score[o]
    xy, wh = p[:, :2], p[:, 2:4]
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], 1)
    keep = nms_numpy(boxes + (best[:, None] * max_wh), score, iou)[:max_det]
    boxes, score, best, extra = boxes[keep], score[keep], best[keep], p[keep, 4 + nc:]
    gy, gx = gain
    boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - pad[0]) / gx).clip(0, shape[1])
    boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - pad[1]) / gy).clip(0, shape[0])
    if extra.shape[1] and len(extra):  # pose keypoints (x, y, conf) * k
        k = extra.reshape(len(extra), -1, 3)
        k[..., 0] = ((k[..., 0] - pad[0]) / gx).clip(0, shape[1])
        k[..., 1] = ((k[..., 1] - pad[1]) / gy).clip(0, shape[0])
        extra = k.reshape(len(extra), -1)
    return np.concatenate([boxes, score[:, None], best[:, None].astype(np.float32), extra], 1)


def export_onnx(pt: Path, work: Path) -> Path:
    from ultralytics import YOLO

    work.mkdir(parents=True, exist_ok=True)
    local = work / pt.name
    onnx = local.with_suffix(".onnx")
    if onnx.exists():
        return onnx
    shutil.copy2(pt, local)
    got = YOLO(str(local)).export(format="onnx", imgsz=640, dynamic=False, simplify=True, verbose=False)
    return Path(got)


def bench_ort(onnx: Path, nc: int, img_path: Path, runs: int, warmup: int, threads: int | None) -> dict:
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(onnx), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    bgr = cv2.imread(str(img_path))
    t_pre, t_fwd, t_post, t_tot = [], [], [], []
    det = None
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        x, gain, pad = preprocess(bgr)
        t1 = time.perf_counter()
        out = sess.run(None, {name: x})[0]
        t2 = time.perf_counter()
        det = postprocess(out, nc, gain, pad, bgr.shape)
        t3 = time.perf_counter()
        if i >= warmup:
            t_pre.append((t1 - t0) * 1e3)
            t_fwd.append((t2 - t1) * 1e3)
            t_post.append((t3 - t2) * 1e3)
            t_tot.append((t3 - t0) * 1e3)
    return {
        "onnx": str(onnx),
        "input_shape": list(x.shape),
        "output_shape": list(out.shape),
        "detections": int(len(det)),
        "scores": [round(float(s), 4) for s in det[:, 4]],
        "preprocess": stats(t_pre),
        "forward": stats(t_fwd),
        "postprocess": stats(t_post),
        "total": stats(t_tot),
    }


def bench_ultralytics(pt: Path, img_path: Path, runs: int, warmup: int) -> dict:
    from ultralytics import YOLO

    m = YOLO(str(pt))
    sp = {"preprocess": [], "inference": [], "postprocess": []}
    wall = []
    r = None
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        r = m.predict(str(img_path), imgsz=640, conf=0.25, iou=0.7, device="cpu", verbose=False)[0]
        t1 = time.perf_counter()
        if i >= warmup:
            for k in sp:
                sp[k].append(r.speed[k])
            wall.append((t1 - t0) * 1e3)
    out = {k: stats(v) for k, v in sp.items()}
    out["predict_wall"] = stats(wall)
    out["detections"] = len(r.boxes)
    out["scores"] = [round(float(s), 4) for s in r.boxes.conf]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", type=Path, default=ROOT / "assets")
    ap.add_argument("--image", type=Path, default=ROOT / "assets/bus.jpg")
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--work", type=Path, default=Path("/tmp/pitchside-ort-bench"))
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="ORT intra-op threads (default: ORT's default)")
    ap.add_argument("--skip-ultralytics", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("/tmp/ort_bench.json"))
    a = ap.parse_args()

    import onnxruntime as ort
    import torch
    import ultralytics

    from ultralytics import YOLO

    report = {
        "image": str(a.image),
        "runs": a.runs,
        "warmup": a.warmup,
        "versions": {"onnxruntime": ort.__version__, "ultralytics": ultralytics.__version__,
                     "torch": torch.__version__, "opencv": cv2.__version__, "numpy": np.__version__},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor(),
                    "torch_threads": torch.get_num_threads(), "ort_threads": a.threads or "default",
                    "loadavg_start": os.getloadavg()},
        "models": {},
    }
    for name in a.models:
        pt = a.assets / name
        nc = len(YOLO(str(pt)).names)
        onnx = export_onnx(pt, a.work)
        entry = {"ort": bench_ort(onnx, nc, a.image, a.runs, a.warmup, a.threads)}
        if not a.skip_ultralytics:
            entry["ultralytics_pt"] = bench_ultralytics(pt, a.image, a.runs, a.warmup)
        report["models"][name] = entry
        print(f"done {name}", flush=True)
    report["machine"]["loadavg_end"] = os.getloadavg()
    # ultralytics' select_device() calls torch.set_num_threads(min(8, cpu_count - 1)) for CPU predict
    report["machine"]["torch_threads_after_predict"] = torch.get_num_threads()

    print(f"\nimage {a.image.name}, {a.runs} runs after {a.warmup} warm-ups, loadavg "
          f"{report['machine']['loadavg_start'][0]:.2f} -> {report['machine']['loadavg_end'][0]:.2f}, "
          f"ort threads {report['machine']['ort_threads']}, torch threads (predict) "
          f"{report['machine']['torch_threads_after_predict']}")
    print(f"{'model':22s} {'engine':16s} {'pre':>13s} {'forward':>15s} {'post':>13s} {'total':>15s}  dets")
    print(f"{'':22s} {'':16s} {'med/p90 ms':>13s} {'med/p90 ms':>15s} {'med/p90 ms':>13s} {'med/p90 ms':>15s}")
    for name, e in report["models"].items():
        o = e["ort"]
        row = lambda s: f"{s['median_ms']:6.1f}/{s['p90_ms']:6.1f}"  # noqa: E731
        print(f"{name:22s} {'ort 640x640':16s} {row(o['preprocess']):>13s} {row(o['forward']):>15s} "
              f"{row(o['postprocess']):>13s} {row(o['total']):>15s}  {o['detections']}")
        if "ultralytics_pt" in e:
            u = e["ultralytics_pt"]
            tot = u["predict_wall"]
            print(f"{'':22s} {'ultralytics .pt':16s} {row(u['preprocess']):>13s} {row(u['inference']):>15s} "
                  f"{row(u['postprocess']):>13s} {row(tot):>15s}  {u['detections']}  (rect letterbox; total=wall)")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    main()
