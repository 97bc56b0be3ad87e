"""Reading and writing videos and frame folders."""

from vidsynth.io.video import (
    DEFAULT_FPS,
    SUPPORTED_FORMATS,
    output_format,
    probe_video,
    read_video,
    write_video,
)

__all__ = [
    "DEFAULT_FPS",
    "SUPPORTED_FORMATS",
    "output_format",
    "probe_video",
    "read_video",
    "write_video",
]
