"""`Pipeline.run` and `pitchside.score` against the CLI on the same video and settings."""

from __future__ import annotations

import json

import pitchside
from conftest import VTEST, run_cli, without_time


def test_run_equals_the_cli_run_out_json_value_for_value(pipeline, cli_answer, tmp_path):
    calls = []
    out = tmp_path / "py.json"
    answer = pipeline.run(VTEST, out=out, progress=lambda done, total: calls.append((done, total)))
    assert without_time(answer) == without_time(cli_answer)
    assert len(answer["frames"]) == 795 and "partial" not in answer
    # `out` holds the same answer.
    assert json.loads(out.read_text()) == answer
    # Progress after each batch, to the last frame read, with the container's count.
    assert calls and calls[-1][0] >= 794 and all(t == 795 for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    # The device it ran on, as the CLI names it (the embedded default picks the CPU here).
    assert pipeline.device == "cpu"


def test_score_equals_the_cli_score_json(cli_answer_path):
    cli = json.loads(run_cli("score", "--video", str(VTEST), "--answer", str(cli_answer_path), "--json").stdout)
    assert pitchside.score(VTEST, cli_answer_path) == cli


def test_an_answer_scores_the_same_as_a_dict_bytes_or_file(small_yaml, short_clip, tmp_path):
    answer = pitchside.Pipeline(small_yaml).run(short_clip, out=tmp_path / "a.json", progress=False)
    from_file = pitchside.score(short_clip, tmp_path / "a.json")
    assert from_file["answer_frames"] == 40
    assert pitchside.score(str(short_clip), answer) == from_file
    assert pitchside.score(short_clip, json.dumps(answer).encode()) == from_file
