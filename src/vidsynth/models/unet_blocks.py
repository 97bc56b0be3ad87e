"""UNet3D stages: down blocks, the mid block, up blocks.

Each layer of a stage is ``ResnetBlock2D -> TemporalConvLayer [-> SpatialTransformer ->
TemporalTransformer]`` (the mid block puts its transformers before the resnet). A stage with
attention corresponds to diffusers' ``CrossAttn{Down,Up}Block3D``, one without to
``{Down,Up}Block3D``; the state-dict layout is identical to diffusers' for both.

Head layout quirk kept for checkpoint compatibility: the per-stage config number ``n`` (diffusers'
``attention_head_dim``) is the size of each head, and a stage with C channels has ``C // n`` heads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from vidsynth.models.resnet import Downsample2D, ResnetBlock2D, TemporalConvLayer, Upsample2D
from vidsynth.models.transformers import SpatialTransformer, TemporalTransformer


def _call(module: nn.Module, use_checkpoint: bool, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, recomputed in backward instead of storing activations when requested."""
    if use_checkpoint and module.training and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


class _Stage(nn.Module):
    """Shared construction of the resnet / temporal-conv / transformer layer stacks."""

    def __init__(
        self,
        in_channels: list[int],
        out_channels: int,
        temb_channels: int,
        *,
        groups: int,
        eps: float,
        act_fn: str,
        head_dim: int | None,
        cross_attention_dim: int,
        output_scale_factor: float = 1.0,
        num_attention_layers: int | None = None,
    ) -> None:
        super().__init__()
        self.gradient_checkpointing = False
        self.resnets = nn.ModuleList(
            ResnetBlock2D(
                cin,
                out_channels,
                temb_channels,
                groups=groups,
                eps=eps,
                act_fn=act_fn,
                output_scale_factor=output_scale_factor,
            )
            for cin in in_channels
        )
        self.temp_convs = nn.ModuleList(
            TemporalConvLayer(out_channels, groups=groups) for _ in in_channels
        )
        self.has_attention = head_dim is not None
        if head_dim is not None:
            heads = out_channels // head_dim
            n_attn = len(in_channels) if num_attention_layers is None else num_attention_layers
            self.attentions = nn.ModuleList(
                SpatialTransformer(
                    out_channels,
                    heads,
                    head_dim,
                    cross_attention_dim=cross_attention_dim,
                    groups=groups,
                )
                for _ in range(n_attn)
            )
            self.temp_attentions = nn.ModuleList(
                TemporalTransformer(out_channels, heads, head_dim, groups=groups)
                for _ in range(n_attn)
            )

    def _layer(
        self,
        i: int,
        x: torch.Tensor,
        temb: torch.Tensor,
        context: torch.Tensor,
        num_frames: int | None,
    ) -> torch.Tensor:
        """Layer ``i`` in down/up order: resnet, temporal conv, then the transformers."""
        x = self.resnets[i](x, temb)
        x = self.temp_convs[i](x, num_frames)
        if self.has_attention:
            x = self.attentions[i](x, context)
            x = self.temp_attentions[i](x, num_frames)
        return x


class DownBlock3D(_Stage):
    """``num_layers`` layers then an optional stride-2 downsample; returns every skip tensor."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        temb_channels: int,
        *,
        num_layers: int,
        groups: int,
        eps: float,
        act_fn: str,
        head_dim: int | None,
        cross_attention_dim: int,
        add_downsample: bool,
        downsample_padding: int = 1,
    ) -> None:
        super().__init__(
            [in_channels] + [out_channels] * (num_layers - 1),
            out_channels,
            temb_channels,
            groups=groups,
            eps=eps,
            act_fn=act_fn,
            head_dim=head_dim,
            cross_attention_dim=cross_attention_dim,
        )
        self.downsamplers = (
            nn.ModuleList([Downsample2D(out_channels, downsample_padding)])
            if add_downsample
            else None
        )

    def forward(
        self, x: torch.Tensor, temb: torch.Tensor, context: torch.Tensor, num_frames: int | None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        for i in range(len(self.resnets)):
            x = _call(
                self, self.gradient_checkpointing, self._layer, i, x, temb, context, num_frames
            )
            skips.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            skips.append(x)
        return x, skips


class MidBlock3D(_Stage):
    """``resnet, temp_conv`` then ``num_layers`` x ``(spatial, temporal, resnet, temp_conv)``."""

    def __init__(
        self,
        channels: int,
        temb_channels: int,
        *,
        num_layers: int = 1,
        groups: int,
        eps: float,
        act_fn: str,
        head_dim: int,
        cross_attention_dim: int,
        output_scale_factor: float = 1.0,
    ) -> None:
        super().__init__(
            [channels] * (num_layers + 1),
            channels,
            temb_channels,
            groups=groups,
            eps=eps,
            act_fn=act_fn,
            head_dim=head_dim,
            cross_attention_dim=cross_attention_dim,
            output_scale_factor=output_scale_factor,
            num_attention_layers=num_layers,  # one transformer pair fewer than resnets
        )

    def _mid_layer(
        self,
        i: int,
        x: torch.Tensor,
        temb: torch.Tensor,
        context: torch.Tensor,
        num_frames: int | None,
    ) -> torch.Tensor:
        x = self.attentions[i](x, context)
        x = self.temp_attentions[i](x, num_frames)
        x = self.resnets[i + 1](x, temb)
        return self.temp_convs[i + 1](x, num_frames)

    def forward(
        self, x: torch.Tensor, temb: torch.Tensor, context: torch.Tensor, num_frames: int | None
    ) -> torch.Tensor:
        ckpt = self.gradient_checkpointing
        x = _call(self, ckpt, lambda h: self.temp_convs[0](self.resnets[0](h, temb), num_frames), x)
        for i in range(len(self.attentions)):
            x = _call(self, ckpt, self._mid_layer, i, x, temb, context, num_frames)
        return x


class UpBlock3D(_Stage):
    """Layers that each concatenate one skip tensor, then an optional x2 nearest upsample.

    ``in_channels`` is the channel count of the deepest skip this block consumes (diffusers'
    naming); ``prev_output_channel`` that of the incoming feature map.
    """

    def __init__(
        self,
        in_channels: int,
        prev_output_channel: int,
        out_channels: int,
        temb_channels: int,
        *,
        num_layers: int,
        groups: int,
        eps: float,
        act_fn: str,
        head_dim: int | None,
        cross_attention_dim: int,
        add_upsample: bool,
    ) -> None:
        resnet_in = []
        for i in range(num_layers):
            skip_ch = in_channels if i == num_layers - 1 else out_channels
            resnet_in.append((prev_output_channel if i == 0 else out_channels) + skip_ch)
        super().__init__(
            resnet_in,
            out_channels,
            temb_channels,
            groups=groups,
            eps=eps,
            act_fn=act_fn,
            head_dim=head_dim,
            cross_attention_dim=cross_attention_dim,
        )
        self.upsamplers = nn.ModuleList([Upsample2D(out_channels)]) if add_upsample else None

    def forward(
        self,
        x: torch.Tensor,
        skips: list[torch.Tensor],
        temb: torch.Tensor,
        context: torch.Tensor,
        num_frames: int | None,
        upsample_size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Consumes ``skips`` from the end (deepest first)."""
        for i in range(len(self.resnets)):
            x = torch.cat([x, skips.pop()], dim=1)
            x = _call(
                self, self.gradient_checkpointing, self._layer, i, x, temb, context, num_frames
            )
        if self.upsamplers is not None:
            x = self.upsamplers[0](x, upsample_size)
        return x


DOWN_BLOCK_TYPES = {"CrossAttnDownBlock3D": True, "DownBlock3D": False}
UP_BLOCK_TYPES = {"CrossAttnUpBlock3D": True, "UpBlock3D": False}
"""Supported diffusers block type names -> whether the stage has transformers."""
