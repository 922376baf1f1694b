# The native module (Rust, PyO3). The public API is `pitchside` (`__init__.py`), which
# wraps these; they are typed here for editors and type checkers.
from os import PathLike
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

_FrameTuple = Tuple[
    int,
    npt.NDArray[np.float32],  # boxes (N, 4)
    npt.NDArray[np.float32],  # scores (N,)
    npt.NDArray[np.int64],  # class ids (N,)
    npt.NDArray[np.int64],  # track ids (N,)
    npt.NDArray[np.float32],  # keypoints (K, 2)
]

# The analytics' JSON text, the note said when they are empty, the CSV tables (objects,
# tracks) when asked for.
_Analysed = Tuple[str, Optional[str], Optional[Tuple[str, str]]]

class Pipeline:
    device: str
    profile_name: str
    num_keypoints: int
    @property
    def batch_size(self) -> int: ...
    @property
    def frame_stride(self) -> int: ...
    def __init__(
        self, config: Optional[Union[str, PathLike[str]]] = None, device: Optional[str] = None
    ) -> None: ...
    def run_json(
        self,
        video: str,
        progress: Optional[Callable[[int, int], None]] = None,
        challenge_id: str = "local",
    ) -> str: ...
    def frames(self, video: Union[str, PathLike[str]]) -> FrameStream: ...
    def detect(
        self, images: Sequence[npt.NDArray[np.uint8]], track: bool = True, fps: float = 30.0
    ) -> list[_FrameTuple]: ...
    def reset_tracking(self) -> None: ...

class FrameStream:
    def __iter__(self) -> FrameStream: ...
    def __next__(self) -> _FrameTuple: ...
    def close(self) -> None: ...

def score_json(
    video: Union[str, PathLike[str]],
    answer: Optional[bytes] = None,
    answer_path: Optional[Union[str, PathLike[str]]] = None,
) -> str: ...

def analyze_json(
    video: Union[str, PathLike[str]],
    answer: Optional[bytes] = None,
    answer_path: Optional[Union[str, PathLike[str]]] = None,
    csv: bool = False,
) -> _Analysed: ...

# The score crate's synthetic test clip and answers, for the package's tests.
def _render_synthetic(dir: Union[str, PathLike[str]]) -> list[Path]: ...
