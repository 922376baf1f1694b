"""What `pip install ./python` installs."""

from __future__ import annotations

import pathlib

import pitchside
from pitchside import _pitchside


def test_one_abi3_extension_with_stubs_and_py_typed():
    native = pathlib.Path(_pitchside.__file__)
    assert native.name.endswith(".abi3.so"), native.name
    package = pathlib.Path(pitchside.__file__).parent
    assert (package / "py.typed").exists()
    assert (package / "_pitchside.pyi").exists()
    assert pitchside.__version__


def test_every_error_is_a_pitchside_error():
    for name in ["ConfigError", "DeviceError", "VideoError", "ModelError", "ScoreError", "InputError", "BusyError"]:
        assert issubclass(getattr(pitchside, name), pitchside.Error)
