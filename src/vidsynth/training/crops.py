"""Random crops for training super-resolution stages on part of each frame.

A super-resolution stage's work is local (where does this edge run, where did this object
move by a pixel), and its UNet is convolutional, so it can train on crops and run on whole
frames: Imagen trains its super-resolution models on crops (Saharia et al. 2022, §4.4;
SR3 likewise). A crop of a quarter of the frame costs about a quarter of the step.

Most of a shapes-world frame is flat background that an SR stage leaves as its input has it,
so a share `focus` of the crops is centred on a pixel drawn where the stage has work to do
(an `interest` map: where the target differs from the plain upscale or blend); the rest are
uniform, so the stage still sees plain background.
"""

from __future__ import annotations

import torch


def crop_corners(
    interest: torch.Tensor,
    size: int,
    *,
    align: int = 1,
    focus: float = 0.0,
    generator: torch.Generator | None = None,
) -> list[tuple[int, int]]:
    """One (top, left) per sample for a `size`×`size` crop of frames (B, H, W).

    Corners are multiples of `align` (so a crop maps onto a coarser grid: latents, the low
    resolution input). With probability `focus` a crop is centred (as near as the frame and
    `align` allow) on a pixel drawn with probability proportional to `interest`; otherwise, and
    where `interest` is zero everywhere, its corner is uniform.
    """
    b, h, w = interest.shape
    if size > min(h, w):
        raise ValueError(f"crop of {size} does not fit frames of {h}×{w}")
    max_top, max_left = (h - size) // align, (w - size) // align  # in units of align
    corners = []
    for i in range(b):
        weights = interest[i].flatten().float().clamp(min=0)
        draw = torch.rand((), generator=generator, device=weights.device).item()
        uniform = int(
            torch.randint(
                0, (max_top + 1) * (max_left + 1), (), generator=generator, device=weights.device
            )
        )
        if draw < focus and weights.sum() > 0:
            centre = int(torch.multinomial(weights, 1, generator=generator))
            y, x = divmod(centre, w)
            top = min(max(round((y - size / 2) / align), 0), max_top)
            left = min(max(round((x - size / 2) / align), 0), max_left)
        else:
            top, left = divmod(uniform, max_left + 1)
        corners.append((top * align, left * align))
    return corners


def take_crops(
    x: torch.Tensor, corners: list[tuple[int, int]], size: int, scale: int = 1
) -> torch.Tensor:
    """The crops of (B, C, F, H, W) at `corners` // `scale`, each `size` // `scale` on a side.

    `scale` > 1 takes the same windows on a grid `scale` times coarser (the low-resolution
    input of a spatial SR stage).
    """
    s = size // scale
    return torch.stack(
        [
            x[i, :, :, top // scale : top // scale + s, left // scale : left // scale + s]
            for i, (top, left) in enumerate(corners)
        ]
    )
