"""A frame scorer: how well an image matches a caption, to pick a clip's first frame among
several drawn.

Best-of-N sampling with a learned text–image critic, as DALL·E reranked its samples with CLIP
(Ramesh et al. 2021): the first frame decides the objects' shapes and colours for the whole
clip, and it costs a sixteenth of the clip to draw, so drawing a few and keeping the one the
scorer likes best is cheap. Two towers, as CLIP: the frozen text encoder's token states,
pooled by attention, and a small convolutional network on the RGB frame; the score is the
cosine of their embeddings times a learned scale.

Why it exists: the shapes model's image stage drew the asked shape in 79% of val1's canonical
prompts, and had stopped improving over three fine-tunes; among four frames drawn per prompt,
one was right for 91% (issue 3's notes).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from vidsynth.models.records import load_with_record


class FrameScorer(ModelMixin, ConfigMixin):
    """score(images (B, 3, H, W) in [0, 1], token states (B, L, D)) → (B,) logits of "this
    caption describes this image". Images of another size are resized to `image_size`.
    GroupNorm only, so an image's score does not depend on its batch. `candidates`: how many
    first frames a pipeline draws per clip for it by default (a model folder's own
    "candidates" default, or the caller's, overrides it)."""

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        hidden_size: int = 384,
        embed_dim: int = 256,
        heads: int = 4,
        image_size: int = 64,
        channels: tuple[int, ...] = (32, 64, 128, 128),
        groups: int = 8,
        candidates: int = 4,
    ) -> None:
        super().__init__()
        if image_size % 2 ** len(channels):
            raise ValueError(f"image_size {image_size} is not divisible by 2^{len(channels)}")
        # text tower: one attention query per head over the token states
        self.norm = nn.LayerNorm(hidden_size)
        self.query = nn.Linear(hidden_size, heads)
        self.value = nn.Linear(hidden_size, embed_dim)
        self.text_head = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim)
        )
        # image tower: a stride-2 convolution per level, then the whole map (positions kept,
        # so two objects stay two) into the embedding
        layers: list[nn.Module] = [nn.Conv2d(3, channels[0], 3, padding=1), nn.SiLU()]
        width = channels[0]
        for out in channels:
            layers += [nn.Conv2d(width, out, 4, stride=2, padding=1), nn.GroupNorm(groups, out)]
            layers.append(nn.SiLU())
            width = out
        self.image_net = nn.Sequential(*layers)
        side = image_size // 2 ** len(channels)
        self.image_head = nn.Linear(width * side * side, embed_dim)
        self.scale = nn.Parameter(torch.tensor(math.log(10.0)))

    def embed_text(self, context: torch.Tensor) -> torch.Tensor:
        """Unit embeddings (B, E) of token states (B, L, D); zero (padding) tokens are ignored."""
        present = context.abs().amax(dim=-1) > 0
        x = self.norm(context.to(self.norm.weight.dtype))
        weights = self.query(x).masked_fill(~present[..., None], float("-inf")).softmax(dim=1)
        values = self.value(x).unflatten(-1, (self.config.heads, -1))  # (B, L, H, E / H)
        pooled = torch.einsum("blh,blhe->bhe", weights, values).flatten(1)
        return nn.functional.normalize(self.text_head(pooled), dim=-1)

    def embed_image(self, images: torch.Tensor) -> torch.Tensor:
        """Unit embeddings (B, E) of RGB images (B, 3, H, W) in [0, 1]."""
        size = self.config.image_size
        x = images.to(self.image_head.weight.dtype)
        if x.shape[-2:] != (size, size):
            x = nn.functional.interpolate(x, size=(size, size), mode="area")
        features = self.image_net(x * 2 - 1).flatten(1)
        return nn.functional.normalize(self.image_head(features), dim=-1)

    def logits(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """Scaled cosines (B_images, B_texts) of every image with every text."""
        return self.scale.exp() * image_emb @ text_emb.T

    def forward(self, images: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """The score (B,) of each image with its own caption."""
        image_emb, text_emb = self.embed_image(images), self.embed_text(context)
        return self.scale.exp() * (image_emb * text_emb).sum(dim=-1)


def load_scorer(folder: str | Path) -> FrameScorer:
    """A saved scorer, in float32 (it is small), with ``record``: how it was trained."""
    return load_with_record(FrameScorer, folder)
