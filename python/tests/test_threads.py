"""The GIL is released while the engine works; Ctrl-C stops a run cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pitchside
from conftest import ROOT


def test_two_pipelines_in_two_threads_run_at_once(small_yaml, short_clip):
    pipelines = [pitchside.Pipeline(small_yaml) for _ in range(2)]
    spans = [None, None]
    answers = [None, None]
    ticks = []

    def work(i):
        start = time.monotonic()
        answers[i] = pipelines[i].run(short_clip, progress=False)
        spans[i] = (start, time.monotonic())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    # The interpreter stays free meanwhile: this thread keeps running Python.
    while any(t.is_alive() for t in threads):
        ticks.append(time.monotonic())
        time.sleep(0.01)
    for t in threads:
        t.join()
    (a0, a1), (b0, b1) = spans
    # Each run started before the other ended: they overlapped.
    assert a0 < b1 and b0 < a1, spans
    assert len(ticks) > 10
    assert answers[0]["frames"] == answers[1]["frames"] and len(answers[0]["frames"]) == 40


SCRIPT = textwrap.dedent(
    """
    import sys, pitchside
    p = pitchside.Pipeline(sys.argv[1])
    def progress(done, total):
        print("progress", done, flush=True)
    try:
        p.run(sys.argv[2], progress=progress)
        print("finished", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    # The pipeline is whole: it runs again.
    print("again", len(p.run(sys.argv[3], progress=False)["frames"]), flush=True)
    """
)


def test_ctrl_c_stops_a_run_at_its_next_batch_and_the_pipeline_runs_again(small_yaml, short_clip):
    from conftest import VTEST

    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(small_yaml), str(VTEST), str(short_clip)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("progress"), (line, proc.stderr.read() if proc.stderr else "")
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    lines = out.splitlines()
    assert "interrupted" in lines, (out, err)
    assert "finished" not in lines
    assert "again 40" in lines, (out, err)
    # Stopped long before the 795 frames.
    done = [int(l.split()[1]) for l in [line, *lines] if l.startswith("progress")]
    assert max(done) < 795
    assert proc.returncode == 0
