"""The modelscope library's calling convention, for users coming from the original release:
`pipeline("text-to-video-synthesis", model)({"text": ...})["output_video"]` is an MP4 path."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

TASKS = ("text-to-video-synthesis",)


def pipeline(
    task: str = "text-to-video-synthesis",
    model: str | os.PathLike | None = None,
    device: str | None = None,
    **load_kwargs: Any,
) -> Callable[[dict[str, Any]], dict[str, str]]:
    """A callable taking {"text": prompt, ...} and returning {"output_video": path}."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; vidsynth offers {', '.join(TASKS)}")
    from vidsynth.pipelines.loading import load

    pipe = load(model, device=device, **load_kwargs)

    def run(
        inputs: dict[str, Any], output_video: str | None = None, **kwargs: Any
    ) -> dict[str, str]:
        if not isinstance(inputs, dict) or "text" not in inputs:
            raise ValueError('input must be a dict with a "text" key, e.g. {"text": "a red ball"}')
        result = pipe(inputs["text"], **kwargs)
        if output_video is None:
            fd, output_video = tempfile.mkstemp(suffix=".mp4", prefix="vidsynth-")
            os.close(fd)
        return {"output_video": str(result.save(output_video))}

    return run
