"""Convolutional building blocks: 2D ResNet block, temporal conv layer, down/up-sampling.

All modules work on frames folded into the batch, ``(B*F, C, H, W)``; the temporal layer unfolds
them to convolve along F. The UNet keeps activations channels-last (NHWC in memory); the code is
correct for any layout and merely fastest for that one. Attribute names follow the diffusers
checkpoints so that state-dict keys match without conversion.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "mish": nn.Mish,
    "gelu": nn.GELU,
    "relu": nn.ReLU,
}


def make_activation(name: str) -> nn.Module:
    """Activation module from its config name (``silu``/``swish``, ``mish``, ``gelu``, ``relu``)."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}"
        ) from None


def act_(act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply ``act`` to a fresh tensor the caller owns, in place when autograd is off.

    Skipping the extra allocation matters on CPU, where every large fresh buffer is page-faulted
    in. With autograd on, the activation's input is needed for the backward pass.
    """
    if torch.is_grad_enabled():
        return act(x)
    if isinstance(act, nn.SiLU):
        return F.silu(x, inplace=True)
    if isinstance(act, nn.ReLU):
        return F.relu(x, inplace=True)
    if isinstance(act, nn.Mish):
        return F.mish(x, inplace=True)
    return act(x)


class ResnetBlock2D(nn.Module):
    """Pre-norm residual block with an additive timestep embedding.

    ``norm1 -> act -> conv1 -> (+ time_emb_proj(act(temb))) -> norm2 -> act -> dropout -> conv2``,
    plus a 1x1 ``conv_shortcut`` on the skip path when the channel count changes.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        temb_channels: int,
        *,
        groups: int,
        eps: float,
        act_fn: str = "silu",
        output_scale_factor: float = 1.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.output_scale_factor = output_scale_factor
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nonlinearity = make_activation(act_fn)
        self.conv_shortcut = (
            nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        )

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(act_(self.nonlinearity, self.norm1(x)))
        # In-place adds below only overwrite conv outputs, which autograd never needs back.
        # temb is shared by every block, so its activation must not be in place.
        h += self.time_emb_proj(self.nonlinearity(temb))[:, :, None, None]
        h = self.conv2(self.dropout(act_(self.nonlinearity, self.norm2(h))))
        h += self.conv_shortcut(x) if self.conv_shortcut is not None else x
        if self.output_scale_factor != 1.0:
            h /= self.output_scale_factor
        return h


class TemporalConvLayer(nn.Module):
    """Residual stack of four ``GroupNorm -> SiLU -> [Dropout] -> Conv3d(3x1x1)`` over frames.

    The last conv starts at zero so that a freshly added layer is the identity (how ModelScope
    grew a video model out of an image model). Stage ``i`` is an ``nn.Sequential`` because the
    checkpoints index its layers (``conv2.3.weight`` is the conv after the dropout).
    """

    def __init__(self, channels: int, *, groups: int, dropout: float = 0.1) -> None:
        super().__init__()

        def conv() -> nn.Conv3d:
            return nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0))

        self.conv1 = nn.Sequential(nn.GroupNorm(groups, channels), nn.SiLU(), conv())
        for i in (2, 3, 4):
            stage = nn.Sequential(
                nn.GroupNorm(groups, channels), nn.SiLU(), nn.Dropout(dropout), conv()
            )
            self.add_module(f"conv{i}", stage)
        nn.init.zeros_(self.conv4[-1].weight)
        nn.init.zeros_(self.conv4[-1].bias)

    def forward(self, x: torch.Tensor, num_frames: int | None) -> torch.Tensor:
        if num_frames is None:  # the frames are independent images: nothing to mix
            return x
        bf, c, hgt, wid = x.shape
        b = bf // num_frames
        # In channels-last memory, (B*F, C, H, W) is laid out as (B, F, H*W, C): exactly a
        # channels-last (B, C, F, H*W) image, so the temporal conv needs no transposes at all. A
        # (3, 1, 1) Conv3d is the (3, 1) Conv2d over (F, H*W), which oneDNN also runs faster.
        h = x.permute(0, 2, 3, 1).reshape(b, num_frames, hgt * wid, c).permute(0, 3, 1, 2)
        for stage in (self.conv1, self.conv2, self.conv3, self.conv4):
            norm, conv = stage[0], stage[-1]
            h = act_(stage[1], norm(h))
            if len(stage) == 4:
                h = stage[2](h)  # dropout
            h = F.conv2d(h, conv.weight.squeeze(-1), conv.bias, padding=(1, 0))
        h = h.permute(0, 2, 3, 1).reshape(bf, hgt, wid, c).permute(0, 3, 1, 2)
        return x + h


class Downsample2D(nn.Module):
    """Stride-2 3x3 conv. ``padding=0`` pads right/bottom by one first (diffusers' convention)."""

    def __init__(self, channels: int, padding: int = 1) -> None:
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == 0:
            x = F.pad(x, (0, 1, 0, 1))
        return self.conv(x)


class Upsample2D(nn.Module):
    """Nearest-neighbour upsampling followed by a 3x3 conv.

    ``size`` is the target (H, W): the skip connection's resolution. Passing it handles odd latent
    sizes, where a plain x2 would overshoot what the downsampling path produced.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        if size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, size=size, mode="nearest")
        return self.conv(x)
