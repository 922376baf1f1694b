"""Engine errors as Python exceptions with the CLI's messages; no input crashes."""

from __future__ import annotations

import pytest

import pitchside
from conftest import ASSETS, VTEST, cli_error, run_cli


def test_bad_yaml_raises_config_error_with_file_line_column_as_the_cli(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("device: cpu\nmodels:\n  players:\n    path: [unclosed\n")
    with pytest.raises(pitchside.ConfigError) as e:
        pitchside.Pipeline(bad)
    assert str(e.value).startswith(f"{bad}:4:")
    assert str(e.value) == cli_error("config", "show", "--config", str(bad))


def test_an_unknown_key_and_a_missing_model_say_where_as_the_cli(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("device: cpu\nprofle: cpu\n")
    with pytest.raises(pitchside.ConfigError) as e:
        pitchside.Pipeline(typo)
    assert str(e.value).startswith(f"{typo}:2:")
    assert str(e.value) == cli_error("config", "show", "--config", str(typo))

    missing = tmp_path / "missing-model.yaml"
    missing.write_text(
        (ASSETS.parent / "configs" / "default.yaml").read_text().replace("assets/yolov8n-railway.pt", "nowhere.pt")
    )
    with pytest.raises(pitchside.ConfigError, match="nowhere.pt") as e:
        pitchside.Pipeline(missing)
    assert str(e.value) == cli_error("run", "--config", str(missing), str(VTEST))


def test_a_missing_config_file_and_bad_devices(tmp_path):
    absent = tmp_path / "absent.yaml"
    with pytest.raises(pitchside.ConfigError, match="absent.yaml") as e:
        pitchside.Pipeline(absent)
    assert str(e.value) == cli_error("config", "show", "--config", str(absent))
    with pytest.raises(pitchside.InputError, match="`tpu` is not one of auto, cuda, cuda:N, wgpu, cpu"):
        pitchside.Pipeline(device="tpu")
    # As the CLI refuses `--device tpu` (clap quotes the same list).
    assert "`tpu` is not one of" in run_cli("config", "show", "--device", "tpu", check=False).stderr
    with pytest.raises(pitchside.InputError):
        pitchside.Pipeline(device=3)  # type: ignore[arg-type]
    # This build has the CPU only (the default features): the CLI's refusal, word for word.
    with pytest.raises(pitchside.DeviceError) as e:
        pitchside.Pipeline(device="cuda")
    assert str(e.value) == cli_error("config", "show", "--device", "cuda")
    # A numbered GPU is a device (refused here as its backend is); a numbered CPU says why.
    with pytest.raises(pitchside.DeviceError) as e:
        pitchside.Pipeline(device="cuda:1")
    assert str(e.value) == cli_error("config", "show", "--device", "cuda:1")
    with pytest.raises(pitchside.InputError, match="there is one CPU device"):
        pitchside.Pipeline(device="cpu:1")


def test_missing_corrupt_and_directory_videos_raise_video_error_as_the_cli(pipeline, tmp_path):
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(b"RIFF" + bytes(range(256)) * 64)
    for video, words in [
        (tmp_path / "absent.avi", "no such file"),
        (corrupt, "not a video"),
        (tmp_path, "is a directory"),
    ]:
        for call in (lambda v: pipeline.run(v, progress=False), pipeline.frames):
            with pytest.raises(pitchside.VideoError, match=words) as e:
                call(video)
            assert str(e.value) == cli_error("run", str(video)), video
    with pytest.raises(pitchside.InputError, match="video: expected a path"):
        pipeline.run(None)  # type: ignore[arg-type]


def test_a_truncated_video_gives_the_frames_before_the_cut_marked_partial(tmp_path, small_yaml):
    cut = tmp_path / "cut.avi"
    data = VTEST.read_bytes()
    cut.write_bytes(data[: len(data) // 8])
    small = pitchside.Pipeline(small_yaml)
    answer = small.run(cut, progress=False)
    n = len(answer["frames"])
    assert 0 < n < 795
    if answer.get("partial"):
        assert answer["error"]
    # The stream ends the same way: the frames, then the run's error if it had one.
    got = []
    try:
        for f in small.frames(cut):
            got.append(f.frame_number)
    except pitchside.Error as e:
        assert answer.get("error") == str(e)
    assert got == list(range(len(got))) and len(got) >= 1


def test_score_errors_as_the_cli(tmp_path, short_clip):
    absent = tmp_path / "absent.json"
    with pytest.raises(pitchside.ScoreError, match="absent.json") as e:
        pitchside.score(short_clip, absent)
    assert str(e.value) == cli_error("score", "--video", str(short_clip), "--answer", str(absent))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(pitchside.ScoreError) as e:
        pitchside.score(short_clip, bad)
    assert str(e.value) == cli_error("score", "--video", str(short_clip), "--answer", str(bad))
    with pytest.raises(pitchside.ScoreError):
        pitchside.score(short_clip, b"{not json")
    # Both wrong: whichever the scorer checks first is reported, as by the CLI.
    with pytest.raises((pitchside.VideoError, pitchside.ScoreError)) as e:
        pitchside.score(tmp_path / "absent.avi", bad)
    assert str(e.value) == cli_error("score", "--video", str(tmp_path / "absent.avi"), "--answer", str(bad))
