"""`pitchside.analyze` (the pitch analytics of an answer) against `pitchside analyze`, on the
score crate's synthetic clip, whose pitch is in view in every frame and whose players wear
two teams' shirts."""

from __future__ import annotations

import json
import math
from typing import Dict

import numpy as np
import pytest

import pitchside
from conftest import cli_error, run_cli


def cli_analyze(video, answer, out, *extra: str) -> None:
    run_cli("analyze", "--video", str(video), "--answer", str(answer), "--out", str(out), *extra)


@pytest.fixture(scope="session")
def cli_exact(synthetic, tmp_path_factory) -> Dict:
    """`pitchside analyze` of the exact answer on the synthetic clip."""
    out = tmp_path_factory.mktemp("analyze") / "exact.json"
    cli_analyze(synthetic / "synthetic.mkv", synthetic / "exact.json", out)
    return json.loads(out.read_text())


@pytest.mark.parametrize("name", ["exact", "noisy"])
def test_analyze_equals_the_cli_analyze_json_on_the_synthetic_clip(synthetic, cli_exact, tmp_path, name):
    video, answer = synthetic / "synthetic.mkv", synthetic / f"{name}.json"
    if name == "exact":
        cli = cli_exact
    else:
        cli_analyze(video, answer, tmp_path / "cli.json")
        cli = json.loads((tmp_path / "cli.json").read_text())
    got = pitchside.analyze(video, answer)
    assert got == cli
    # What makes the comparison worth making: positions on the pitch, a cut, two teams,
    # distances and speeds.
    assert got["frames_with_homography"] == 80 and got["shots"] == [0, 48]
    xs = [o["x"] for f in got["frames"] for o in f["objects"]]
    assert sum(x is not None for x in xs) > 0.9 * len(xs)
    assert {t["team"] for t in got["tracks"]} >= {0, 1}
    assert max(t["distance_m"] for t in got["tracks"]) > 1


def test_analyze_of_a_dict_or_bytes_with_out_writes_what_the_cli_writes(synthetic, cli_exact, tmp_path):
    video, answer = synthetic / "synthetic.mkv", synthetic / "exact.json"
    got = pitchside.analyze(str(video), answer.read_bytes(), out=tmp_path / "py.json")
    assert got == cli_exact
    assert json.loads((tmp_path / "py.json").read_text()) == cli_exact
    # CSV by the name (as `--format csv`), of the answer as a dict.
    cli_analyze(video, answer, tmp_path / "cli.csv", "--format", "csv")
    assert pitchside.analyze(video, json.loads(answer.read_text()), out=tmp_path / "py.csv") == cli_exact
    assert (tmp_path / "py.csv").read_text() == (tmp_path / "cli.csv").read_text()
    assert (tmp_path / "py-tracks.csv").read_text() == (tmp_path / "cli-tracks.csv").read_text()


def test_positions_are_the_objects_as_numpy_columns(cli_exact):
    a = cli_exact
    cols = pitchside.positions(a)
    objects = [(f["frame_number"], f["shot"], o) for f in a["frames"] for o in f["objects"]]
    n = len(objects)
    assert n > 0 and all(len(c) == n for c in cols.values())
    assert cols["frame_number"].dtype == np.int64 and cols["id"].dtype == np.int64
    assert cols["x"].dtype == np.float64 and cols["team"].dtype == np.int64
    for i, (frame, shot, o) in enumerate(objects):
        assert (cols["frame_number"][i], cols["shot"][i], cols["id"][i]) == (frame, shot, o["id"])
        assert cols["class_id"][i] == o["class_id"]
        assert cols["team"][i] == (-1 if o["team"] is None else o["team"])
        for k in ("x", "y"):
            assert (o[k] is None and math.isnan(cols[k][i])) or cols[k][i] == o[k]
    assert (cols["team"] == -1).any() and (cols["team"] >= 0).any()
    # No rows: empty columns.
    assert all(len(c) == 0 for c in pitchside.positions({"frames": []}).values())


def test_a_bad_answer_or_video_raises_with_the_cli_message(synthetic, tmp_path):
    video = synthetic / "synthetic.mkv"
    absent = tmp_path / "absent.json"
    with pytest.raises(pitchside.ScoreError, match="absent.json") as e:
        pitchside.analyze(video, absent)
    assert str(e.value) == cli_error("analyze", "--video", str(video), "--answer", str(absent), "--out", str(tmp_path / "o.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(pitchside.ScoreError) as e:
        pitchside.analyze(video, bad)
    assert str(e.value) == cli_error("analyze", "--video", str(video), "--answer", str(bad), "--out", str(tmp_path / "o.json"))
    with pytest.raises(pitchside.ScoreError):
        pitchside.analyze(video, b"{not json")
    nowhere = tmp_path / "absent.mkv"
    with pytest.raises(pitchside.VideoError) as e:
        pitchside.analyze(nowhere, synthetic / "exact.json")
    assert str(e.value) == cli_error(
        "analyze", "--video", str(nowhere), "--answer", str(synthetic / "exact.json"), "--out", str(tmp_path / "o.json")
    )
    with pytest.raises(pitchside.InputError, match="answer: expected a path"):
        pitchside.analyze(video, 3)  # type: ignore[arg-type]
    assert not (tmp_path / "o.json").exists()


def test_no_pitch_in_view_warns_as_the_cli_and_gives_no_positions(synthetic):
    with pytest.warns(UserWarning, match="no pitch in view"):
        a = pitchside.analyze(synthetic / "synthetic.mkv", synthetic / "all_zero.json")
    assert a["frames_with_homography"] == 0
    assert all(o["x"] is None for f in a["frames"] for o in f["objects"])
