#!/usr/bin/env python3
"""PyTorch's own speed on the Score Vision models, the yardstick for `torch:cuda`.

ultralytics' YOLOv8x detect with 4 classes and YOLOv8x-pose with 32 keypoints, built from
their YAML with random weights (nothing downloaded), fused (Conv+BN) and in fp16 on CUDA,
as ultralytics' AutoBackend runs them; forward passes timed with CUDA events after warm-up,
at batch 1 and 32, at 640x640 and 640x384 (what a 1080p frame letterboxes to at 640), with
`cudnn.benchmark` off (ultralytics' default for in-memory sources) and on (what Pitchside's
torch:cuda sets). One JSON line per measurement on stdout, written as soon as it exists.
`scripts/gpu/device-check.sh torch` runs it beside `device_check bench torch-cuda-half` on
the same shapes.

    python3 tools/gpu/torch_yardstick.py [--device cuda|cpu] [--batches 1,32]
        [--sizes 640x640,640x384] [--models yolov8x,yolov8x-pose] [--budget-s 150]

`--device cpu` (f32, no CUDA events) is the dry run on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def model_yaml(name: str) -> str:
    """ultralytics' YAML for `name` with Score Vision's heads, in a folder of its own
    (ultralytics reads the scale from the file name: keep `yolov8x` in it)."""
    import yaml
    from ultralytics.utils import ROOT

    pose = name.endswith("-pose")
    src = ROOT / "cfg" / "models" / "v8" / ("yolov8-pose.yaml" if pose else "yolov8.yaml")
    d = yaml.safe_load(src.read_text())
    if pose:
        d["nc"], d["kpt_shape"] = 1, [32, 3]
    else:
        d["nc"] = 4
    out = Path("/tmp/pitchside-yardstick-cfg")
    out.mkdir(parents=True, exist_ok=True)
    p = out / f"{name}-sv.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return str(p)


def timed(torch, net, x, cuda: bool, reps: int = 7, target_s: float = 0.1) -> dict:
    """Median seconds per forward over `reps` repeats of k back-to-back calls."""
    with torch.inference_mode():
        for _ in range(5):
            net(x)
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        net(x)
        if cuda:
            torch.cuda.synchronize()
        one = max(time.perf_counter() - t0, 1e-5)
        k = int(min(max(1, target_s / one), 200))
        times = []
        for _ in range(reps):
            if cuda:
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s.record()
                for _ in range(k):
                    net(x)
                e.record()
                e.synchronize()
                times.append(s.elapsed_time(e) / 1e3 / k)
            else:
                t = time.perf_counter()
                for _ in range(k):
                    net(x)
                times.append((time.perf_counter() - t) / k)
    med = statistics.median(times)
    return {"median_batch_ms": round(med * 1e3, 3), "min_batch_ms": round(min(times) * 1e3, 3),
            "img_per_s": round(x.shape[0] / med, 1), "iters_per_rep": k, "reps": reps}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--sizes", default="640x640,640x384", help="WxH list")
    ap.add_argument("--models", default="yolov8x,yolov8x-pose")
    ap.add_argument("--budget-s", type=float, default=150)
    a = ap.parse_args()
    start = time.perf_counter()
    import torch
    from ultralytics.nn.tasks import DetectionModel, PoseModel

    cuda = a.device == "cuda"
    if cuda and not torch.cuda.is_available():
        print(json.dumps({"yardstick": "pytorch", "error": "CUDA not available"}), flush=True)
        return 1
    dtype = torch.half if cuda else torch.float32
    meta = {"yardstick": "pytorch", "torch": torch.__version__, "device": a.device,
            "gpu": torch.cuda.get_device_name(0) if cuda else None,
            "cudnn": torch.backends.cudnn.version() if cuda else None}
    print(json.dumps(meta), flush=True)
    for name in a.models.split(","):
        torch.manual_seed(0)
        cls = PoseModel if name.endswith("-pose") else DetectionModel
        net = cls(model_yaml(name), verbose=False).fuse(verbose=False).eval().to(a.device, dtype)
        for size in a.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            for b in (int(v) for v in a.batches.split(",")):
                for bench in ([False, True] if cuda else [False]):
                    line = {"yardstick": "pytorch", "model": name, "batch": b, "input_wh": [w, h],
                            "precision": "fp16" if cuda else "fp32", "cudnn_benchmark": bench}
                    if time.perf_counter() - start > a.budget_s:
                        line["skipped"] = "budget"
                        print(json.dumps(line), flush=True)
                        continue
                    if cuda:
                        torch.backends.cudnn.benchmark = bench
                    x = torch.rand(b, 3, h, w, device=a.device, dtype=dtype)
                    try:
                        line.update(timed(torch, net, x, cuda))
                    except Exception as e:  # noqa: BLE001 - one shape's failure is a result
                        line["error"] = f"{type(e).__name__}: {e}"[:300]
                    print(json.dumps(line), flush=True)
        del net
        if cuda:
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
