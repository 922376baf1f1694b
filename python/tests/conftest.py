"""Shared fixtures: the repository's assets, the CLI built from the same sources (its
answers are what the binding must reproduce), loaded pipelines and decoded frames."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
from typing import Dict, List

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"
VTEST = ASSETS / "vtest.avi"
DEFAULT_YAML = ROOT / "configs" / "default.yaml"


def cli_binary() -> pathlib.Path:
    """`PITCHSIDE_BIN`, else the CLI in the build directory (dev build first)."""
    env = os.environ.get("PITCHSIDE_BIN")
    if env:
        return pathlib.Path(env)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    for profile in ("debug", "release"):
        p = target / profile / "pitchside"
        if p.exists():
            return p
    raise RuntimeError(
        f"no pitchside CLI under {target}: build it (cargo build -p pitchside) or set PITCHSIDE_BIN"
    )


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The CLI in the repository root (where the embedded default finds assets/)."""
    r = subprocess.run(
        [str(cli_binary()), "--log", "warn", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check and r.returncode != 0:
        raise AssertionError(f"pitchside {' '.join(args)} failed ({r.returncode}): {r.stderr}")
    return r


def cli_error(*args: str) -> str:
    """The message the CLI prints for a failing command (its `error: ` line)."""
    r = run_cli(*args, check=False)
    assert r.returncode != 0, r.stdout
    lines = [l for l in r.stderr.splitlines() if l.startswith("error: ")]
    assert lines, r.stderr
    return lines[-1][len("error: ") :]


def without_time(answer: Dict) -> Dict:
    """An answer without its wall time, the one value two runs never share."""
    return {k: v for k, v in answer.items() if k != "processing_time"}


def deployment(tmp: pathlib.Path, name: str, **cpu_profile: object) -> pathlib.Path:
    """The default deployment as a file (model paths made absolute), its CPU profile
    changed by `cpu_profile`."""
    text = DEFAULT_YAML.read_text().replace("path: assets/", f"path: {ASSETS}/")
    lines = text.splitlines()
    i = lines.index("  cpu:")
    for k, v in cpu_profile.items():
        # The profile ends the file: a key given here replaces the file's.
        lines = [l for l in lines[: i + 1]] + [
            l for l in lines[i + 1 :] if not l.strip().startswith(f"{k}:")
        ]
        lines.insert(i + 1, f"    {k}: {v}")
    p = tmp / name
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.fixture(scope="session", autouse=True)
def in_repository_root():
    """The embedded default deployment's paths are relative to the working directory."""
    old = os.getcwd()
    os.chdir(ROOT)
    yield
    os.chdir(old)


@pytest.fixture(scope="session")
def pipeline():
    import pitchside

    return pitchside.Pipeline()


@pytest.fixture(scope="session")
def cli_answer_path(tmp_path_factory) -> pathlib.Path:
    """`pitchside run --out` on vtest.avi with the embedded default deployment."""
    out = tmp_path_factory.mktemp("cli") / "vtest.json"
    run_cli("run", "--out", str(out), str(VTEST))
    return out


@pytest.fixture(scope="session")
def cli_answer(cli_answer_path) -> Dict:
    return json.loads(cli_answer_path.read_text())


@pytest.fixture(scope="session")
def small_yaml(tmp_path_factory) -> pathlib.Path:
    """The default deployment at 320 px, every frame, batches of 4, full-size frames
    letterboxed by the detectors (`exact`): fast on a CPU, and what `detect` does."""
    return deployment(
        tmp_path_factory.mktemp("deployments"),
        "small-exact.yaml",
        imgsz="{ players: 320, pitch: 320, ball: 320 }",
        frame_stride=1,
        batch_size=4,
        frame_conversion="exact",
    )


@pytest.fixture(scope="session")
def small_cli_answer(small_yaml, tmp_path_factory) -> Dict:
    """`pitchside run --config small-exact.yaml --out` on vtest.avi."""
    out = tmp_path_factory.mktemp("cli") / "small-exact.json"
    run_cli("run", "--config", str(small_yaml), "--out", str(out), str(VTEST))
    return json.loads(out.read_text())


@pytest.fixture(scope="session")
def vtest_frames() -> List[np.ndarray]:
    """Every frame of vtest.avi, BGR uint8, as the system's OpenCV decodes it: through the
    system FFmpeg (the libraries the engine and the system OpenCV both use; the engine's
    `exact` frames equal OpenCV's `VideoCapture` pixel for pixel, a Rust test checks it).
    Not through `opencv-python`: its wheel bundles another FFmpeg, whose MPEG-4 decoding
    differs by a level or two on a few pixels a frame (measured: 0 to 2 levels on up to
    0.002 % of the pixels of vtest's first frames), enough to move a box by 0.01 px."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(VTEST), "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    frames = list(np.frombuffer(raw, np.uint8).reshape(-1, 576, 768, 3))
    assert len(frames) == 795
    return frames


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory) -> pathlib.Path:
    """The first 40 frames of vtest.avi as an MJPEG clip."""
    p = tmp_path_factory.mktemp("clips") / "short.avi"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(VTEST), "-frames:v", "40", "-c:v", "mjpeg", "-q:v", "3", str(p)],
        check=True,
    )
    return p


def thread_names() -> List[str]:
    """Threads of this process by name, native ones included (Python's `threading` sees
    only its own)."""
    names = []
    for t in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{t}/comm") as f:
                names.append(f.read().strip())
        except FileNotFoundError:  # ended meanwhile
            pass
    return sorted(names)



@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> pathlib.Path:
    """The score crate's synthetic clip (a broadcast-like pitch whose players' true
    positions are known, a cut at frame 48) and its test answers, as its
    `render_synthetic` example writes them (through the native module: the example binary
    would need a build of its own): a folder with synthetic.mkv and <answer>.json (exact,
    noisy, partial, all_zero, ...)."""
    from pitchside import _pitchside

    d = tmp_path_factory.mktemp("synthetic")
    written = _pitchside._render_synthetic(str(d))
    assert d / "synthetic.mkv" in map(pathlib.Path, written) and (d / "exact.json").is_file()
    return d
