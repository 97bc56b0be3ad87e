"""First-frame conditioning: the UNet sees the clip's first frame beside every frame it denoises.

Text-to-video is factorised into text → first frame → video, as Emu Video does (Girdhar et al.
2023), with the image given to the video stage the way Stable Video Diffusion gives it
(Blattmann et al. 2023): its latents are repeated over the frames and concatenated to the
noisy latents as extra input channels. One more channel is 1 on frame 0 where a first frame
is given and 0 everywhere else, so the same UNet also denoises without one (training drops it
for a share of the clips).

Why the flag marks frame 0 only: the UNet's temporal attention has no frame positions and its
temporal convolutions are nearly symmetric, so a UNet that sees the same input on every frame
hardly tells the start of the clip from its end (a fine-tune with the flag on every frame
stayed within 3-8% of time-reversal equivariant after 1250 steps, and drew random directions
even from a rendered first frame). Marking frame 0 in the input breaks that symmetry.

Why it is here: a clip's start position is random, so without the first frame the target of
a noisy clip spreads over every start position, and the direction of travel is a small part
of it that the training gradient hardly sees. Given where the object starts, where it goes is
determined by the caption alone. (Not yet shown to make the shapes model follow direction
words: fine-tunes of the bundled model of up to 1750 CPU steps did not; see issue 3's notes.)
"""

from __future__ import annotations

import torch


def first_frame_channels(latent_channels: int) -> int:
    """Extra UNet input channels for first-frame conditioning: the latents plus a flag."""
    return latent_channels + 1


def first_frame_concat(
    first: torch.Tensor | None,
    like: torch.Tensor,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """The UNet's ``concat`` input (B, C + 1, F, h, w) for noisy latents `like` (B, C, F, h, w).

    `first` (B, C, h, w) is the first frame's latents, repeated over the F frames; the last
    channel is 1 on frame 0 (which the clip starts from) and 0 on the others. `first=None` gives
    all zeros (no first frame), and so do the rows of `keep` (B,) that are False.
    """
    b, c, f, h, w = like.shape
    out = like.new_zeros(b, c + 1, f, h, w)
    if first is None:
        return out
    if first.shape != (b, c, h, w):
        raise ValueError(f"first frame latents must be {(b, c, h, w)}, got {tuple(first.shape)}")
    out[:, :c] = first.to(like.dtype)[:, :, None]
    out[:, c, 0] = 1.0
    if keep is not None:
        out = out * keep.to(like.dtype).view(b, 1, 1, 1, 1)
    return out
