"""vidsynth: type a sentence, get a video.

>>> import vidsynth
>>> pipe = vidsynth.load()                      # the bundled default model
>>> pipe("a red circle moving right", seed=0).save("clip.mp4")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public names → defining module. Imported on first use so `vidsynth --help` does not pay
# for torch and diffusers.
_EXPORTS = {
    "load": "vidsynth.pipelines.loading",
    "DEFAULT_MODEL": "vidsynth.pipelines.loading",
    "ModelNotFound": "vidsynth.errors",
    "pipeline": "vidsynth.pipelines.modelscope_compat",
    "InvalidParameter": "vidsynth.errors",
    "VidsynthError": "vidsynth.errors",
    "VideoResult": "vidsynth.pipelines.result",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vidsynth' has no attribute {name!r}")
