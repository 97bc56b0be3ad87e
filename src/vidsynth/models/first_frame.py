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
``warp_frames`` and ``models.motion_planner``. The same guide scales and turns the object
for growing, shrinking and rotating.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def first_frame_channels(latent_channels: int) -> int:
    """Extra UNet input channels for first-frame conditioning: the latents plus a flag."""
    return latent_channels + 1


@dataclass(frozen=True)
class MotionGuide:
    """How a first frame's object moves over F frames: a coarse animation of it for the UNet.

    `shift` (B, F, 2) moves the object (x right, y down, frame sides); `scale` (B, F) is its
    size as a factor of frame 0's and `angle` (B, F) its rotation in degrees, clockwise on
    screen, both about `centre` (B, 2), where the object is on frame 0 (frame sides).
    `mask` (B, H, W) in [0, 1], at any resolution, is where the object is on frame 0, for a
    frame whose objects move each their own way (`warp_scene`); None moves the whole frame.
    """

    shift: torch.Tensor
    scale: torch.Tensor
    angle: torch.Tensor
    centre: torch.Tensor
    mask: torch.Tensor | None = None

    def repeat(self, n: int) -> MotionGuide:
        """The guide of a batch repeated `n` times (the two halves of a guided batch)."""
        return MotionGuide(
            self.shift.repeat(n, 1, 1),
            self.scale.repeat(n, 1),
            self.angle.repeat(n, 1),
            self.centre.repeat(n, 1),
            None if self.mask is None else self.mask.repeat(n, 1, 1),
        )

    @classmethod
    def moving(cls, shift: torch.Tensor, centre: torch.Tensor | None = None) -> MotionGuide:
        """A guide that only moves the frame by `shift` (B, F, 2)."""
        b, f, _ = shift.shape
        centre = torch.full((b, 2), 0.5) if centre is None else centre
        return cls(shift, torch.ones(b, f), torch.zeros(b, f), centre)

    def moves(self) -> torch.Tensor:
        """Per clip (B,), whether its guide moves anything."""
        shifted = self.shift.flatten(1).ne(0).any(1)
        return shifted | self.scale.ne(1).any(1) | self.angle.ne(0).any(1)

    def any(self) -> bool:
        """Whether anything moves (an all-still guide is the plain first frame)."""
        return bool(self.moves().any())


# a shrinking object's size factor stops here, as the world's objects stop at a least size
MIN_SCALE = 0.3


def motion_guide(
    motion: torch.Tensor | None, batch: int, frames: int, centre: torch.Tensor | None = None
) -> MotionGuide:
    """The guide of constant `motion` (B, 4) per frame from frame 0: (vx, vy) frame sides, the
    size factor's change and the rotation in degrees (clockwise); pivoting about `centre`
    (B, 2), default the frame's centre. `None` (nothing known of the motion) stays in place.
    Rows of two numbers are velocities only."""
    if motion is None:
        motion = torch.zeros(batch, 4)
    motion = F.pad(motion.float().cpu(), (0, 4 - motion.shape[-1]))
    steps = torch.arange(frames, dtype=torch.float32)[None, :]
    return MotionGuide(
        shift=motion_path(motion[:, :2], batch, frames),
        scale=(1 + motion[:, 2:3] * steps).clamp(min=MIN_SCALE),
        angle=motion[:, 3:4] * steps,
        centre=torch.full((batch, 2), 0.5) if centre is None else centre.float().cpu(),
    )


def warp_frames(first: torch.Tensor, guide: MotionGuide) -> torch.Tensor:
    """`first` (B, C, h, w) animated by `guide` → (B, C, F, h, w): on frame k, what was at q
    is drawn at centre + shift + scale · R(angle) (q − centre).

    Shifts are in frame sides, so they mean the same at every resolution; sub-pixel parts are
    interpolated bilinearly. Rotation is in pixels (so a square stays square on a frame that
    is not). What comes in from beyond an edge repeats the edge (a flat background stays
    flat).
    """
    b, c, h, w = first.shape
    f = guide.shift.shape[1]
    dev = first.device
    ys = (torch.arange(h, device=dev, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=dev, dtype=torch.float32) + 0.5) / w
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    p = torch.stack([grid_x, grid_y], dim=-1)[None, None]  # (1, 1, h, w, 2), frame sides
    pixels = torch.tensor([w, h], device=dev, dtype=torch.float32)
    centre = guide.centre.to(dev, torch.float32)[:, None, None, None]  # (B, 1, 1, 1, 2)
    shift = guide.shift.to(dev, torch.float32)[:, :, None, None]  # (B, F, 1, 1, 2)
    # invert the forward map: q = centre + R(−angle) (p − centre − shift) / scale, in pixels
    u = (p - centre - shift) * pixels / guide.scale.to(dev, torch.float32)[..., None, None, None]
    theta = guide.angle.to(dev, torch.float32)[..., None, None] * (math.pi / 180)
    cos, sin = theta.cos(), theta.sin()
    ux, uy = u[..., 0], u[..., 1]
    q = centre + torch.stack([cos * ux + sin * uy, -sin * ux + cos * uy], dim=-1) / pixels
    grid = (q * 2 - 1).reshape(b * f, h, w, 2)  # grid_sample's [-1, 1], x first
    frames = first.float().repeat_interleave(f, dim=0)
    moved = F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return moved.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4).to(first.dtype)


def warp_scene(first: torch.Tensor, guides: Sequence[MotionGuide]) -> torch.Tensor:
    """`first` (B, C, h, w) animated by one guide per object → (B, C, F, h, w).

    Each object's part of the frame (its guide's `mask`, resized to the frame and widened by a
    pixel, since an object's latents spread a little beyond its pixels) moves by its own guide
    (`warp_frames`) over the rest of the frame, where the objects were filled with the border's
    median (a flat background stays flat). Overlaps are averaged. A lone guide without a mask
    is `warp_frames` itself: the frame of one object moves whole.
    """
    if len(guides) == 1 and guides[0].mask is None:
        return warp_frames(first, guides[0])
    b, _, h, w = first.shape
    x = first.float()
    masks = torch.stack([_frame_mask(g.mask, b, h, w).to(x.device) for g in guides], dim=1)
    hole = masks.sum(dim=1, keepdim=True).clamp(max=1)  # (B, 1, h, w)
    background = border_median(x)[:, :, None, None]
    still = (x * (1 - hole) + background * hole)[:, :, None]  # (B, C, 1, h, w)
    moved = [warp_frames(masks[:, i : i + 1], g) for i, g in enumerate(guides)]
    total = torch.stack(moved).sum(dim=0)  # (B, 1, F, h, w)
    layers = sum(m * warp_frames(x, g) for m, g in zip(moved, guides, strict=True))
    out = still * (1 - total.clamp(max=1)) + layers / total.clamp(min=1)
    return out.to(first.dtype)


def border_median(x: torch.Tensor) -> torch.Tensor:
    """The median (B, C) of each frame's border pixels, `x` (B, C, H, W): the colour of a flat
    background, whatever stands on it."""
    border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, :, 0], x[:, :, :, -1]], dim=2)
    return border.median(dim=2).values


def _frame_mask(mask: torch.Tensor | None, batch: int, h: int, w: int) -> torch.Tensor:
    """A guide's mask at the frame's (h, w), widened by one pixel; None: all of the frame."""
    if mask is None:
        return torch.ones(batch, h, w)
    m = F.interpolate(mask[:, None].float().cpu(), size=(h, w), mode="area")
    return F.max_pool2d(m, 3, stride=1, padding=1)[:, 0]


def colour_distances(image: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Each pixel's distance (B, 1 + K, H, W) from each frame's background (its border median;
    index 0) and from each colour of the `palette` (K, 3), frames `image` (B, 3, H, W) in
    [0, 1]: the nearest one names the pixel."""
    x = image.float()
    background = border_median(x)  # (B, 3)
    colours = palette.to(x)[None].expand(x.shape[0], -1, -1)
    candidates = torch.cat([background[:, None], colours], dim=1)  # (B, 1 + K, 3)
    return (x[:, None] - candidates[..., None, None]).norm(dim=2)


def colour_masks(image: torch.Tensor, palette: torch.Tensor, picks: torch.Tensor) -> torch.Tensor:
    """Where each named object is on each frame `image` (B, 3, H, W) in [0, 1], found by
    colour → (B, S, H, W) float: the pixels whose nearest colour, among the `palette` (K, 3)
    and the frame's border median (its background), is the palette entry `picks` (B, S) names
    (-1: no object). A frame with one object moves whole (its mask is all ones, as the guide
    of one object always was): nothing but its background could be left behind.
    """
    _, _, h, w = image.shape
    dist = colour_distances(image.cpu(), palette.cpu())
    nearest = dist.argmin(dim=1) - 1  # palette index, -1 for the background
    picks = picks.long().cpu()
    masks = (nearest[:, None] == picks[..., None, None]) & (picks[..., None, None] >= 0)
    masks = masks.float()
    alone = (picks >= 0).sum(dim=1) == 1
    masks[alone] = (picks[alone] >= 0).float()[..., None, None].expand(-1, -1, h, w)
    return masks


def motion_path(velocity: torch.Tensor | None, batch: int, frames: int) -> torch.Tensor:
    """Displacements (B, F, 2) of constant `velocity` (B, 2) frame sides per frame from frame
    0; `None` (nothing known of the motion) stays in place."""
    if velocity is None:
        return torch.zeros(batch, frames, 2)
    steps = torch.arange(frames, dtype=torch.float32)
    return velocity.float().cpu()[:, None, :] * steps[None, :, None]


def object_mask(image: torch.Tensor, threshold: float = 0.4) -> torch.Tensor | None:
    """Where the object of `image` (3, H, W) is, (H, W) bool: the pixels farther from the
    border's median colour than `threshold` × the farthest. None where nothing stands out (no
    flat background to stand out from)."""
    x = image.float()
    dist = (x - border_median(x[None])[0][:, None, None]).norm(dim=0)
    if dist.max() < 2 * dist.median():
        return None
    return dist > threshold * dist.max()


def object_centre(
    image: torch.Tensor, threshold: float = 0.4, masks: torch.Tensor | None = None
) -> torch.Tensor:
    """The centre (B, 2) of each first frame's object (`object_mask`, or `masks` (B, H, W)
    bool where given) in frame sides, x then y: where a `MotionGuide` pivots. A frame where
    nothing stands out gives the frame's centre."""
    b, _, h, w = image.shape
    out = torch.full((b, 2), 0.5)
    for i in range(b):
        mask = object_mask(image[i], threshold) if masks is None else masks[i]
        if mask is not None and mask.any():
            rows, cols = torch.nonzero(mask, as_tuple=True)
            out[i, 0] = (cols.float().mean() + 0.5) / w
            out[i, 1] = (rows.float().mean() + 0.5) / h
    return out


def keep_in_frame(
    image: torch.Tensor,
    displacement: torch.Tensor,
    *,
    threshold: float = 0.4,
    margin: float = 1.0,
    masks: torch.Tensor | None = None,
) -> torch.Tensor:
    """`displacement` (B, F, 2) offset so the object of each first frame `image` (B, 3, H, W)
    stays in the frame along its path, by the least offset that does; a path too long to fit is
    centred.

    Why: the image stage draws the first frame without regard to the motion (its object starts
    where there is no room to go the planned way about half the time), and a clip whose object
    runs into the edge is not the motion asked for. LVD's planner likewise keeps its boxes in
    the frame. The object is what stands out from the frame's border: pixels farther from the
    border's median colour than `threshold` × the farthest (`object_mask`), their box widened
    by `margin` pixels, or `masks` (B, H, W) bool where given (one of several objects). A
    frame where nothing stands out (no flat background) keeps its path.
    """
    b, _, h, w = image.shape
    out = displacement.clone().float()
    for i in range(b):
        if not displacement[i].any():
            continue
        mask = object_mask(image[i], threshold) if masks is None else masks[i]
        if mask is None or not mask.any():
            continue
        rows, cols = torch.nonzero(mask, as_tuple=True)
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
    guide: MotionGuide | Sequence[MotionGuide] | None = None,
    animated: torch.Tensor | None = None,
) -> torch.Tensor:
    """The UNet's ``concat`` input (B, C + 1, F, h, w) for noisy latents `like` (B, C, F, h, w).

    `first` (B, C, h, w) is the first frame's latents, repeated over the F frames; the last
    channel is 1 on frame 0 (which the clip starts from) and 0 on the others. `first=None` gives
    all zeros (no first frame), and so do the rows of `keep` (B,) that are False.

    With a `guide` the copy on frame k is the first frame animated to frame k (`warp_frames`):
    the motion a planner (``models.motion_planner``) read from the caption, so the UNet draws
    the motion where the guide leads instead of deriving it from a word (which cross-attention
    alone never learned for directions: issue 3's notes).
    A sequence of guides, one per object, moves each object its own way (`warp_scene`).
    `animated` (B, C, F, h, w) is the first frame already animated, frame by frame (as the
    pipeline does it: warped in pixels and encoded, which keeps the thin points of a small
    star that a warp of latents blurs away); it takes the place of `guide`.
    """
    b, c, f, h, w = like.shape
    out = like.new_zeros(b, c + 1, f, h, w)
    if first is None:
        return out
    if first.shape != (b, c, h, w):
        raise ValueError(f"first frame latents must be {(b, c, h, w)}, got {tuple(first.shape)}")
    if animated is not None:
        if guide is not None:
            raise ValueError("give the first frame's guide or its animation, not both")
        if animated.shape != like.shape:
            raise ValueError(
                f"animated first frame must be {tuple(like.shape)}, got {tuple(animated.shape)}"
            )
        out[:, :c] = animated.to(like.dtype)
    elif guide is None:
        out[:, :c] = first.to(like.dtype)[:, :, None]
    else:
        guides = [guide] if isinstance(guide, MotionGuide) else list(guide)
        out[:, :c] = warp_scene(first, guides).to(like.dtype)
    out[:, c, 0] = 1.0
    if keep is not None:
        out = out * keep.to(like.dtype).view(b, 1, 1, 1, 1)
    return out
