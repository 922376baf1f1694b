#!/usr/bin/env python3
"""Writes the inputs of `device_check parity` (models/examples/device_check.rs): for each
real checkpoint, the exact tensor ultralytics feeds its network for assets/bus.jpg and the
network's full fp32 head output (CPU), as raw little-endian f32, plus shapes in JSON.

Run by hand on the CPU machine (needs torch + ultralytics; never run by tests or CI):
    python tools/gpu/make_parity_inputs.py [OUT_DIR=.gpu/parity]
The weights are copied next to them (AGPL: this folder is git-ignored, never committed).
"""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from ultralytics import YOLO

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".gpu" / "parity"
MODELS = {"yolov8n-railway": "yolov8n-railway.pt", "yolo11n-pose": "yolo11n-pose.pt",
          "yolov8s-fall": "yolov8s-fall.pt"}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    image = str(ROOT / "assets" / "bus.jpg")
    for stem, name in MODELS.items():
        yolo = YOLO(str(ROOT / "assets" / name))
        yolo.predict(image, imgsz=640, device="cpu", verbose=False)  # builds the fused predictor
        net = yolo.predictor.model.model
        cap = {}
        h1 = net.register_forward_pre_hook(lambda _m, a: cap.__setitem__("x", a[0].detach().clone()))
        h2 = net.model[-1].register_forward_hook(
            lambda _m, _i, o: cap.__setitem__("y", (o[0] if isinstance(o, (tuple, list)) else o).detach().clone()))
        with torch.no_grad():
            yolo.predict(image, imgsz=640, device="cpu", verbose=False)
        h1.remove()
        h2.remove()
        x = cap["x"].float().contiguous().numpy()
        y = cap["y"].float().contiguous().numpy()
        x.astype("<f4").tofile(OUT / f"{stem}.input.f32")
        y.astype("<f4").tofile(OUT / f"{stem}.raw.f32")
        shutil.copyfile(ROOT / "assets" / name, OUT / f"{stem}.pt")
        meta = {"image": "assets/bus.jpg", "input_shape": list(x.shape), "raw_shape": list(y.shape),
                "torch": torch.__version__}
        (OUT / f"{stem}.json").write_text(json.dumps(meta) + "\n")
        print(stem, meta)


if __name__ == "__main__":
    main()
