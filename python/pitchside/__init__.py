"""Pitchside from Python: the engine's pipeline on video files and numpy frames.

    import pitchside
    answer = pitchside.Pipeline().run("assets/vtest.avi")   # the Score Vision answer
    print(len(answer["frames"]), answer["frames"][0]["objects"][:3])

`Pipeline(config, device)` loads a deployment exactly as `pitchside run --config --device`
does; `run` gives what `pitchside run --out` writes (a file or an http(s) URL); `frames` streams per-frame results;
`detect` runs on BGR uint8 numpy frames (as OpenCV gives them); `score` is
`pitchside score --json`; `analyze` is `pitchside analyze` (positions on the pitch in
metres, per-track distance, top speed and team), and `positions` its objects as numpy
columns. The engine works with the GIL released.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _pitchside
from ._errors import (
    BusyError,
    ConfigError,
    DeviceError,
    DownloadError,
    Error,
    InputError,
    ModelError,
    ScoreError,
    VideoError,
)

__version__: str = _pitchside.__version__

__all__ = [
    "BusyError",
    "ConfigError",
    "DeviceError",
    "DownloadError",
    "Error",
    "Frame",
    "FrameStream",
    "InputError",
    "ModelError",
    "Pipeline",
    "ScoreError",
    "VideoError",
    "analyze",
    "positions",
    "score",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Output classes of the Score Vision answer.
CLASS_NAMES = {0: "ball", 1: "goalkeeper", 2: "player", 3: "referee"}


@dataclass(frozen=True, repr=False)
class Frame:
    """One processed frame: objects in the answer's order (by class, then descending score).

    `boxes` are x1, y1, x2, y2 in source pixels (unrounded); `track_ids` are the answer's
    ids (from 1; 0 for `detect(..., track=False)`); `keypoints` are the pitch model's
    keypoints, (0, 0) where unseen or below confidence 0.5.
    """

    frame_number: int
    boxes: np.ndarray  # (N, 4) float32
    scores: np.ndarray  # (N,) float32
    class_ids: np.ndarray  # (N,) int64
    track_ids: np.ndarray  # (N,) int64
    keypoints: np.ndarray  # (K, 2) float32

    @classmethod
    def _from_native(cls, t: tuple) -> "Frame":
        return cls(*t)

    def __len__(self) -> int:
        return len(self.boxes)

    def __repr__(self) -> str:
        seen = int((self.keypoints != 0).any(axis=1).sum())
        return (
            f"Frame(frame_number={self.frame_number}, objects={len(self)}, "
            f"keypoints={seen}/{len(self.keypoints)} seen)"
        )

    def to_supervision(self) -> Any:
        """The objects as a `supervision.Detections` (needs `pip install supervision`)."""
        try:
            import supervision as sv
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "Frame.to_supervision() needs supervision: pip install supervision"
            ) from e
        tracked = bool(len(self.track_ids)) and bool((self.track_ids > 0).all())
        return sv.Detections(
            xyxy=self.boxes.astype(np.float32),
            confidence=self.scores.astype(np.float32),
            class_id=self.class_ids.astype(int),
            tracker_id=self.track_ids.astype(int) if tracked else None,
            data={"class_name": np.array([CLASS_NAMES.get(int(c), str(c)) for c in self.class_ids])},
        )


class FrameStream:
    """The frames of a running video, as they are tracked. Iterate it; leave early with
    `close()` (or `with`), which stops the run and frees the decoder and its threads."""

    def __init__(self, native: Any) -> None:
        self._native = native

    def __iter__(self) -> "FrameStream":
        return self

    def __next__(self) -> Frame:
        t = self._native.__next__()
        return Frame._from_native(t)

    def close(self) -> None:
        self._native.close()

    def __enter__(self) -> "FrameStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        native = getattr(self, "_native", None)
        if native is not None:
            native.close()


def _path(p: PathLike, what: str) -> str:
    try:
        return os.fspath(p)
    except TypeError:
        raise InputError(f"{what}: expected a path, got {type(p).__name__}") from None


class _Bar:
    """A progress bar: tqdm's (terminal or Jupyter) where installed, else a line on a
    terminal's stderr, else none."""

    def __init__(self) -> None:
        self._tqdm = None
        self._last = -1
        try:
            from tqdm.auto import tqdm

            self._tqdm = tqdm(unit="frame", desc="pitchside")
        except ImportError:
            self._tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if self._tqdm is not None:
            if total and self._tqdm.total != max(total, done):
                self._tqdm.total = max(total, done)
            self._tqdm.update(done - self._tqdm.n)
        elif self._tty:
            pct = 100 * done // total if total else 0
            if pct != self._last:
                self._last = pct
                sys.stderr.write(f"\rpitchside: {done}/{total} frames ({pct}%)")
                sys.stderr.flush()

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
        elif self._tty and self._last >= 0:
            sys.stderr.write("\n")


class Pipeline:
    """A loaded deployment: the embedded default (`config=None`, its paths relative to the
    working directory) or a YAML file, exactly as `pitchside run --config` loads it.

    `device`: "auto", "cpu", "cuda", "cuda:N", "wgpu", or LibTorch's "torch:cuda[:N]",
    "torch:mps", "torch:cpu" (where built in); None as the CLI without `--device`
    (`PITCHSIDE_DEVICE`, else the deployment's `device:`, which the default sets to auto).
    The models stay loaded across calls. One pipeline runs one thing at a time; two
    pipelines in two threads run at once.
    """

    def __init__(self, config: Optional[PathLike] = None, device: Optional[str] = None) -> None:
        if device is not None and not isinstance(device, str):
            raise InputError(f"device: expected a string, got {type(device).__name__}")
        self._native = _pitchside.Pipeline(
            None if config is None else _path(config, "config"), device
        )

    @property
    def device(self) -> str:
        """The device the models run on: "cpu", "cuda" or "wgpu"."""
        return self._native.device

    @property
    def profile(self) -> str:
        """The profile in force (cpu, cuda, mps or a custom one)."""
        return self._native.profile_name

    @property
    def batch_size(self) -> int:
        return self._native.batch_size

    @property
    def frame_stride(self) -> int:
        return self._native.frame_stride

    @property
    def num_keypoints(self) -> int:
        return self._native.num_keypoints

    def run(
        self,
        video: PathLike,
        out: Optional[PathLike] = None,
        progress: Union[bool, Callable[[int, int], None]] = True,
        challenge_id: str = "local",
    ) -> Dict[str, Any]:
        """Analyses a video file or http(s) URL: the Score Vision answer as a dict, value
        for value what `pitchside run --out` writes (`partial`/`error` when the video ended
        early). A URL is downloaded as `pitchside run URL` does (the deployment's
        `service.download` limits, into `service.temp_dir` or the system's, the file removed
        afterwards; Ctrl-C stops the download too; a failure raises DownloadError). With
        `out`, the JSON is also written there. `progress`: a bar (tqdm where installed), or
        a function called with (frames done, frames in the container). Ctrl-C stops the run
        at its next batch and raises KeyboardInterrupt. `analyze(video, answer)` gives the
        answer's pitch analytics."""
        video = _path(video, "video")
        bar: Optional[_Bar] = None
        callback: Optional[Callable[[int, int], None]] = None
        if callable(progress):
            callback = progress
        elif progress:
            bar = _Bar()
            callback = bar
        try:
            text = self._native.run_json(video, callback, challenge_id)
        finally:
            if bar is not None:
                bar.close()
        if out is not None:
            with open(_path(out, "out"), "w") as f:
                f.write(text)
        return json.loads(text)

    def frames(self, video: PathLike) -> FrameStream:
        """Streams the video's processed frames (every `frame_stride`-th source frame) as
        they are tracked; memory stays bounded however long the video. The pipeline is held
        until the stream ends or is closed."""
        return FrameStream(self._native.frames(_path(video, "video")))

    def detect(
        self, images: Sequence[np.ndarray], track: bool = True, fps: float = 30.0
    ) -> List[Frame]:
        """Detects on BGR uint8 images (height, width, 3), as OpenCV gives them, in
        batches of the profile's batch size; each detector letterboxes them itself (as
        `frame_conversion: exact`). With `track` they are tracked in the order given,
        continuing the tracks of earlier calls (`reset_tracking()` starts afresh; `fps` is
        the rate the tracker assumes); without, `track_ids` are 0."""
        return [Frame._from_native(t) for t in self._native.detect(images, track, fps)]

    def reset_tracking(self) -> None:
        """Forgets the tracks `detect` continues: ids start at 1 again."""
        self._native.reset_tracking()


def score(video: PathLike, answer: Union[PathLike, Dict[str, Any], bytes]) -> Dict[str, Any]:
    """The Score Vision validator's keypoint score of an answer (a dict as `run` returns,
    JSON bytes, or a JSON file) for `video`: every component, as `pitchside score --json`."""
    video = _path(video, "video")
    return json.loads(_pitchside.score_json(video, **_answer_args(answer)))


def _answer_args(answer: Union[PathLike, Dict[str, Any], bytes]) -> Dict[str, Any]:
    if isinstance(answer, dict):
        return {"answer": json.dumps(answer).encode()}
    if isinstance(answer, (bytes, bytearray)):
        return {"answer": bytes(answer)}
    return {"answer_path": _path(answer, "answer")}


def _is_csv(path: str) -> bool:
    return os.path.splitext(path)[1].lower() == ".csv"


def _tracks_path(path: str) -> str:
    """`out.csv` -> `out-tracks.csv`, beside it (as the CLI names it)."""
    stem = os.path.splitext(os.path.basename(path))[0] or "analytics"
    return os.path.join(os.path.dirname(path), f"{stem}-tracks.csv")


def _write_analytics(out: str, analysed: Tuple[str, Optional[str], Any]) -> Dict[str, Any]:
    text, note, tables = analysed
    if note:
        # The CLI logs it as a warning.
        warnings.warn(note, stacklevel=3)
    if tables is not None:
        objects, tracks = tables
        with open(out, "w") as f:
            f.write(objects)
        with open(_tracks_path(out), "w") as f:
            f.write(tracks)
    elif out:
        with open(out, "w") as f:
            f.write(text)
    return json.loads(text)


def analyze(
    video: PathLike,
    answer: Union[PathLike, Dict[str, Any], bytes],
    out: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """The pitch analytics of an answer (a dict as `run` returns, JSON bytes, or a JSON
    file) for `video`, value for value what `pitchside analyze --video --answer --out`
    writes: per frame its shot, homography (image -> pitch, metres) and every object's
    ground point on the pitch (`x`, `y`, None off the pitch or without a homography) and
    team; per track frames, seconds on screen, distance (m), top speed (km/h) and team.
    The video's pixels are read for the teams (shirt colours). With `out`, also written
    there (JSON, or CSV when the name ends in .csv, as `--format csv`: the tracks in
    NAME-tracks.csv). An answer with no pitch in view gives no positions, and a warning
    says so. `positions(result)` gives the objects as numpy columns."""
    video = _path(video, "video")
    target = "" if out is None else _path(out, "out")
    analysed = _pitchside.analyze_json(video, csv=_is_csv(target), **_answer_args(answer))
    return _write_analytics(target, analysed)


def positions(analytics: Dict[str, Any]) -> Dict[str, np.ndarray]:
    """The objects of `analyze`'s result as numpy columns, one row per object and frame
    (the rows of `pitchside analyze --format csv`): `frame_number`, `shot` (int64), `id`
    (int64 when every id is an integer, else object), `class_id` and `team` (int64, -1 for
    none), `x`, `y` (float64 metres on the pitch, NaN for none)."""
    rows = [(f["frame_number"], f["shot"], o) for f in analytics["frames"] for o in f["objects"]]
    ids = [o["id"] for _, _, o in rows]
    integral = all(isinstance(i, int) and not isinstance(i, bool) for i in ids)

    def num(key: str, none: float, dtype: Any) -> np.ndarray:
        return np.array([none if o[key] is None else o[key] for _, _, o in rows], dtype=dtype).reshape(len(rows))

    return {
        "frame_number": np.array([r[0] for r in rows], dtype=np.int64).reshape(len(rows)),
        "shot": np.array([r[1] for r in rows], dtype=np.int64).reshape(len(rows)),
        "id": np.array(ids, dtype=np.int64 if integral else object).reshape(len(rows)),
        "class_id": num("class_id", -1, np.float64).astype(np.int64),
        "x": num("x", np.nan, np.float64),
        "y": num("y", np.nan, np.float64),
        "team": num("team", -1, np.int64),
    }
