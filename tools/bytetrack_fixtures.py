#!/usr/bin/env python3
"""Parity fixtures for the Rust ByteTrack (plugins/bytetrack), generated with supervision 0.22.

Run by hand, never by tests or CI:

    python3 -m venv /work/venv-sv && /work/venv-sv/bin/pip install supervision==0.22.0
    /work/venv-sv/bin/python tools/bytetrack_fixtures.py            # writes the fixtures
    /work/venv-sv/bin/python tools/bytetrack_fixtures.py --check    # regenerates, diffs, writes nothing
    /work/venv-sv/bin/python tools/bytetrack_fixtures.py --bench    # supervision's cost per frame
    /work/venv-sv/bin/python tools/bytetrack_fixtures.py --stress 50 --out /tmp/bt-stress
    BYTETRACK_EXTRA_FIXTURES=/tmp/bt-stress cargo test -p pitchside-bytetrack --test parity -- --ignored

Each scenario is a seeded synthetic soccer clip: players, goalkeepers, referees and a ball
that move, cross, vanish behind each other for 5-40 frames and come back, plus detector
misses, jitter, class flicker, double detections and low-score clutter. The detections
of each frame go through `sv.ByteTrack(...).update_with_detections(sv.Detections(...))`
exactly as the Score Vision miner calls it, and the fixture stores the inputs and what
supervision returned, in its order.

Numbers are stored as integers in hundredths (`scale`): the value is `k / 100` computed in
float64 and then rounded to float32, which is what both this script and the Rust test do, so
the inputs are bit-identical on both sides. Scores use the same encoding.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import supervision as sv
from supervision.tracker.byte_tracker import matching

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "fixtures" / "bytetrack"
SCALE = 100
FIELD_W, FIELD_H = 1920.0, 1080.0

BALL, GOALKEEPER, PLAYER, REFEREE = 0, 1, 2, 3


# --------------------------------------------------------------------------------------
# Scenario simulation


class Obj:
    """One object on the pitch; positions are box centres in pixels."""

    def __init__(self, rng, cls, t0, t1, cx=None, cy=None, vx=None, vy=None):
        self.cls = cls
        self.t0, self.t1 = t0, t1
        self.cx = rng.uniform(40, FIELD_W - 40) if cx is None else cx
        self.cy = rng.uniform(60, FIELD_H - 60) if cy is None else cy
        vmax = 14.0 if cls == BALL else 6.0
        self.vx = rng.uniform(-vmax, vmax) if vx is None else vx
        self.vy = rng.uniform(-vmax / 2, vmax / 2) if vy is None else vy
        self.vmax = vmax
        self.aspect = rng.uniform(0.35, 0.5)
        self.occlusions = []  # (start, end) frame ranges where the object is hidden
        self.steer = True

    def size(self):
        if self.cls == BALL:
            return 12.0, 12.0
        # Farther (higher in the image) players look smaller.
        h = 55.0 + 55.0 * (self.cy / FIELD_H)
        return h * self.aspect, h

    def step(self, rng):
        if self.steer:
            self.vx += rng.normal(0, 0.35)
            self.vy += rng.normal(0, 0.25)
            self.vx = float(np.clip(self.vx, -self.vmax, self.vmax))
            self.vy = float(np.clip(self.vy, -self.vmax / 2, self.vmax / 2))
        self.cx += self.vx
        self.cy += self.vy
        if self.cx < 20 or self.cx > FIELD_W - 20:
            self.vx = -self.vx
            self.cx = float(np.clip(self.cx, 20, FIELD_W - 20))
        if self.cy < 40 or self.cy > FIELD_H - 40:
            self.vy = -self.vy
            self.cy = float(np.clip(self.cy, 40, FIELD_H - 40))

    def visible(self, t):
        if not (self.t0 <= t < self.t1):
            return False
        return not any(a <= t < b for a, b in self.occlusions)


def to_k(v):
    return int(np.rint(v * SCALE))


def box_k(cx, cy, w, h):
    x1 = float(np.clip(cx - w / 2, 0, FIELD_W - 2))
    y1 = float(np.clip(cy - h / 2, 0, FIELD_H - 2))
    x2 = float(np.clip(cx + w / 2, x1 + 1.5, FIELD_W))
    y2 = float(np.clip(cy + h / 2, y1 + 1.5, FIELD_H))
    return [to_k(x1), to_k(y1), to_k(x2), to_k(y2)]


def simulate(seed, n_frames, spec):
    """Returns a list of frames, each a list of [x1, y1, x2, y2, score, class] in hundredths."""
    rng = np.random.default_rng(seed)
    objs = []
    for cls, count in ((PLAYER, spec["players"]), (GOALKEEPER, 2), (REFEREE, 3), (BALL, 1)):
        for _ in range(count):
            # Some objects enter late or leave early so the count per frame varies.
            t0 = 0 if rng.random() < 0.8 else int(rng.integers(1, n_frames // 2))
            t1 = n_frames if rng.random() < 0.8 else int(rng.integers(t0 + 20, n_frames + 1))
            objs.append(Obj(rng, cls, t0, t1))
    # Pairs that cross head-on: same row, opposite directions, meeting at frame `tc`.
    for _ in range(spec["crossings"]):
        tc = int(rng.integers(20, n_frames - 20))
        x, y = rng.uniform(300, FIELD_W - 300), rng.uniform(150, FIELD_H - 150)
        speed = rng.uniform(2.0, 5.0)
        dur = int(rng.integers(40, 90))
        t0, t1 = max(0, tc - dur), min(n_frames, tc + dur)
        for sgn in (1.0, -1.0):
            o = Obj(rng, PLAYER, t0, t1, cx=x - sgn * speed * (tc - t0), cy=y + rng.uniform(-6, 6),
                    vx=sgn * speed, vy=0.0)
            o.steer = False
            o.aspect = 0.42
            objs.append(o)
    # Occlusions: hidden for 5-40 frames, then back.
    for o in objs:
        t = o.t0 + int(rng.integers(5, 60))
        while t < o.t1:
            if rng.random() < spec["occlusion_rate"]:
                length = int(rng.integers(5, 41))
                o.occlusions.append((t, t + length))
                t += length
            t += int(rng.integers(10, 80))

    frames = []
    for t in range(n_frames):
        for o in objs:
            if o.t0 <= t < o.t1:
                o.step(rng)
        dets = []
        if any(a <= t < b for a, b in spec.get("cuts", [])):
            frames.append(dets)  # camera cut: an empty frame
            continue
        for o in objs:
            if not o.visible(t) or rng.random() < spec["miss_rate"]:
                continue
            w, h = o.size()
            jit = spec["jitter"]
            cx = o.cx + rng.normal(0, jit)
            cy = o.cy + rng.normal(0, jit)
            w *= 1 + rng.normal(0, 0.03)
            h *= 1 + rng.normal(0, 0.03)
            if o.cls == BALL:
                score = rng.uniform(0.2, 0.75)
            elif rng.random() < spec["low_score_rate"]:
                score = rng.uniform(0.1, 0.3)  # the detector doubts it: second association
            else:
                score = float(np.clip(rng.normal(0.8, 0.1), 0.3, 0.97))
            cls = o.cls
            if cls in (PLAYER, GOALKEEPER) and rng.random() < 0.03:
                cls = GOALKEEPER if cls == PLAYER else PLAYER  # class flicker
            dets.append(box_k(cx, cy, w, h) + [to_k(score), cls])
            if rng.random() < spec["duplicate_rate"]:
                dx, dy = rng.normal(0, 4, 2)
                dets.append(box_k(cx + dx, cy + dy, w * 1.05, h * 1.05)
                            + [to_k(score * rng.uniform(0.3, 0.9)), cls])
        for _ in range(rng.poisson(spec["clutter"])):
            h = rng.uniform(30, 110)
            w = h * rng.uniform(0.3, 0.7)
            cx, cy = rng.uniform(0, FIELD_W), rng.uniform(0, FIELD_H)
            score = rng.uniform(0.1, 0.3) if rng.random() < 0.85 else rng.uniform(0.3, 0.5)
            dets.append(box_k(cx, cy, w, h) + [to_k(score), int(rng.integers(0, 4))])
        # A handful of scores exactly on the thresholds (0.1, the activation threshold).
        for d in dets:
            if rng.random() < 0.01:
                d[4] = int(rng.choice(spec["edge_scores"]))
        # Detector order: descending score, ties in random order.
        order = rng.permutation(len(dets))
        dets = [dets[i] for i in order]
        dets.sort(key=lambda d: -d[4])
        frames.append(dets[: spec.get("max_dets", 32)])
    return frames


# --------------------------------------------------------------------------------------
# Running supervision


def to_detections(frame):
    if not frame:
        return sv.Detections(
            xyxy=np.empty((0, 4), np.float32),
            confidence=np.empty(0, np.float32),
            class_id=np.empty(0, int),
        )
    a = np.asarray(frame, dtype=np.int64)
    # Same float64 division then float32 rounding as the Rust side: bit-identical inputs.
    return sv.Detections(
        xyxy=(a[:, :4] / SCALE).astype(np.float32),
        confidence=(a[:, 4] / SCALE).astype(np.float32),
        class_id=a[:, 5].astype(int),
    )


def make_tracker(params):
    tracker = sv.ByteTrack(**params)
    # supervision's id counters are class attributes shared by every tracker in the
    # process; reset() zeroes them so each scenario starts at id 1.
    tracker.reset()
    return tracker


def run_supervision(frames, params):
    tracker = make_tracker(params)
    outputs = []
    for frame in frames:
        res = tracker.update_with_detections(to_detections(frame))
        out = []
        for tid, box, cls in zip(res.tracker_id, res.xyxy, res.class_id):
            kb = [to_k(float(v)) for v in box]
            # The stored hundredths must reproduce supervision's float32 box exactly.
            assert all(np.float32(k / SCALE) == v for k, v in zip(kb, box)), (box, kb)
            out.append([int(tid)] + kb + [int(cls)])
        outputs.append(out)
    return outputs


def stats(frames, outputs, params):
    n = [len(f) for f in frames]
    ids = set()
    last_seen = {}
    recoveries = 0
    low_tracked = 0
    thr_k = to_k(params.get("track_activation_threshold", 0.25))
    for t, (frame, out) in enumerate(zip(frames, outputs)):
        boxes = {tuple(d[:4]): d[4] for d in frame}
        for o in out:
            tid = o[0]
            if tid in last_seen and t - last_seen[tid] > 1:
                recoveries += 1
            last_seen[tid] = t
            ids.add(tid)
            if boxes.get(tuple(o[1:5]), 100) <= thr_k:
                low_tracked += 1
    return {
        "frames": len(frames),
        "detections": int(sum(n)),
        "max_per_frame": int(max(n)),
        "empty_frames": int(sum(1 for x in n if x == 0)),
        "outputs": int(sum(len(o) for o in outputs)),
        "distinct_ids": len(ids),
        "id_recoveries_after_gap": recoveries,
        "low_score_outputs": low_tracked,
    }


SCENARIOS = [
    {
        "name": "match_default",
        "description": "600-frame clip, default parameters (frame_rate 30, lost_track_buffer 30)",
        "seed": 20240601,
        "frames": 600,
        "params": {},
        "spec": {
            "players": 20, "crossings": 8, "occlusion_rate": 0.25, "miss_rate": 0.04,
            "low_score_rate": 0.08, "clutter": 1.2, "duplicate_rate": 0.015, "jitter": 1.5,
            "edge_scores": [10, 25, 35], "cuts": [],
        },
    },
    {
        "name": "fps25_buffer10",
        "description": "frame_rate 25, lost_track_buffer 10 (max_time_lost 8): occlusions "
                       "outlive the buffer, tracks are dropped and restarted",
        "seed": 7,
        "frames": 400,
        "params": {"frame_rate": 25, "lost_track_buffer": 10},
        "spec": {
            "players": 18, "crossings": 10, "occlusion_rate": 0.35, "miss_rate": 0.06,
            "low_score_rate": 0.12, "clutter": 1.5, "duplicate_rate": 0.02, "jitter": 2.5,
            "edge_scores": [10, 25, 35], "cuts": [(200, 206)],
        },
    },
    {
        "name": "min_consecutive3",
        "description": "minimum_consecutive_frames 3, track_activation_threshold 0.3, "
                       "minimum_matching_threshold 0.7, frame_rate 60, lost_track_buffer 45, "
                       "with two camera cuts (empty frames)",
        "seed": 99,
        "frames": 300,
        "params": {
            "track_activation_threshold": 0.3, "lost_track_buffer": 45,
            "minimum_matching_threshold": 0.7, "frame_rate": 60,
            "minimum_consecutive_frames": 3,
        },
        "spec": {
            "players": 22, "crossings": 6, "occlusion_rate": 0.25, "miss_rate": 0.08,
            "low_score_rate": 0.1, "clutter": 2.0, "duplicate_rate": 0.02, "jitter": 2.0,
            "edge_scores": [10, 30, 40], "cuts": [(0, 1), (150, 158)],
        },
    },
]


def build(scenario):
    frames = simulate(scenario["seed"], scenario["frames"], scenario["spec"])
    params = scenario["params"]
    outputs = run_supervision(frames, params)
    full = {
        "track_activation_threshold": 0.25, "lost_track_buffer": 30,
        "minimum_matching_threshold": 0.8, "frame_rate": 30, "minimum_consecutive_frames": 1,
    }
    full.update(params)
    st = stats(frames, outputs, full)
    doc = {
        "name": scenario["name"],
        "description": scenario["description"],
        "generator": "tools/bytetrack_fixtures.py",
        "supervision": sv.__version__,
        "numpy": np.__version__,
        "seed": scenario["seed"],
        "params": full,
        "scale": SCALE,
        "stats": st,
        "format": "frames[i].d: detections [x1,y1,x2,y2,score,class]; frames[i].o: supervision's "
                  "output [tracker_id,x1,y1,x2,y2,class] in its order; numbers are k/scale",
        "frames": [{"d": d, "o": o} for d, o in zip(frames, outputs)],
    }
    return doc, st


def dumps(doc):
    # One frame per line keeps the file compact and its diffs readable.
    head = {k: v for k, v in doc.items() if k != "frames"}
    lines = [json.dumps(head, separators=(",", ":"))[:-1] + ',"frames":[']
    fr = [json.dumps(f, separators=(",", ":")) for f in doc["frames"]]
    lines.append(",\n".join(fr))
    lines.append("]}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# matching.linear_assignment cases: scipy's tie-breaking and the set order of the unmatched.


def lsa_cases(seed=5, count=240):
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        r, c = int(rng.integers(0, 25)), int(rng.integers(0, 25))
        if i % 3 == 0:
            denom = 20  # coarse grid: many exact ties
        elif i % 3 == 1:
            denom = 100
        else:
            denom = 100_000
        k = rng.integers(0, denom + 1, size=(r, c))
        # Mostly-high costs like IoU distances: a few good pairs in a sea of poor ones.
        good = rng.random((r, c)) < 0.15
        k = np.where(good, k // 3, np.maximum(k, denom * 7 // 10))
        thresh = float(rng.choice([0.5, 0.7, 0.8]))
        cost = k.astype(np.float64) / denom
        m, ua, ub = matching.linear_assignment(cost.copy(), thresh)
        cases.append({
            "rows": r, "cols": c, "denom": denom, "thresh": thresh,
            "k": k.reshape(-1).tolist(),
            "matches": [[int(a), int(b)] for a, b in m],
            "unmatched_a": [int(x) for x in ua],
            "unmatched_b": [int(x) for x in ub],
        })
    return {"generator": "tools/bytetrack_fixtures.py", "scipy": __import__("scipy").__version__,
            "format": "cost[i][j] = k[i*cols+j] / denom (float64)", "cases": cases}


# --------------------------------------------------------------------------------------
# Benchmark: the same integer LCG sequence as plugins/bytetrack/examples/bench.rs.


class Lcg:
    def __init__(self, seed):
        self.s = seed & 0xFFFFFFFFFFFFFFFF

    def next(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return self.s >> 33

    def uniform(self, lo, hi):  # inclusive
        return lo + self.next() % (hi - lo + 1)


def bench_sequence(n_frames=3000, n_objects=25, seed=12345):
    """25 boxes per frame, moving and bouncing, in hundredths of a pixel (integer math only)."""
    g = Lcg(seed)
    fw, fh = 192000, 108000
    objs = []
    for _ in range(n_objects):
        w, h = g.uniform(2500, 5000), g.uniform(6000, 11000)
        objs.append([g.uniform(0, fw - w), g.uniform(0, fh - h), w, h,
                     g.uniform(0, 1200) - 600, g.uniform(0, 800) - 400])
    frames = []
    for _ in range(n_frames):
        dets = []
        for o in objs:
            x, y, w, h, vx, vy = o
            if g.uniform(0, 49) == 0:
                vx, vy = g.uniform(0, 1200) - 600, g.uniform(0, 800) - 400
            x += vx
            y += vy
            if x < 0:
                x, vx = -x, -vx
            if x + w > fw:
                x, vx = 2 * (fw - w) - x, -vx
            if y < 0:
                y, vy = -y, -vy
            if y + h > fh:
                y, vy = 2 * (fh - h) - y, -vy
            o[:] = [x, y, w, h, vx, vy]
            j = [g.uniform(0, 300) - 150 for _ in range(4)]
            score = g.uniform(30, 95) if g.uniform(0, 9) else g.uniform(11, 24)
            dets.append([x + j[0], y + j[1], x + w + j[2], y + h + j[3], score, 2])
        frames.append(dets)
    return frames


def bench():
    frames = bench_sequence()
    dets = [to_detections(f) for f in frames]
    tracker = make_tracker({})
    n_out = 0
    id_sum = 0
    t0 = time.perf_counter()
    for d in dets:
        res = tracker.update_with_detections(d)
        n_out += len(res)
        id_sum += int(res.tracker_id.sum())
    dt = time.perf_counter() - t0
    print(f"supervision {sv.__version__} ByteTrack: {len(frames)} frames x 25 detections: "
          f"{dt / len(frames) * 1e3:.3f} ms/frame (outputs {n_out}, id sum {id_sum})")


# --------------------------------------------------------------------------------------


def stress(count, out_dir):
    """Random scenarios with random parameters, for a longer soak than the committed set."""
    rng = np.random.default_rng(424242)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        params = {
            "track_activation_threshold": float(rng.choice([0.1, 0.2, 0.25, 0.3, 0.5])),
            "lost_track_buffer": int(rng.choice([1, 5, 10, 30, 60])),
            "minimum_matching_threshold": float(rng.choice([0.5, 0.7, 0.8, 0.9, 1.0])),
            "frame_rate": int(rng.choice([10, 25, 30, 50, 60])),
            "minimum_consecutive_frames": int(rng.choice([1, 1, 2, 3, 5])),
        }
        spec = {
            "players": int(rng.integers(2, 26)), "crossings": int(rng.integers(0, 12)),
            "occlusion_rate": float(rng.uniform(0, 0.5)), "miss_rate": float(rng.uniform(0, 0.2)),
            "low_score_rate": float(rng.uniform(0, 0.3)), "clutter": float(rng.uniform(0, 4)),
            "duplicate_rate": float(rng.uniform(0, 0.1)), "jitter": float(rng.uniform(0.5, 6)),
            "edge_scores": [10, to_k(params["track_activation_threshold"]),
                            to_k(params["track_activation_threshold"] + 0.1)],
            "cuts": [(int(a), int(a) + int(rng.integers(1, 20))) for a in rng.integers(0, 200, 2)],
            "max_dets": int(rng.integers(10, 60)),
        }
        sc = {"name": f"stress_{i:03d}", "description": "stress", "seed": 1000 + i,
              "frames": int(rng.integers(50, 400)), "params": params, "spec": spec}
        doc, st = build(sc)
        (out_dir / f"{sc['name']}.json").write_text(dumps(doc))
        print(sc["name"], params, st["frames"], st["outputs"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", action="store_true", help="time supervision per frame and exit")
    ap.add_argument("--check", action="store_true", help="regenerate and compare, write nothing")
    ap.add_argument("--stress", type=int, metavar="N",
                    help="write N random scenarios to --out instead (for BYTETRACK_EXTRA_FIXTURES)")
    ap.add_argument("--out", default="/tmp/bytetrack-stress", help="directory for --stress")
    args = ap.parse_args()
    if sv.__version__ != "0.22.0":
        sys.exit(f"needs supervision 0.22.0, found {sv.__version__}")
    if args.bench:
        bench()
        return
    if args.stress:
        stress(args.stress, args.out)
        return
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    files = {}
    for sc in SCENARIOS:
        doc, st = build(sc)
        files[f"{sc['name']}.json"] = dumps(doc)
        print(sc["name"], st)
    files["linear_assignment.json"] = json.dumps(lsa_cases(), separators=(",", ":")) + "\n"
    total = 0
    for name, text in files.items():
        path = OUT_DIR / name
        total += len(text)
        if args.check:
            same = path.exists() and path.read_text() == text
            print(f"{name}: {'identical' if same else 'DIFFERS'}")
        else:
            path.write_text(text)
    print(f"total {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
