"""Timestep embeddings: sinusoidal features followed by a small MLP.

The layout (``cos`` half first, frequency shift 0) is the one ModelScope / Zeroscope checkpoints
were trained with; changing it silently ruins pretrained weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vidsynth.models.resnet import make_activation


def timestep_features(
    timesteps: torch.Tensor,
    dim: int,
    *,
    flip_sin_to_cos: bool = True,
    freq_shift: float = 0.0,
    max_period: float = 10000.0,
) -> torch.Tensor:
    """Sinusoidal features of a 1-D tensor of (possibly fractional) timesteps -> (N, dim) fp32.

    Frequencies are ``max_period ** (-i / (dim/2 - freq_shift))`` for ``i < dim/2``; the output is
    ``[cos, sin]`` when ``flip_sin_to_cos`` else ``[sin, cos]``, zero-padded to ``dim`` if odd.
    """
    if timesteps.ndim != 1:
        raise ValueError(f"timesteps must be 1-D, got shape {tuple(timesteps.shape)}")
    half = dim // 2
    # Always fp32: fp16 cannot represent t * freq accurately for t near 1000.
    # Multiply, then divide (not one pre-divided constant): for t ~ 1000 a 1-ulp change in the
    # frequency moves the angle by ~1e-4, so the op order must match the reference exactly.
    exponent = torch.arange(half, dtype=torch.float32, device=timesteps.device)
    exponent = exponent * -math.log(max_period) / (half - freq_shift)
    angles = timesteps.float()[:, None] * torch.exp(exponent)[None, :]
    first, second = (
        (angles.cos(), angles.sin()) if flip_sin_to_cos else (angles.sin(), angles.cos())
    )
    features = torch.cat([first, second], dim=-1)
    if dim % 2 == 1:
        features = nn.functional.pad(features, (0, 1))
    return features


class TimestepMLP(nn.Module):
    """``linear_1 -> act -> linear_2`` applied to the sinusoidal features.

    ``cond_proj`` (optional, bias-free) projects an extra condition into the feature space before
    the MLP; diffusers calls it ``timestep_cond`` (used by LCM-style distilled models).
    """

    def __init__(
        self, in_dim: int, embed_dim: int, act_fn: str = "silu", cond_dim: int | None = None
    ) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, embed_dim)
        self.cond_proj = nn.Linear(cond_dim, in_dim, bias=False) if cond_dim is not None else None
        self.act = make_activation(act_fn)
        self.linear_2 = nn.Linear(embed_dim, embed_dim)

    def forward(self, features: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            if self.cond_proj is None:
                raise ValueError("timestep_cond given but the config has no time_cond_proj_dim")
            features = features + self.cond_proj(cond)
        return self.linear_2(self.act(self.linear_1(features)))


class FrameEmbedding(nn.Module):
    """Embedding of a frame's position in its clip, to add to the timestep embedding.

    Sinusoidal features of the frame index (with `text_dim`, plus a projection of the pooled
    prompt, the MLP's ``cond_proj``) through a ``TimestepMLP`` whose last layer starts at zero:
    a trained UNet that gains it samples exactly as before until it is fine-tuned. With the
    prompt in the same MLP, where an object is at a given time can follow the words for its
    motion directly. Frame indices are small, so the features use a short maximum period
    (100 frames) to keep neighbours apart.
    """

    MAX_PERIOD = 100.0

    def __init__(
        self, in_dim: int, embed_dim: int, act_fn: str = "silu", text_dim: int | None = None
    ) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.mlp = TimestepMLP(in_dim, embed_dim, act_fn, cond_dim=text_dim)
        nn.init.zeros_(self.mlp.linear_2.weight)
        nn.init.zeros_(self.mlp.linear_2.bias)

    def forward(self, index: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        """(N,) frame indices [and (N, text_dim) pooled prompts] → (N, embed_dim)."""
        features = timestep_features(index, self.in_dim, max_period=self.MAX_PERIOD)
        return self.mlp(features.to(self.mlp.linear_1.weight.dtype), text)


class PositionEmbedding(nn.Module):
    """Embedding of where each latent pixel is in the frame, added to the features after
    ``conv_in``.

    Sinusoidal features of the pixel centre's x and y (in frame sides, so any resolution
    gets the same map) at periods 2, 1, 1/2 and 1/4, through a 1×1 convolution that starts at
    zero. A convolutional UNet knows absolute position only through its zero padding, yet a
    prompt's direction of travel is about absolute position: at the highest noise level
    the model's estimate is the mean clip for the prompt, and for "moving right" that mean
    starts left of centre and ends right of it.
    """

    NUM_FREQUENCIES = 4

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(4 * self.NUM_FREQUENCIES, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    @classmethod
    def features(cls, height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
        """(4K, height, width) fp32: cos and sin of π·2^k·x, then of π·2^k·y, for k < K."""
        freqs = math.pi * 2.0 ** torch.arange(cls.NUM_FREQUENCIES, device=device)

        def axis(n: int) -> torch.Tensor:
            coord = (torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n
            angles = coord[None, :] * freqs[:, None]  # (K, n)
            return torch.cat([angles.cos(), angles.sin()])  # (2K, n)

        x, y = axis(width), axis(height)
        return torch.cat(
            [x[:, None, :].expand(-1, height, -1), y[:, :, None].expand(-1, -1, width)]
        )

    def forward(self, height: int, width: int) -> torch.Tensor:
        """(1, channels, height, width), to broadcast over a batch of frames."""
        weight = self.proj.weight
        features = self.features(height, width, weight.device).to(weight.dtype)
        return self.proj(features[None])
