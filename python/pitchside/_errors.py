"""The exceptions Pitchside raises; the native module raises these classes."""

from __future__ import annotations


class Error(Exception):
    """Every Pitchside error; also raised when a run ends early (its reason as message)."""


class ConfigError(Error):
    """The deployment YAML or an environment override is wrong (file:line:col for YAML)."""


class DeviceError(Error):
    """The requested device is not compiled in or not present."""


class VideoError(Error):
    """The video is missing, not a video, undecodable, or beyond the profile's bounds."""


class DownloadError(VideoError):
    """A video URL could not be fetched; the message names the URL (and the HTTP status)."""


class ModelError(Error):
    """A model or plugin could not be loaded, or failed on frames."""


class ScoreError(Error):
    """The answer given to `score` or `analyze` cannot be read, scored or analysed."""


class InputError(Error, ValueError):
    """An argument is of the wrong kind: a non-uint8 image, a wrong shape, a bad device name."""


class BusyError(Error):
    """The pipeline is held by an open `frames()` stream."""
