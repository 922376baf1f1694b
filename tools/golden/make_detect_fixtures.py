#!/usr/bin/env python3
"""Generate golden fixtures that pin `pitchside detect` to ultralytics' own behaviour.

Run BY HAND only (never from tests or CI): it needs torch + ultralytics, which the
Rust build and CI do not have.  The JSON files it writes are committed and the Rust
tests read them.

Usage (from the repository root, after scripts/fetch-assets.sh):

    python3 -m venv /work/venv-ul
    /work/venv-ul/bin/pip install torch ultralytics==8.4.190 onnx onnxruntime onnxslim supervision==0.22.0
    /work/venv-ul/bin/python tools/golden/make_detect_fixtures.py            # everything
    /work/venv-ul/bin/python tools/golden/make_detect_fixtures.py --only letterbox

Options:
    --assets DIR     where scripts/fetch-assets.sh put the models/images (default assets/)
    --out DIR        fixture directory (default tests/fixtures/detect/)
    --only WHAT      'frame', 'letterbox' or 'detect' (default: all three, in that order)

Writes:
    tests/fixtures/images/vtest-f100.png          frame index 100 (0-based) of assets/vtest.avi
    tests/fixtures/detect/<stem>.json             conf 0.25 predictions + raw head output
    tests/fixtures/detect/<stem>.conf005.json     same at conf 0.05 (more boxes to compare)
    tests/fixtures/detect/letterbox.json          LetterBox shapes/pads + bit-exact pixel checks

See tools/golden/README.md for the file format and what ultralytics does exactly.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MODELS = ["yolo11n-pose.pt", "yolov8n-railway.pt", "yolov8s-fall.pt"]
FRAME_NAME = "vtest-f100.png"
FRAME_INDEX = 100  # 0-based: the 101st decoded frame
IMGSZ, IOU, MAX_DET = 640, 0.7, 300
CONFS = [(0.25, ""), (0.05, ".conf005")]
MAX_FILE_BYTES = 500_000


def rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def sha256_file(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def image_list(assets: Path) -> list[tuple[str, Path]]:
    return [
        ("bus.jpg", assets / "bus.jpg"),
        ("zidane.jpg", assets / "zidane.jpg"),
        ("messi5.jpg", assets / "messi5.jpg"),
        (FRAME_NAME, ROOT / "tests/fixtures/images" / FRAME_NAME),
    ]


# ----------------------------------------------------------------------------- frame
def extract_frame(assets: Path) -> Path:
    out = ROOT / "tests/fixtures/images" / FRAME_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(assets / "vtest.avi"))
    if not cap.isOpened():
        sys.exit(f"cannot open {assets / 'vtest.avi'}")
    frame = None
    for _ in range(FRAME_INDEX + 1):  # decode sequentially: seeking in AVI is not frame-exact everywhere
        ok, frame = cap.read()
        if not ok:
            sys.exit(f"vtest.avi ended before frame {FRAME_INDEX}")
    cap.release()
    cv2.imwrite(str(out), frame, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    back = cv2.imread(str(out))
    assert back is not None and np.array_equal(back, frame), "PNG round trip is not lossless?"
    print(f"frame {FRAME_INDEX} of vtest.avi -> {rel(out)} {frame.shape} {out.stat().st_size} bytes")
    return out


# ----------------------------------------------------------------------------- letterbox
def _lb_params(h: int, w: int, imgsz, auto: bool) -> dict:
    from ultralytics.data.augment import LetterBox

    lb = LetterBox(imgsz, auto=auto, stride=32, center=True, padding_value=114)
    fake = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (h, w, 3))  # shape only, no allocation
    p = lb.get_params({"img": fake})
    nw, nh = (int(v) for v in p["new_unpad"])
    top, bottom, left, right = (int(p[k]) for k in ("top", "bottom", "left", "right"))
    return {
        "src_h": h,
        "src_w": w,
        "imgsz": imgsz,
        "auto": auto,
        "ratio": float(p["ratio"][0]),
        "new_unpad_hw": [nh, nw],
        "pad_tblr": [top, bottom, left, right],
        "out_hw": [nh + top + bottom, nw + left + right],
    }


def _lb_apply(img: np.ndarray, imgsz, auto: bool) -> np.ndarray:
    from ultralytics.data.augment import LetterBox

    return LetterBox(imgsz, auto=auto, stride=32, center=True, padding_value=114)(image=img.copy())


def make_letterbox(out_dir: Path) -> None:
    shapes = [  # (h, w)
        (1080, 810), (720, 1280), (342, 548), (576, 768), (1080, 1920), (1920, 1080), (640, 640),
        (480, 640), (500, 375), (333, 777), (1, 1), (7, 3), (3, 7), (1, 3000), (3000, 1),
        (4000, 6000), (6000, 4000), (641, 641), (639, 1001), (17, 17), (100, 1000), (719, 1279),
        # exact .5 ties in round(w*r): Python rounds half to even (2.5->2, 7.5->8, 12.5->12, 0.5->0->max 1)
        (256, 1), (256, 3), (256, 5), (5, 256), (1280, 1), (1280, 5), (1280, 15),
    ]
    cases = []
    for h, w in shapes:
        for auto in (True, False):
            cases.append(_lb_params(h, w, [IMGSZ, IMGSZ], auto))
    for h, w, sz, auto in [
        (1080, 1920, [320, 320], True), (1080, 1920, [1280, 1280], True), (1080, 1920, [384, 640], False),
        (720, 1280, [384, 640], False), (1080, 810, [640, 480], False), (1080, 810, [320, 320], False),
    ]:
        cases.append(_lb_params(h, w, sz, auto))
    # The predict path really is this: verify get_params against the image LetterBox writes for small cases.
    for c in cases:
        if c["src_h"] * c["src_w"] <= 2_000_000:
            got = _lb_apply(np.zeros((c["src_h"], c["src_w"], 3), np.uint8), c["imgsz"], c["auto"])
            assert list(got.shape[:2]) == c["out_hw"], (c, got.shape)

    rng = np.random.default_rng(20240601)
    pixel_cases = []
    for h, w in [(37, 53), (61, 29)]:
        src = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        outs = []
        for sz, auto in [([640, 640], True), ([640, 640], False), ([32, 32], False), ([96, 64], False)]:
            out = _lb_apply(src, sz, auto)
            params = _lb_params(h, w, sz, auto)
            assert list(out.shape[:2]) == params["out_hw"]
            oh, ow = out.shape[:2]
            t, b, l, r = params["pad_tblr"]
            pts = {(0, 0), (oh - 1, ow - 1), (oh // 2, ow // 2), (t, l), (oh - 1 - b, ow - 1 - r),
                   (t + 1, l + 1), (oh // 3, ow // 5), (min(oh - 1, t + 7), min(ow - 1, l + 5))}
            samples = [{"y": int(y), "x": int(x), "v": [int(v) for v in out[y, x]]} for y, x in sorted(pts)]
            entry = dict(params)
            entry.update({
                "out_sha256": hashlib.sha256(np.ascontiguousarray(out).tobytes()).hexdigest(),
                "samples": samples,
            })
            if out.nbytes <= 20_000:
                entry["out_b64"] = base64.b64encode(np.ascontiguousarray(out).tobytes()).decode()
            outs.append(entry)
        pixel_cases.append({
            "src_h": h, "src_w": w,
            "src_b64": base64.b64encode(src.tobytes()).decode(),
            "src_sha256": hashlib.sha256(src.tobytes()).hexdigest(),
            "outputs": outs,
        })

    import ultralytics

    doc = {
        "what": "ultralytics.data.augment.LetterBox(new_shape=imgsz, auto=auto, stride=32, center=True, "
                "padding_value=114, interpolation=cv2.INTER_LINEAR) as used by predict()",
        "ultralytics": ultralytics.__version__,
        "opencv": cv2.__version__,
        "notes": [
            "imgsz is [h, w]; predict turns imgsz=640 into [640, 640].",
            "r = min(H/h, W/w); new_unpad = (max(round(w*r),1), max(round(h*r),1)) with Python round (half to even).",
            "dw, dh = W-new_w, H-new_h; if auto: dw, dh = dw % 32, dh % 32; then /2.",
            "top = round(dh-0.1), bottom = round(dh+0.1), left = round(dw-0.1), right = round(dw+0.1).",
            "resize is cv2.resize(INTER_LINEAR) (skipped when the size is unchanged), pad = copyMakeBorder "
            "BORDER_CONSTANT 114.",
            "pixel cases: src/out bytes are HWC uint8, row-major, 3 channels exactly as stored (channel order is "
            "irrelevant to letterboxing; predict feeds BGR and flips to RGB afterwards).",
            "out_sha256 is sha256 of the raw HWC bytes; out_b64 is present when the output is small.",
        ],
        "cases": cases,
        "pixel_cases": pixel_cases,
    }
    p = out_dir / "letterbox.json"
    p.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"letterbox: {len(cases)} shape cases, {len(pixel_cases)} pixel cases -> {rel(p)} "
          f"({p.stat().st_size} bytes)")
    for c in cases:
        if (c["src_h"], c["src_w"]) in {(1080, 1920), (1080, 810), (720, 1280), (1, 1), (7, 3), (4000, 6000)}:
            print(f"  {c['src_h']}x{c['src_w']} imgsz={c['imgsz']} auto={c['auto']}: out={c['out_hw']} "
                  f"unpad={c['new_unpad_hw']} pad(t,b,l,r)={c['pad_tblr']}")


# ----------------------------------------------------------------------------- detect
def _f(v) -> float:
    return float(v)


def run_model(model_name: str, assets: Path, out_dir: Path) -> None:
    import torch
    import ultralytics
    from ultralytics import YOLO

    yolo = YOLO(str(assets / model_name))
    images = image_list(assets)
    # First call builds the predictor (AutoBackend, fused Conv+BN); hooks go on that fused module.
    yolo.predict(str(images[0][1]), imgsz=IMGSZ, conf=0.25, iou=IOU, max_det=MAX_DET, device="cpu", verbose=False)
    net = yolo.predictor.model.model  # DetectionModel / PoseModel actually run
    head = net.model[-1]
    cap: dict = {}

    def pre_hook(_m, args):
        cap["input_shape"] = list(args[0].shape)
        cap["input_sum"] = float(args[0].double().sum())

    def head_hook(_m, _inp, out):
        y = out[0] if isinstance(out, (tuple, list)) else out
        cap["raw"] = y.detach().clone()

    h1 = net.register_forward_pre_hook(pre_hook)
    h2 = head.register_forward_hook(head_hook)
    names = {str(k): v for k, v in net.names.items()}
    kpt_shape = list(getattr(net, "kpt_shape", None) or []) or None
    task = yolo.task
    stem = Path(model_name).stem
    summary = {}
    try:
        for conf, suffix in CONFS:
            doc = {
                "model": model_name,
                "model_sha256": sha256_file(assets / model_name),
                "task": task,
                "imgsz": IMGSZ,
                "conf": conf,
                "iou": IOU,
                "max_det": MAX_DET,
                "half": False,
                "device": "cpu",
                "ultralytics": ultralytics.__version__,
                "torch": torch.__version__,
                "opencv": cv2.__version__,
                "names": names,
                "kpt_shape": kpt_shape,
                "stride": [float(s) for s in head.stride],
                "images": [],
            }
            for img_name, img_path in images:
                cap.clear()
                res = yolo.predict(str(img_path), imgsz=IMGSZ, conf=conf, iou=IOU, max_det=MAX_DET,
                                   device="cpu", verbose=False)[0]
                h, w = res.orig_shape
                data = res.boxes.data.cpu().double().numpy()  # x1 y1 x2 y2 conf cls (float32 values)
                kps = res.keypoints.data.cpu().double().numpy() if res.keypoints is not None else None
                order = np.argsort(-data[:, 4], kind="stable")
                assert np.array_equal(order, np.arange(len(order))), "ultralytics output not score-sorted?"
                dets = []
                for i in order:
                    d = {"bbox": [_f(v) for v in data[i, :4]], "score": _f(data[i, 4]), "class_id": int(data[i, 5])}
                    if kps is not None:
                        d["keypoints"] = [[_f(v) for v in kp] for kp in kps[i]]
                    dets.append(d)
                raw = cap["raw"][0].double()  # [C, N]
                c_, n_ = raw.shape
                idxs = sorted({0, n_ // 7, n_ // 3, n_ // 2, n_ - 1})
                in_h, in_w = cap["input_shape"][2:]
                lb = _lb_params(h, w, [IMGSZ, IMGSZ], True)
                assert lb["out_hw"] == [in_h, in_w], (lb, cap["input_shape"])
                doc["images"].append({
                    "image": img_name,
                    "path": rel(img_path),
                    "sha256": sha256_file(img_path),
                    "width": int(w),
                    "height": int(h),
                    "input_shape": cap["input_shape"],
                    "input_sum": cap["input_sum"],
                    "letterbox": {"new_unpad_hw": lb["new_unpad_hw"], "pad_tblr": lb["pad_tblr"]},
                    "detections": dets,
                    "raw": {
                        "shape": [1, int(c_), int(n_)],
                        "channel_sums": [_f(v) for v in raw.sum(1)],
                        "anchors": {str(i): [_f(v) for v in raw[:, i]] for i in idxs},
                    },
                })
                summary[(img_name, conf)] = len(dets)
            p = out_dir / f"{stem}{suffix}.json"
            text = json.dumps(doc, indent=None, separators=(",", ":"))
            # one image per line keeps diffs readable without bloating the file
            text = text.replace(',{"image":', ',\n{"image":').replace('"images":[{', '"images":[\n{')
            p.write_text(text + "\n")
            size = p.stat().st_size
            flag = "  <-- OVER LIMIT" if size > MAX_FILE_BYTES else ""
            print(f"{rel(p)}: {size} bytes{flag}")
    finally:
        h1.remove()
        h2.remove()
    print(f"  {model_name} ({task}, nc={len(names)}, kpt_shape={kpt_shape})")
    for img_name, _ in images:
        counts = ", ".join(f"conf {c}: {summary[(img_name, c)]:3d}" for c, _ in CONFS)
        print(f"    {img_name:16s} {counts}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", type=Path, default=ROOT / "assets")
    ap.add_argument("--out", type=Path, default=ROOT / "tests/fixtures/detect")
    ap.add_argument("--only", choices=["frame", "letterbox", "detect"])
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if a.only in (None, "frame"):
        extract_frame(a.assets)
    if a.only in (None, "letterbox"):
        make_letterbox(a.out)
    if a.only in (None, "detect"):
        for m in MODELS:
            run_model(m, a.assets, a.out)


if __name__ == "__main__":
    main()
