"""A conservative estimate of a UNet's sampling call's peak memory, to refuse hopeless requests
before minutes of work instead of dying in the middle."""

from __future__ import annotations

from typing import Any

# Live tensors at the widest level, in units of one (batch·frames, C0, h, w) feature map:
# the feed-forward's GEGLU (8·C inner) dominates, plus the residual stream and attention
# in/out projections. Measured peaks on tiny and small configs stay below this (tests).
_WORKING_SET = 14


def estimate_peak_bytes(
    config: Any,
    *,
    batch: int,
    num_frames: int,
    latent_height: int,
    latent_width: int,
    bytes_per_element: int,
    num_parameters: int,
) -> int:
    """Weights + skip connections kept for the up path + the working set at the top level.

    `config`: a UNet3D's, or an image stage's (diffusers' UNet2DConditionModel; frames are
    its batch), anything with ``block_out_channels`` and ``layers_per_block``."""
    n = batch * num_frames
    layers = config.layers_per_block
    layers = max(layers) if isinstance(layers, (list, tuple)) else layers
    skips = 0
    h, w = latent_height, latent_width
    channels = list(config.block_out_channels)
    skips += n * channels[0] * h * w  # conv_in output
    for level, c in enumerate(channels):
        skips += layers * n * c * h * w
        if level < len(channels) - 1:  # downsampler output
            h, w = (h + 1) // 2, (w + 1) // 2
            skips += n * c * h * w
    top = n * channels[0] * latent_height * latent_width
    return (num_parameters + skips + _WORKING_SET * top) * bytes_per_element
