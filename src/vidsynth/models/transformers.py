"""Spatial and temporal transformers over frame-folded feature maps ``(B*F, C, H, W)``.

* ``SpatialTransformer``: tokens are the H*W pixels of each frame; self-attention, then
  cross-attention to the text (and any extra) context, then a GEGLU feed-forward.
* ``TemporalTransformer``: tokens are the F frames at each pixel; two self-attentions (no
  cross-attention) and the feed-forward. With ``frame_positions`` each token gets its frame's
  sinusoidal position added after ``proj_in`` (as AnimateDiff's motion modules do); without it
  (ModelScope, diffusers) the attention cannot tell one frame's place from another's.

Both wrap their transformer blocks in ``GroupNorm -> Linear proj_in ... Linear proj_out`` plus a
residual, as diffusers' ``Transformer2DModel`` (with ``use_linear_projection=True``, which is what
its UNet3D builds) and ``TransformerTemporalModel`` do.
"""

from __future__ import annotations

import torch
from torch import nn

from vidsynth.models.attention import Attention, FeedForward
from vidsynth.models.embeddings import timestep_features


class BasicTransformerBlock(nn.Module):
    """Pre-LayerNorm block: ``attn1`` (self), ``attn2`` (cross, or self again), ``ff``."""

    def __init__(
        self,
        dim: int,
        heads: int,
        head_dim: int,
        *,
        cross_attention_dim: int | None = None,
        double_self_attention: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads, head_dim, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        context_dim = None if double_self_attention else cross_attention_dim
        self.attn2 = Attention(dim, heads, head_dim, context_dim=context_dim, dropout=dropout)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, dropout=dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (N, S, dim); ``context`` (N', L, D) where N' divides N (see below)."""
        # The residual adds go into the sublayer outputs (fresh Linear outputs that autograd
        # does not need), saving one allocation each.
        x = self.attn1(self.norm1(x)).add_(x)
        h = self.norm2(x)
        if self.attn2.is_cross and context is not None and context.shape[0] != h.shape[0]:
            # Frames are folded into the batch but every frame of a sample sees the same
            # context: fold the frames into the query sequence instead of repeating the context
            # F times (same result, K/V projected once per sample).
            a = self.attn2(h.reshape(context.shape[0], -1, h.shape[-1]), context).view_as(h)
        else:
            a = self.attn2(h, context if self.attn2.is_cross else None)
        x = a.add_(x)
        return self.ff(self.norm3(x)).add_(x)


class SpatialTransformer(nn.Module):
    """Per-frame transformer over pixels with cross-attention (diffusers ``Transformer2DModel``)."""

    def __init__(
        self,
        channels: int,
        heads: int,
        head_dim: int,
        *,
        cross_attention_dim: int,
        groups: int,
    ) -> None:
        super().__init__()
        inner = heads * head_dim
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(inner, heads, head_dim, cross_attention_dim=cross_attention_dim)]
        )
        self.proj_out = nn.Linear(inner, channels)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``x`` (B*F, C, H, W), ``context`` (B, L, D) or (B*F, L, D) -> (B*F, C, H, W)."""
        n, c, hgt, wid = x.shape
        t = self.norm(x).permute(0, 2, 3, 1).reshape(n, hgt * wid, c)  # free in channels-last
        t = self.proj_in(t)
        for block in self.transformer_blocks:
            t = block(t, context)
        t = self.proj_out(t).view(n, hgt, wid, c).permute(0, 3, 1, 2)
        return x + t


class TemporalTransformer(nn.Module):
    """Per-pixel transformer over frames (diffusers ``TransformerTemporalModel``).

    Note the GroupNorm statistics span all frames of a sample, not each frame separately.
    """

    def __init__(self, channels: int, heads: int, head_dim: int, *, groups: int) -> None:
        super().__init__()
        inner = heads * head_dim
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(inner, heads, head_dim, double_self_attention=True)]
        )
        self.proj_out = nn.Linear(inner, channels)
        # Set by the UNet for configs with ``temporal_position_embedding``; a flag, not a
        # module, because the features are fixed and any clip length gets its own.
        self.frame_positions = False

    def forward(self, x: torch.Tensor, num_frames: int | None) -> torch.Tensor:
        """``x`` (B*F, C, H, W) -> (B*F, C, H, W); the identity when ``num_frames`` is None
        (the frames are independent images)."""
        if num_frames is None:
            return x
        bf, c, hgt, wid = x.shape
        b, hw = bf // num_frames, hgt * wid
        frames = x.permute(0, 2, 3, 1).reshape(b, num_frames, hw, c)  # a view in channels-last
        # GroupNorm over a channels-last (B, C, F, H*W) view: stats per group over F, H, W.
        t = self.norm(frames.permute(0, 3, 1, 2))
        t = t.permute(0, 3, 2, 1).reshape(b * hw, num_frames, c)  # tokens = frames per pixel
        t = self.proj_in(t)
        if self.frame_positions:
            index = torch.arange(num_frames, device=t.device)
            t = t + timestep_features(index, t.shape[-1], flip_sin_to_cos=False).to(t.dtype)
        for block in self.transformer_blocks:
            t = block(t)
        t = self.proj_out(t).view(b, hw, num_frames, c).transpose(1, 2)
        out = frames + t  # takes frames' layout: the transpose back happens inside the add
        return out.view(bf, hgt, wid, c).permute(0, 3, 1, 2)
