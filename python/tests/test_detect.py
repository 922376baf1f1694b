"""`Pipeline.detect` on numpy frames: the same boxes as a run on the same pixels, tracking
across calls, supervision, and every kind of wrong input refused with a clear message."""

from __future__ import annotations

import numpy as np
import pytest

import pitchside
from test_frames import rounded


@pytest.fixture(scope="module")
def small(small_yaml):
    return pitchside.Pipeline(small_yaml)


def test_detect_on_decoded_frames_gives_the_boxes_of_an_exact_run(small, small_cli_answer, vtest_frames):
    answer = small_cli_answer
    small.reset_tracking()
    results = []
    # Calls of several sizes (not multiples of the batch): the tracks go on across them.
    sizes = [1, 6, 13, 4, 64]
    i = 0
    while i < len(vtest_frames):
        n = sizes[len(results) % len(sizes)]
        results.extend(small.detect(vtest_frames[i : i + n], fps=10.0))
        i += n
    assert len(results) == 795
    for f, expected in zip(results, answer["frames"]):
        objects = expected["objects"]
        assert rounded(f.boxes) == [o["bbox"] for o in objects], f.frame_number
        assert f.track_ids.tolist() == [o["id"] for o in objects], f.frame_number
        assert f.class_ids.tolist() == [o["class_id"] for o in objects]
        assert rounded(f.keypoints) == expected["keypoints"]


def test_without_tracking_every_detection_comes_back_untracked(small, vtest_frames):
    small.reset_tracking()
    tracked = small.detect(vtest_frames[:3])
    untracked = small.detect(vtest_frames[:3], track=False)
    for t, u in zip(tracked, untracked):
        assert (u.track_ids == 0).all()
        # The tracker drops what it does not confirm; what it keeps is a detection's box.
        assert len(u) >= len(t) > 0
    # Untracked calls leave the tracks alone: the next tracked frame continues them.
    assert set(small.detect(vtest_frames[3:4])[0].track_ids) <= set(range(1, 100))


def test_to_supervision_round_trips_through_detections(small, vtest_frames):
    sv = pytest.importorskip("supervision")
    small.reset_tracking()
    f = small.detect(vtest_frames[:2])[1]
    d = f.to_supervision()
    assert isinstance(d, sv.Detections) and len(d) == len(f) > 0
    np.testing.assert_array_equal(d.xyxy, f.boxes)
    np.testing.assert_array_equal(d.confidence, f.scores)
    np.testing.assert_array_equal(d.class_id, f.class_ids)
    np.testing.assert_array_equal(d.tracker_id, f.track_ids)
    assert set(d.data["class_name"]) <= {"ball", "goalkeeper", "player", "referee"}
    # A user's annotators take it as it is.
    drawn = sv.BoxAnnotator().annotate(vtest_frames[1].copy(), d)
    assert drawn.shape == vtest_frames[1].shape and (drawn != vtest_frames[1]).any()
    # Untracked detections have no tracker ids.
    assert small.detect(vtest_frames[:1], track=False)[0].to_supervision().tracker_id is None


def test_a_view_of_an_array_is_read_as_its_pixels(small, vtest_frames):
    frame = vtest_frames[100]
    crop = frame[50:450, 100:700]  # not contiguous
    assert not crop.flags["C_CONTIGUOUS"]
    a = small.detect([crop], track=False)[0]
    b = small.detect([np.ascontiguousarray(crop)], track=False)[0]
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert small.detect([], track=False) == []


@pytest.mark.parametrize(
    "images, message",
    [
        ([np.zeros((64, 64, 3), np.float64)], "image 0: dtype float64, expected uint8"),
        ([np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), np.uint8)], r"image 1: shape \[64, 64\]"),
        ([np.zeros((64, 64, 4), np.uint8)], r"image 0: shape \[64, 64, 4\]"),
        ([np.zeros((0, 64, 3), np.uint8)], "above 0"),
        ([[[0, 0, 0]]], "image 0: expected a numpy array"),
        ([None], "got NoneType"),
        (np.zeros((64, 64, 3), np.uint8), r"pass \[image\]"),
        (42, "got int"),
    ],
)
def test_wrong_images_raise_input_error_with_a_clear_message(small, images, message):
    with pytest.raises(pitchside.InputError, match=message) as e:
        small.detect(images)
    assert isinstance(e.value, ValueError) and isinstance(e.value, pitchside.Error)
