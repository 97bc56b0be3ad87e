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
determined by the caption alone. (That alone did not make the shapes model follow direction
words, over 4775 fine-tuning steps; moving the first frame along a planned path did:
``shift_frames`` and ``models.motion_planner``.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def first_frame_channels(latent_channels: int) -> int:
    """Extra UNet input channels for first-frame conditioning: the latents plus a flag."""
    return latent_channels + 1


def shift_frames(first: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """`first` (B, C, h, w) moved by `displacement` (B, F, 2) → (B, C, F, h, w).

    Displacements are (x right, y down) in frame sides, so they mean the same at every
    resolution; a sub-pixel part is interpolated bilinearly. What comes in from beyond an
    edge repeats the edge (a flat background stays flat).
    """
    b, c, h, w = first.shape
    f = displacement.shape[1]
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=first.device)
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=first.device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    base = torch.stack([grid_x, grid_y], dim=-1)  # (h, w, 2), x first as grid_sample wants
    # output pixel p shows the input at p − d; a frame side is 2 in normalised coordinates
    d = displacement.to(first.device, torch.float32).reshape(b * f, 1, 1, 2) * 2
    grid = base[None] - d
    frames = first.float().repeat_interleave(f, dim=0)  # (B·F, C, h, w)
    moved = F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return moved.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4).to(first.dtype)


def motion_path(velocity: torch.Tensor | None, batch: int, frames: int) -> torch.Tensor:
    """Displacements (B, F, 2) of constant `velocity` (B, 2) frame sides per frame from frame
    0; `None` (nothing known of the motion) stays in place."""
    if velocity is None:
        return torch.zeros(batch, frames, 2)
    steps = torch.arange(frames, dtype=torch.float32)
    return velocity.float().cpu()[:, None, :] * steps[None, :, None]


def keep_in_frame(
    image: torch.Tensor, displacement: torch.Tensor, *, threshold: float = 0.4, margin: float = 1.0
) -> torch.Tensor:
    """`displacement` (B, F, 2) offset so the object of each first frame `image` (B, 3, H, W)
    stays in the frame along its path, by the least offset that does; a path too long to fit is
    centred.

    Why: the image stage draws the first frame without regard to the motion (its object starts
    where there is no room to go the planned way about half the time), and a clip whose object
    runs into the edge is not the motion asked for. LVD's planner likewise keeps its boxes in
    the frame. The object is what stands out from the frame's border: pixels farther from the
    border's median colour than `threshold` × the farthest, their box widened by `margin`
    pixels. A frame where nothing stands out (no flat background) keeps its path.
    """
    b, _, h, w = image.shape
    out = displacement.clone().float()
    for i in range(b):
        if not displacement[i].any():
            continue
        x = image[i].float()
        border = torch.cat([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], dim=1)
        dist = (x - border.median(dim=1).values[:, None, None]).norm(dim=0)
        if dist.max() < 2 * dist.median():
            continue
        rows, cols = torch.nonzero(dist > threshold * dist.max(), as_tuple=True)
        for axis, (idx, side) in enumerate(((cols, w), (rows, h))):
            lo = (idx.min().item() - margin) / side  # the object's extent, in frame sides
            hi = (idx.max().item() + 1 + margin) / side
            path = out[i, :, axis]
            need_lo = -(lo + path.min().item())  # shifts from here up keep it off edge 0
            need_hi = 1 - (hi + path.max().item())  # and up to here off edge 1
            if need_lo <= need_hi:
                shift = min(max(0.0, need_lo), need_hi)
            else:
                shift = (need_lo + need_hi) / 2
            out[i, :, axis] += shift
    return out


def first_frame_concat(
    first: torch.Tensor | None,
    like: torch.Tensor,
    keep: torch.Tensor | None = None,
    displacement: torch.Tensor | None = None,
) -> torch.Tensor:
    """The UNet's ``concat`` input (B, C + 1, F, h, w) for noisy latents `like` (B, C, F, h, w).

    `first` (B, C, h, w) is the first frame's latents, repeated over the F frames; the last
    channel is 1 on frame 0 (which the clip starts from) and 0 on the others. `first=None` gives
    all zeros (no first frame), and so do the rows of `keep` (B,) that are False.

    With `displacement` (B, F, 2) the copy on frame k is moved by ``displacement[:, k]`` (frame
    sides, `shift_frames`): a motion guide, the path a planner (``models.motion_planner``) read
    from the caption, so the UNet draws the motion where the guide leads instead of deriving
    the direction from a word (which cross-attention alone never learned: issue 3's notes).
    """
    b, c, f, h, w = like.shape
    out = like.new_zeros(b, c + 1, f, h, w)
    if first is None:
        return out
    if first.shape != (b, c, h, w):
        raise ValueError(f"first frame latents must be {(b, c, h, w)}, got {tuple(first.shape)}")
    if displacement is None:
        out[:, :c] = first.to(like.dtype)[:, :, None]
    else:
        out[:, :c] = shift_frames(first, displacement).to(like.dtype)
    out[:, c, 0] = 1.0
    if keep is not None:
        out = out * keep.to(like.dtype).view(b, 1, 1, 1, 1)
    return out
