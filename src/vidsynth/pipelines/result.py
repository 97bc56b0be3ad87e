"""What a pipeline returns: frames plus what is needed to reproduce and save them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class VideoResult:
    """A generated clip: `frames` is uint8 (F, H, W, 3)."""

    frames: np.ndarray
    fps: float
    seed: int
    prompt: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def save(self, path: str | Path) -> Path:
        """Write the clip; the format follows the suffix (.mp4, .gif, .webp, or none for PNGs)."""
        from vidsynth.io.video import write_video

        return write_video(path, self.frames, self.fps)
