"""Generation parameters as users know them, checked up front with messages that say what to fix."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from vidsynth.errors import InvalidParameter

MAX_FRAMES = 4096  # a sanity bound; the memory estimate is the real limit
MAX_CANDIDATES = 64


@dataclass(frozen=True)
class GenerationParams:
    """Checked parameters of one text-to-video call."""

    num_frames: int
    height: int
    width: int
    num_inference_steps: int
    guidance_scale: float
    fps: float
    # first frames drawn per clip, the one a frame scorer likes best kept (best-of-N)
    candidates: int = 1
    # the noise levels (lo, hi] where guidance applies; elsewhere the conditional pass alone
    guidance_interval: tuple[float, float] = (0.0, math.inf)
    # the same for the first frames (a model that draws them as images first): a stage of its
    # own, whose best interval is not the clip's
    first_frame_guidance_interval: tuple[float, float] = (0.0, math.inf)
    # the share of the schedule a clip is drawn over, from its first frame animated by the
    # planned motion noised to that level (SDEdit); 1: from pure noise
    clip_strength: float = 1.0
    # denoising steps of the first frames (a model that draws them as images first); None: the
    # clip's. A first frame is one image, so more steps cost little and settle small shapes
    first_frame_steps: int | None = None

    @property
    def first_frame_num_steps(self) -> int:
        """The steps the first frames are drawn in."""
        steps = self.first_frame_steps
        return self.num_inference_steps if steps is None else steps

    @classmethod
    def checked(
        cls,
        *,
        num_frames: int,
        height: int,
        width: int,
        num_inference_steps: int,
        guidance_scale: float,
        fps: float,
        candidates: int = 1,
        guidance_interval: Sequence[float | None] = (0.0, None),
        first_frame_guidance_interval: Sequence[float | None] = (0.0, None),
        clip_strength: float = 1.0,
        first_frame_steps: int | None = None,
        spatial_factor: int = 8,
    ) -> GenerationParams:
        _integer("num_frames", num_frames, low=1, high=MAX_FRAMES)
        _integer("num_inference_steps", num_inference_steps, low=1, high=1000)
        if first_frame_steps is not None:
            _integer("first_frame_steps", first_frame_steps, low=1, high=1000)
        check_size(height, width, spatial_factor)
        _number("guidance_scale", guidance_scale, low=0.0, high=100.0)
        _number("fps", fps, low=0.1, high=240.0)
        _integer("candidates", candidates, low=1, high=MAX_CANDIDATES)
        interval = check_guidance_interval(guidance_interval)
        first_interval = check_guidance_interval(
            first_frame_guidance_interval, "first_frame_guidance_interval"
        )
        return cls(
            int(num_frames),
            int(height),
            int(width),
            int(num_inference_steps),
            float(guidance_scale),
            float(fps),
            int(candidates),
            interval,
            first_interval,
            check_clip_strength(clip_strength, int(num_inference_steps)),
            None if first_frame_steps is None else int(first_frame_steps),
        )


def check_clip_strength(strength: object, steps: int) -> float:
    """The share of `steps` a clip is drawn over from its animated first frame: above 0 (at
    least one step), at most 1 (from pure noise)."""
    _number("clip_strength", strength, low=0.0, high=1.0)
    if int(steps * strength) < 1:  # as strength_timesteps counts the steps it runs
        raise InvalidParameter(
            f"clip_strength={strength} of {steps} steps runs no step of the clip; raise it to "
            f"at least {1 / steps:.3g} or use more steps (1 draws the clip from pure noise)"
        )
    return float(strength)


def check_size(height: object, width: object, spatial_factor: int = 8) -> None:
    """Frame sizes must be whole multiples of the VAE's downsampling factor."""
    for name, value in (("height", height), ("width", width)):
        _integer(name, value, low=spatial_factor, high=8192)
        if value % spatial_factor:
            lower = value - value % spatial_factor
            raise InvalidParameter(
                f"{name}={value} must be a multiple of {spatial_factor} (the VAE's "
                f"downsampling); try {lower} or {lower + spatial_factor}"
            )


def check_guidance_interval(
    interval: object, name: str = "guidance_interval"
) -> tuple[float, float]:
    """A guidance interval as (lo, hi) noise levels, from [lo] or [lo, hi] where hi may be
    None or inf (no upper bound); `name` is the parameter's, for the messages."""
    forms = (1, 2)  # [lo] or [lo, hi]
    if (
        isinstance(interval, str)
        or not isinstance(interval, Sequence)
        or len(interval) not in forms
    ):
        raise InvalidParameter(f"{name} must be [lo] or [lo, hi] (noise levels), got {interval!r}")
    lo, hi = (*interval, None)[:2]
    hi = math.inf if hi is None else hi
    _number(f"{name}'s lo", lo, low=0.0, high=math.inf)
    if isinstance(hi, bool) or not isinstance(hi, int | float) or math.isnan(hi) or hi <= lo:
        raise InvalidParameter(f"{name}'s hi must be a number above lo={lo}, got {hi!r}")
    return float(lo), float(hi)


def interval_json(interval: tuple[float, float]) -> list[float | None]:
    """A checked guidance interval as JSON writes it: [lo, hi], hi None when unbounded."""
    lo, hi = interval
    return [lo, None if math.isinf(hi) else hi]


def check_strength(strength: object) -> float:
    """SDEdit strength: the fraction of the noise schedule re-run over an input video."""
    _number("strength", strength, low=0.0, high=1.0)
    if strength == 0:
        raise InvalidParameter(
            "strength must be above 0 (0 would return the input unchanged); "
            "use 0.3-0.7 to re-render a video, 1 to ignore it"
        )
    return float(strength)


def check_noise_aug_level(level: object) -> float:
    """A super-resolution stage's noise augmentation level: how much its input is noised
    before the model sees it, in [0, 1] (0: as it is, 1: pure noise)."""
    _number("noise_aug_level", level, low=0.0, high=1.0)
    return float(level)


def _integer(name: str, value: object, *, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise InvalidParameter(f"{name} must be between {low} and {high}, got {value}")


def _number(name: str, value: object, *, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidParameter(f"{name} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise InvalidParameter(f"{name} must be between {low} and {high}, got {value}")
