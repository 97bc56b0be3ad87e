"""What every diffusion pipeline here shares: cached prompt embeddings, fresh schedulers, and
the results that record how each clip was made."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from vidsynth.pipelines.result import VideoResult
from vidsynth.sampling.schedulers import make_scheduler


class PromptAndScheduler:
    """Mixin for pipelines with `text_encoder`, `unet`, `dtype`, `defaults.scheduler`,
    `scheduler_config`, `name` and an `_empty_embedding` cache (reset to None on device
    moves)."""

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
