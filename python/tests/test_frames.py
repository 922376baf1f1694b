"""`Pipeline.frames`: streaming, early stop, what the stream yields."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest

import pitchside
from conftest import VTEST, thread_names


def round2(v: float) -> float:
    """As the answer rounds (`engine/src/response.rs`): half away from zero, in float64."""
    x = v * 100.0
    r = math.floor(abs(x) + 0.5)
    return math.copysign(r, x) / 100.0


def rounded(a: np.ndarray) -> list:
    """An array as the answer carries it: widened to float64, rounded to 2 decimals."""
    return [[round2(float(v)) for v in row] for row in a.astype(np.float64)]


def test_the_stream_yields_the_processed_frames_of_the_run(pipeline, cli_answer):
    stride = pipeline.frame_stride
    # The first 150 processed frames (the whole clip is `run`'s test): the same objects,
    # ids and keypoints as the CLI's answer on those frames.
    with pipeline.frames(VTEST) as s:
        frames = [f for _, f in zip(range(150), s)]
    assert [f.frame_number for f in frames] == list(range(0, 150 * stride, stride))
    for f in frames:
        expected = cli_answer["frames"][f.frame_number]
        objects = expected["objects"]
        assert rounded(f.boxes) == [o["bbox"] for o in objects], f.frame_number
        assert f.track_ids.tolist() == [o["id"] for o in objects]
        assert f.class_ids.tolist() == [o["class_id"] for o in objects]
        assert rounded(f.keypoints) == expected["keypoints"]
        assert f.boxes.dtype == np.float32 and f.boxes.shape == (len(objects), 4)
        assert f.keypoints.shape == (pipeline.num_keypoints, 2)
        assert f.scores.shape == (len(objects),) and ((f.scores > 0) & (f.scores <= 1)).all()


def test_a_stream_stopped_after_10_frames_leaves_no_thread_and_frees_the_pipeline(pipeline):
    # A first stream and a first `detect` start the process's pools (rayon's, OpenCV's, the
    # executors'), which stay for the life of the process.
    with pipeline.frames(VTEST) as s:
        for _, _ in zip(range(10), s):
            pass
    pipeline.detect([np.zeros((64, 64, 3), np.uint8)], track=False)
    baseline = thread_names()
    s = pipeline.frames(VTEST)
    got = [next(s) for _ in range(10)]
    assert len(got) == 10
    # While it runs, the decoder and the run have threads of their own ...
    running = thread_names()
    # (Linux keeps 15 characters of a name.)
    assert "pitchside-frame" in running and "pitchside-decod" in running, running
    # ... which closing the stream ends.
    s.close()
    assert thread_names() == baseline
    # The stream is over, and the pipeline runs again.
    with pytest.raises(StopIteration):
        next(s)
    assert len(pipeline.detect([np.zeros((64, 64, 3), np.uint8)], track=False)) == 1

    # Dropping an unfinished stream (a `break` out of a for loop) does the same.
    for i, _ in enumerate(pipeline.frames(VTEST)):
        if i == 9:
            break
    gc.collect()
    assert thread_names() == baseline


def test_an_open_stream_makes_other_calls_fail_instead_of_waiting_forever(pipeline):
    s = pipeline.frames(VTEST)
    next(s)
    with pytest.raises(pitchside.BusyError, match="streaming frames"):
        pipeline.run(VTEST, progress=False)
    s.close()
