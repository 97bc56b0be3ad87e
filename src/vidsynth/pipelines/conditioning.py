"""What every diffusion pipeline here shares: checked batches of prompts and seeds, cached
prompt embeddings, fresh schedulers, and the results that record how each clip was made."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from vidsynth.errors import InvalidParameter
from vidsynth.pipelines.params import interval_json
from vidsynth.pipelines.result import VideoResult
from vidsynth.sampling.noise import resolve_seed
from vidsynth.sampling.schedulers import make_scheduler


def check_prompt(prompt: object, name: str = "prompt") -> str:
    """`prompt` as a string ("" for None), or a clear error naming what it was."""
    if prompt is None:
        return ""
    if not isinstance(prompt, str):
        raise InvalidParameter(f"{name} must be a string, got {type(prompt).__name__}")
    return prompt


class PromptAndScheduler:
    """Mixin for pipelines with `text_encoder`, `unet`, `dtype`, `defaults` (its `scheduler`
    and `negative_prompt`), `scheduler_config`, `name` and an `_empty_embedding` cache (reset to
    None on device moves)."""

    # whether each clip's first frame is drawn as an image before the clip (a text-to-video
    # model with a first-frame input says so; no other pipeline does)
    draws_first_frames: bool = False

    def prepare_batch(
        self,
        prompts: Sequence[str],
        negative_prompt: str | Sequence[str] | None,
        seeds: Sequence[int | None] | None,
    ) -> tuple[list[str], list[str], list[int]]:
        """Checked prompts and negative prompts, and resolved seeds: one of each per clip."""
        prompts = [check_prompt(p) for p in prompts]
        if not prompts:
            raise InvalidParameter("no prompts given")
        if negative_prompt is None:
            negative_prompt = self.defaults.negative_prompt
        negs = (
            [negative_prompt] * len(prompts)
            if isinstance(negative_prompt, str)
            else [check_prompt(n, "negative_prompt") for n in negative_prompt]
        )
        if len(negs) != len(prompts):
            raise InvalidParameter(f"{len(negs)} negative prompts for {len(prompts)} prompts")
        seeds = list(seeds) if seeds is not None else [None] * len(prompts)
        if len(seeds) != len(prompts):
            raise InvalidParameter(f"{len(seeds)} seeds for {len(prompts)} prompts")
        return prompts, negs, [resolve_seed(s) for s in seeds]

    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """(B, L, D) embeddings; the empty prompt's is cached since guided and SR calls reuse it."""
        prompts = list(prompts)
        if all(p == "" for p in prompts):
            if self._empty_embedding is None:
                self._empty_embedding = self.text_encoder([""]).to(self.dtype)
            return self._empty_embedding.expand(len(prompts), -1, -1)
        return self.text_encoder(prompts).to(self.dtype)

    def scheduler(self, name: str | None = None):
        """A fresh scheduler (they are stateful) of the given name for this model."""
        prediction = getattr(self.unet.config, "prediction_type", None)
        if prediction == "epsilon" and "prediction_type" in self.scheduler_config:
            prediction = None  # the checkpoint's scheduler config already decides
        return make_scheduler(
            name if name is not None else self.defaults.scheduler,
            self.scheduler_config,
            prediction_type=prediction,
        )

    def video_results(
        self,
        frames: np.ndarray,
        prompts: Sequence[str],
        negative_prompts: Sequence[str],
        seeds: Sequence[int],
        params: Any,
        *,
        scheduler: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> list[VideoResult]:
        """One VideoResult per clip of uint8 `frames` (B, F, H, W, 3), each with what
        reproduces it (sampling settings, model, seed, prompts, and `info`)."""
        shared = {
            "num_inference_steps": params.num_inference_steps,
            "guidance_scale": params.guidance_scale,
            # best-of-N first frames (text-to-video with a frame scorer)
            **({"candidates": params.candidates} if getattr(params, "candidates", 1) > 1 else {}),
            # guidance in a limited interval of noise levels (text-to-video)
            **_interval_info("guidance_interval", getattr(params, "guidance_interval", None)),
            # only a text-to-video model that draws first frames uses their interval
            **_interval_info(
                "first_frame_guidance_interval",
                getattr(params, "first_frame_guidance_interval", None)
                if self.draws_first_frames
                else None,
            ),
            # a clip drawn from its animated first frame (text-to-video), not pure noise
            **(
                {"clip_strength": params.clip_strength}
                if getattr(params, "clip_strength", 1.0) < 1
                else {}
            ),
            # first frames drawn in steps of their own (text-to-video)
            **(
                {"first_frame_steps": params.first_frame_steps}
                if getattr(params, "first_frame_steps", None) is not None
                else {}
            ),
            "scheduler": scheduler
            or self.defaults.scheduler
            or self.scheduler_config.get("_class_name", ""),
            "model": self.name,
            **(info or {}),
        }
        return [
            VideoResult(
                frames=np.ascontiguousarray(frames[i]),
                fps=params.fps,
                seed=seeds[i],
                prompt=prompts[i],
                info={**shared, "negative_prompt": negative_prompts[i]},
            )
            for i in range(len(prompts))
        ]


def _interval_info(name: str, interval: tuple[float, float] | None) -> dict[str, Any]:
    """A guidance interval as a result records it under `name`: [lo, hi] (hi None:
    unbounded), only when it is not every step's."""
    if interval is None or interval == (0.0, math.inf):
        return {}
    return {name: interval_json(interval)}
