"""Helpers for the UNet tests: tiny configs and randomised diffusers reference models."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from vidsynth.testing import perturb_, tiny_unet_config


def tiny_config(**overrides: Any) -> dict[str, Any]:
    """The shared tiny UNet3D config with 8-channel heads, small enough for millisecond forwards."""
    return tiny_unet_config(**{"attention_head_dim": 8, **overrides})


def three_stage_config(**overrides: Any) -> dict[str, Any]:
    """Three stages, two layers each, cross-attention down *and* up (exercises every path)."""
    return tiny_config(
        down_block_types=["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"],
        up_block_types=["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"],
        block_out_channels=[16, 32, 32],
        layers_per_block=2,
        attention_head_dim=4,
        **overrides,
    )


def randomize_(model: torch.nn.Module, seed: int = 0, scale: float = 0.05) -> torch.nn.Module:
    """Perturb every parameter so zero-initialised layers (temporal convs) contribute."""
    return perturb_(model, scale=scale, seed=seed)


def diffusers_unet(config: dict[str, Any], seed: int = 0) -> torch.nn.Module:
    """A diffusers UNet3DConditionModel with every weight randomised, in eval mode."""
    from diffusers import UNet3DConditionModel

    torch.manual_seed(seed)
    model = UNet3DConditionModel(**config)
    return randomize_(model, seed).eval()


def unet_inputs(
    config: dict[str, Any],
    *,
    batch: int = 1,
    frames: int = 3,
    height: int = 8,
    width: int = 8,
    tokens: int = 5,
    seed: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sample, per-sample timesteps, encoder_hidden_states) for a config."""
    gen = torch.Generator().manual_seed(seed)
    sample = torch.randn(batch, config["in_channels"], frames, height, width, generator=gen)
    timesteps = torch.randint(0, 1000, (batch,), generator=gen)
    context = torch.randn(batch, tokens, config["cross_attention_dim"], generator=gen)
    return sample, timesteps, context


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run tiny models on one thread: their ops are so small that thread start-up and barriers
    dominate, and on a busy machine a preempted worker thread stalls every op."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
