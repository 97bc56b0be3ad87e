"""What every diffusion pipeline here shares: cached prompt embeddings and fresh schedulers."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vidsynth.sampling.schedulers import make_scheduler


class PromptAndScheduler:
    """Mixin for pipelines with `text_encoder`, `unet`, `dtype`, `defaults.scheduler`,
    `scheduler_config` and an `_empty_embedding` cache (reset to None on device moves)."""

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
