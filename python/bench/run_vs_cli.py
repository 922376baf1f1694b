"""The binding's overhead: `Pipeline.run` against `pitchside run` on the same clip and
deployment, interleaved (this kind of machine drifts), each in a fresh process.

    python python/bench/run_vs_cli.py [--rounds 3] [--config F] CLIP

Prints, per round and as medians, the whole command's wall time (process start, model
loading, the run, writing the JSON) and the run's own `processing_time`, and checks that the
two answers are the same (but for `processing_time`). PITCHSIDE_BIN names the CLI (default
$CARGO_TARGET_DIR/debug/pitchside).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PY = """
import sys, pitchside
p = pitchside.Pipeline(sys.argv[1] or None)
p.run(sys.argv[2], out=sys.argv[3], progress=False)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("clip")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--config", default="")
    a = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    cli = os.environ.get("PITCHSIDE_BIN", os.path.join(target, "debug", "pitchside"))
    rows = {"cli": [], "python": []}
    answers = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for kind in ("cli", "python") if r % 2 == 0 else ("python", "cli"):
                out = os.path.join(tmp, f"{kind}.json")
                if kind == "cli":
                    cmd = [cli, "--log", "warn", "run", "--out", out, a.clip]
                    if a.config:
                        cmd[4:4] = ["--config", a.config]
                else:
                    cmd = [sys.executable, "-c", PY, a.config, a.clip, out]
                t = time.monotonic()
                subprocess.run(cmd, check=True)
                wall = time.monotonic() - t
                answer = json.load(open(out))
                rows[kind].append((wall, answer["processing_time"]))
                answers[kind] = {k: v for k, v in answer.items() if k != "processing_time"}
                print(f"round {r + 1} {kind:6} wall {wall:7.2f} s  processing_time {answer['processing_time']:7.2f} s", flush=True)
    assert answers["cli"] == answers["python"], "the answers differ"
    med = {k: (statistics.median(w for w, _ in v), statistics.median(p for _, p in v)) for k, v in rows.items()}
    for k, (w, p) in med.items():
        print(f"median {k:6} wall {w:7.2f} s  processing_time {p:7.2f} s")
    print(
        f"python / cli: wall {med['python'][0] / med['cli'][0]:.3f}, "
        f"processing_time {med['python'][1] / med['cli'][1]:.3f}; answers identical"
    )


if __name__ == "__main__":
    main()
