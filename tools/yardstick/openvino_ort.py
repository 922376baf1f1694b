#!/usr/bin/env python3
"""CPU yardstick for the NHWC executor: OpenVINO (f32 and its default precision, which is
bf16 on CPUs with AVX512_BF16 / AMX) and ONNX Runtime on the same ONNX exports.

Run by hand, never from tests or CI. Forward pass only: one 1x3x640x640 float32 input
(bus.jpg letterboxed to 640x640, as `pitchside bench --square` feeds the executor), batch 1,
`--runs` timed runs after `--warmup`, medians. Engines are interleaved per model and round
(`--rounds`), since the dev box drifts by +-20 % within minutes.

Setup (a venv outside the repository, or under a git-ignored folder):

    python3 -m venv ~/.cache/pitchside/yardstick-venv
    ~/.cache/pitchside/yardstick-venv/bin/pip install ultralytics onnx onnxslim onnxruntime openvino

Usage:

    ~/.cache/pitchside/yardstick-venv/bin/python tools/yardstick/openvino_ort.py \
        [--models yolov8n-railway.pt yolov8s-fall.pt yolo11n-pose.pt] [--runs 20] \
        [--warmup 5] [--rounds 2] [--work /tmp/pitchside-yardstick] [--out results.json]

The executor's side: `pitchside bench --model assets/M --square --iterations 20 assets/bus.jpg`
(`--half` for bf16), run between these rounds.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODELS = ["yolov8n-railway.pt", "yolov8s-fall.pt", "yolo11n-pose.pt"]


def export_onnx(pt: Path, work: Path) -> Path:
    """Static 640x640 ONNX export by ultralytics (cached in `work`)."""
    from ultralytics import YOLO

    work.mkdir(parents=True, exist_ok=True)
    local = work / pt.name
    onnx = local.with_suffix(".onnx")
    if onnx.exists():
        return onnx
    shutil.copy2(pt, local)
    got = YOLO(str(local)).export(format="onnx", imgsz=640, dynamic=False, simplify=True, verbose=False)
    return Path(got)


def input_tensor(image: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(image))
    h, w = bgr.shape[:2]
    r = min(640 / h, 640 / w)
    nw, nh = round(w * r), round(h * r)
    img = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, left = (640 - nh) // 2, (640 - nw) // 2
    img = cv2.copyMakeBorder(img, top, 640 - nh - top, left, 640 - nw - left, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0


def time_runs(run, x: np.ndarray, runs: int, warmup: int) -> float:
    times = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        run(x)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def ort_runner(onnx: Path):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})


def openvino_runner(onnx: Path, precision: str | None):
    import openvino as ov

    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = core.compile_model(str(onnx), "CPU", config)
    chosen = compiled.get_property("INFERENCE_PRECISION_HINT")
    chosen = chosen.get_type_name() if hasattr(chosen, "get_type_name") else str(chosen)
    request = compiled.create_infer_request()
    return (lambda x: request.infer({0: x})), chosen


def cpu_flags() -> str:
    try:
        flags = next(l for l in open("/proc/cpuinfo") if l.startswith("flags")).split(":")[1].split()
    except (OSError, StopIteration):
        return platform.processor()
    keep = [f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma", "f16c")]
    return " ".join(sorted(keep))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--image", type=Path, default=ROOT / "assets" / "bus.jpg")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("/tmp/pitchside-yardstick"))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import onnxruntime
    import openvino

    x = input_tensor(args.image)
    results = {
        "cpu_flags": cpu_flags(),
        "openvino": openvino.__version__,
        "onnxruntime": onnxruntime.__version__,
        "input": list(x.shape),
        "models": {},
    }
    print(f"CPU flags: {results['cpu_flags']}")
    for m in args.models:
        onnx = export_onnx(ROOT / "assets" / m, args.work)
        ov_f32, _ = openvino_runner(onnx, "f32")
        ov_default, default_precision = openvino_runner(onnx, None)
        engines = {
            "ort_f32": ort_runner(onnx),
            "openvino_f32": ov_f32,
            f"openvino_default_{default_precision}": ov_default,
        }
        rows = {name: [] for name in engines}
        for _ in range(args.rounds):
            for name, run in engines.items():
                rows[name].append(round(time_runs(run, x, args.runs, args.warmup), 1))
        results["models"][m] = rows
        print(m, json.dumps(rows))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
