"""The binding's overhead: `Pipeline.run` against `pitchside run` on the same clip and
deployment, interleaved (this kind of machine drifts), each in a fresh process.

    python python/bench/run_vs_cli.py [--rounds 5] [--config F] CLIP

Prints, per round, the whole command's wall time (process start, model loading, the run,
writing the JSON) and the run's own `processing_time`, and the python/cli ratio of the
round's pair (the two ran back to back, so a ratio sees less of the machine's drift than
the times); then medians and ranges, and checks that the two answers are the same (but for
`processing_time`). PITCHSIDE_BIN names the CLI (default $CARGO_TARGET_DIR/debug/pitchside);
the `pitchside` package is the one this Python imports (PYTHONPATH can point at another
build).
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
    ap.add_argument("--rounds", type=int, default=5)
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
            (pw, pp), (cw, cp) = rows["python"][-1], rows["cli"][-1]
            print(f"round {r + 1} python/cli  wall {pw / cw:.3f}  processing_time {pp / cp:.3f}", flush=True)
    assert answers["cli"] == answers["python"], "the answers differ"
    print(f"pitchside {subprocess.run([cli, '--version'], capture_output=True, text=True).stdout.strip()}; "
          f"python package {__import__('pitchside').__file__}")
    for k, v in rows.items():
        for i, what in ((0, "wall"), (1, "processing_time")):
            xs = [x[i] for x in v]
            print(f"{k:6} {what:15} median {statistics.median(xs):7.2f} s  range {min(xs):7.2f}-{max(xs):7.2f} s")
    for i, what in ((0, "wall"), (1, "processing_time")):
        ratios = [p[i] / c[i] for p, c in zip(rows["python"], rows["cli"])]
        print(
            f"python/cli {what:15} per-round median {statistics.median(ratios):.3f}  "
            f"range {min(ratios):.3f}-{max(ratios):.3f}  ratio of medians "
            f"{statistics.median(p[i] for p in rows['python']) / statistics.median(c[i] for c in rows['cli']):.3f}"
        )
    print("answers identical")


if __name__ == "__main__":
    main()
