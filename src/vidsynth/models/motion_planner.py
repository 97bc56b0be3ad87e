"""A motion planner: reads from a caption's token states how its object travels.

Text-to-video with a planned layout, as LLM-grounded video diffusion (Lian et al. 2023) plans
boxes with a language model before drawing: here a small network on the frozen text encoder's
token states picks the clip's motion from a codebook (the world's: four directions at three
speeds, growing, shrinking, rotating, and standing still), and the UNet is given its first
frame animated by that motion (``first_frame.warp_frames``).

Why it exists: the shapes model, trained for 12k steps, drew "moving left" and "moving right"
alike (its denoising loss did not change when the word was swapped, while it did for "growing"
and "shrinking"; issue 3's notes). A classifier on the token states learns the direction words
in seconds. Attention pooling lets it weigh the one word that names the motion instead of a
mean over a dozen tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class MotionPlanner(ModelMixin, ConfigMixin):
    """Token states (B, L, D) → logits (B, K) over `velocities`, K motions per frame at `fps`:
    (vx, vy) in frame sides, and optionally the size factor's change and the rotation in
    degrees, clockwise (``first_frame.motion_guide``'s rows; planners before these had the
    velocity only). Padding tokens (all zeros) are ignored."""

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        velocities: list[list[float]],
        hidden_size: int = 384,
        width: int = 128,
        heads: int = 4,
        fps: float = 8.0,
    ) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of heads {heads}")
        self.norm = nn.LayerNorm(hidden_size)
        self.score = nn.Linear(hidden_size, heads)  # one attention query per head
        self.value = nn.Linear(hidden_size, width)
        self.head = nn.Sequential(
            nn.Linear(width, width), nn.SiLU(), nn.Linear(width, len(velocities))
        )
        codebook = torch.tensor(velocities, dtype=torch.float32).reshape(len(velocities), -1)
        codebook = nn.functional.pad(codebook, (0, 4 - codebook.shape[1]))
        self.register_buffer("codebook", codebook, persistent=False)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        b, length, _ = context.shape
        heads = self.config.heads
        present = context.abs().amax(dim=-1) > 0  # (B, L): zero-padded tokens are absent
        x = self.norm(context.to(self.norm.weight.dtype))
        scores = self.score(x).masked_fill(~present[..., None], float("-inf"))
        weights = scores.softmax(dim=1)  # (B, L, heads)
        values = self.value(x).view(b, length, heads, -1)
        pooled = (weights[..., None] * values).sum(dim=1).flatten(1)  # (B, width)
        return self.head(pooled)

    @torch.no_grad()
    def motion(self, context: torch.Tensor, fps: float | None = None) -> torch.Tensor:
        """The most likely motion (B, 4) per caption, per frame at `fps` (default: the
        planner's own; motion is a rate in time, so a higher frame rate moves less per frame)."""
        picked = self.codebook.to(context.device)[self(context).argmax(dim=-1)]
        return picked * (self.config.fps / (fps or self.config.fps))


def load_planner(folder: str | Path) -> MotionPlanner:
    """A saved planner, in float32 (it is tiny), with ``record``: how it was trained (its
    training.json, kept so that a model exported with it says so too)."""
    folder = Path(folder)
    planner = MotionPlanner.from_pretrained(folder, torch_dtype=torch.float32)
    record = folder / "training.json"
    planner.record = json.loads(record.read_text()) if record.is_file() else None
    return planner
