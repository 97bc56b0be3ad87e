"""What a job can ask for. Each task resolves its parameters at submission and runs in a worker.

Adding a task (video-to-video, image-to-video, long-video, story) means: a request model in
`schemas.py` joined to `JobRequest`'s union, and an entry here with its `resolve` and `run`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vidsynth.errors import InvalidParameter
from vidsynth.pipelines.params import interval_json
from vidsynth.sampling.noise import resolve_seed
from vidsynth.server.settings import Limits

# progress(stage, step, total), the pipeline's own hook; raising from it stops the job.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Task:
    """A kind of job: how to check its parameters, and how to run it on a loaded pipeline."""

    name: str
    # (pipeline, request params, limits) -> (resolved params, seed); raises InvalidParameter
    resolve: Callable[[Any, dict[str, Any], Limits], tuple[dict[str, Any], int]]
    # (pipeline, resolved params, seed, progress) -> VideoResult
    run: Callable[[Any, dict[str, Any], int, Progress], Any]


def _check_limits(params: dict[str, Any], limits: Limits) -> None:
    """The server's own bounds, tighter than what the pipeline accepts."""
    bounds = (
        ("frames", limits.max_frames),
        ("width", limits.max_width),
        ("height", limits.max_height),
        ("steps", limits.max_steps),
        ("first_frame_steps", limits.max_steps),
        ("candidates", limits.max_candidates),
    )
    for name, high in bounds:
        value = params.get(name)
        if value is not None and value > high:
            raise InvalidParameter(f"{name}={value} is more than this server's maximum of {high}")
    for name in ("prompt", "negative_prompt"):
        text = params.get(name) or ""
        if len(text) > limits.max_prompt_chars:
            raise InvalidParameter(
                f"{name} is {len(text)} characters long; this server takes at most "
                f"{limits.max_prompt_chars}"
            )


def resolve_text_to_video(
    pipe: Any, params: dict[str, Any], limits: Limits
) -> tuple[dict[str, Any], int]:
    """Fill in the model's defaults and check everything, so a queued job can only fail for
    reasons nobody could see at submission."""
    _check_limits(params, limits)
    if params.get("model") not in (None, pipe.name):
        raise InvalidParameter(
            f"model {params['model']!r} is not served here; this server runs {pipe.name!r}"
        )
    checked = pipe.check_params(
        1,
        num_frames=params.get("frames"),
        height=params.get("height"),
        width=params.get("width"),
        num_inference_steps=params.get("steps"),
        guidance_scale=params.get("guidance"),
        fps=params.get("fps"),
        candidates=params.get("candidates"),
        guidance_interval=params.get("guidance_interval"),
        first_frame_guidance_interval=params.get("first_frame_guidance_interval"),
        clip_strength=params.get("clip_strength"),
        first_frame_steps=params.get("first_frame_steps"),
    )
    # Defaults may come from the model; check them against the server's bounds as well.
    resolved = {
        "prompt": params.get("prompt") or "",
        "negative_prompt": params.get("negative_prompt"),
        "frames": checked.num_frames,
        "width": checked.width,
        "height": checked.height,
        "steps": checked.num_inference_steps,
        "guidance": checked.guidance_scale,
        "fps": checked.fps,
        "candidates": checked.candidates,
        "guidance_interval": interval_json(checked.guidance_interval),
        "first_frame_guidance_interval": interval_json(checked.first_frame_guidance_interval),
        "clip_strength": checked.clip_strength,
        "first_frame_steps": checked.first_frame_steps,
        "model": pipe.name,
    }
    if resolved["negative_prompt"] is None:
        resolved["negative_prompt"] = pipe.defaults.negative_prompt
    _check_limits(resolved, limits)
    # The seed is fixed now, so a job re-run after a crash makes the same video.
    return resolved, resolve_seed(params.get("seed"))


def run_text_to_video(pipe: Any, params: dict[str, Any], seed: int, progress: Progress) -> Any:
    return pipe(
        params["prompt"],
        params["negative_prompt"],
        num_frames=params["frames"],
        height=params["height"],
        width=params["width"],
        num_inference_steps=params["steps"],
        guidance_scale=params["guidance"],
        fps=params["fps"],
        # jobs queued before these were resolved get the model's defaults
        candidates=params.get("candidates"),
        guidance_interval=params.get("guidance_interval"),
        first_frame_guidance_interval=params.get("first_frame_guidance_interval"),
        clip_strength=params.get("clip_strength"),
        first_frame_steps=params.get("first_frame_steps"),
        seed=seed,
        progress=progress,
    )


TASKS: dict[str, Task] = {
    "text-to-video": Task("text-to-video", resolve_text_to_video, run_text_to_video),
}
