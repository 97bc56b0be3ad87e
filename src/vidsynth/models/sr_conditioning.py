"""How a super-resolution UNet sees the previous stage's video, and how that input is noised.

Both cascade stages are diffusion models conditioned by channel concatenation (the UNet's
``concat`` input), as Imagen Video's SSR/TSR models and Stable Diffusion's ×4 upscaler are:

- spatial SR, in the VAE's latent space: the low-resolution RGB video, resized to the latent
  grid (for a ×4 upscaler on a ×4 VAE it is already that size, 64×64 frames beside 64×64
  latents), 3 channels. With ``latent_residual`` the model draws the latents' residual over
  the latents of the bicubic upscale instead of the latents themselves (see
  ``SPATIAL_RESIDUAL_SCALE``);
- temporal SR, in pixel space: for each new frame, the known frames before and after it, its
  blend weight, whether there is a frame after it, and where the two differ (9 channels). The
  model draws the *residual* of the new frame over the linear blend of its neighbours (as
  SRDiff, Li et al. 2022, draws an image's residual over its bicubic upscale); past the last
  known frame, over the linear extrapolation of the last two. With motion compensation
  (``interpolation(..., motion_compensation=True)``) the base is the neighbours moved along each
  pixel's motion instead (``vidsynth.models.motion_compensation``), and the model sees them so
  moved, aligned to the new frame. Pixel space,
  because frame blending is already very close at 16 fps (sub-pixel motion per frame) and a
  VAE round trip alone loses more than that; residual, because most pixels do not move and
  the blend has them exactly.

Noise conditioning augmentation (Ho et al. 2022, "Cascaded Diffusion Models", sec. 4.3;
Imagen Video sec. 2.5): in training the conditioning is noised to a random level ``s`` and the
UNet is told ``s``; at sampling a fixed small ``s`` is used. The stage then learns not to copy
the artefacts of the stage before it, which it never sees in training (that input is a clean
render). The noise mixes variance-preservingly like the diffusion itself, ``alpha_s * x +
sigma_s * eps`` with ``alpha_s = cos(pi s / 2)``, ``sigma_s = sin(pi s / 2)`` (the continuous
cosine schedule, Nichol & Dhariwal 2021), so ``s = 0`` is clean and ``s = 1`` pure noise.

The level reaches the UNet through its ``timestep_cond`` input (config ``time_cond_proj_dim``):
sinusoidal features of ``s``, projected by a bias-free linear layer into the timestep features
before the time MLP (the hook LCM uses for the guidance scale). The projection is part of the
UNet's own state dict and config, so it is saved, loaded and EMA-averaged with the UNet, and
the folder stays loadable by diffusers' ``UNet3DConditionModel``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from vidsynth.models.embeddings import timestep_features
from vidsynth.models.motion_compensation import aligned, bilateral_flow, interpolate

if TYPE_CHECKING:
    from diffusers import AutoencoderKL

SR_KINDS = ("spatial-sr", "temporal-sr")
# Levels are scaled like diffusion timesteps (0..1000) before their sinusoidal features, so the
# frequencies of timestep_features resolve differences of 0.01 in s.
LEVEL_SCALE = 1000.0


# Spatial SR with latent_residual draws SPATIAL_RESIDUAL_SCALE × (latents of the true frame −
# latents of its bicubic upscale). The VAE codes the flat areas of both alike, so the residual
# lives at edges: on shapes-world clips at 256×256 its std is 0.09 against the latents' 1.0, and
# 96% of its entries are under 0.1. A model that has learned nothing yet already gives the
# bicubic upscale; learning is then about sharpening edges (SRDiff's argument, Li et al. 2022).
SPATIAL_RESIDUAL_SCALE = 4.0

# Temporal SR draws RESIDUAL_SCALE × (new frame − blend), in [-1, 1] pixel units: residuals
# are small, and the scale brings the moving edges, where they are not, nearer unit variance.
RESIDUAL_SCALE = 2.0
# A pixel "moves" where its two neighbouring known frames differ by more than this (in [-1, 1]
# units: 4 of 255 levels, above a decoder's noise) within MOTION_RADIUS pixels: in this world a
# frame moves nothing farther than ~3.4 pixels (a large star's tips at 64×64), half of it
# between two frames at twice the rate.
MOTION_THRESHOLD = 8 / 255
MOTION_RADIUS = 3


def sample_channels(kind: str, latent_channels: int) -> int:
    """Channels the UNet denoises: the VAE's latents (spatial SR) or RGB pixels (temporal)."""
    if kind == "spatial-sr":
        return latent_channels
    if kind == "temporal-sr":
        return 3
    raise ValueError(f"unknown super-resolution kind {kind!r}; expected one of {SR_KINDS}")


def condition_channels(kind: str, latent_channels: int = 4) -> int:
    """Extra UNet input channels of a super-resolution kind (see the module docstring)."""
    if kind == "spatial-sr":
        return 3
    if kind == "temporal-sr":
        return 9  # previous RGB, next RGB, blend weight, has-next, motion mask
    raise ValueError(f"unknown super-resolution kind {kind!r}; expected one of {SR_KINDS}")


def _per_sample(level: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    level = torch.as_tensor(level, dtype=torch.float32, device=like.device)
    if level.ndim == 0:
        level = level.expand(like.shape[0])
    if level.shape != (like.shape[0],):
        raise ValueError(f"need one level per sample ({like.shape[0]}), got {tuple(level.shape)}")
    return level


def augment(x: torch.Tensor, level: float | torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``cos(pi s/2) * x + sin(pi s/2) * noise``, with ``s`` a float or one level per sample."""
    s = _per_sample(level, x).reshape(-1, *([1] * (x.ndim - 1)))
    angle = s * (math.pi / 2)
    return (angle.cos() * x.float() + angle.sin() * noise.float()).to(x.dtype)


def level_features(level: float | torch.Tensor, dim: int, like: torch.Tensor) -> torch.Tensor:
    """(B, dim) sinusoidal features of the augmentation level, for ``timestep_cond``."""
    s = _per_sample(level, like)
    return timestep_features(s * LEVEL_SCALE, dim)


def spatial_condition(low: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
    """Low-resolution pixels (B, 3, F, h, w) in [-1, 1] on the latent grid (B, 3, F, H, W).

    Bicubic resizing where the sizes differ (an SR factor other than the VAE's); none when the
    low-resolution frames already match the latent grid.
    """
    b, c, f, h, w = low.shape
    if (h, w) == tuple(latent_size):
        return low
    flat = low.transpose(1, 2).reshape(b * f, c, h, w).float()
    flat = F.interpolate(
        flat, size=tuple(latent_size), mode="bicubic", align_corners=False, antialias=True
    )
    out = flat.clamp(-1, 1).reshape(b, f, c, *latent_size).transpose(1, 2)
    return out.to(low.dtype)


def upscale_pixels(low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic upscale of pixels (B, 3, F, h, w) in [-1, 1] to (B, 3, F, *size)."""
    b, c, f, h, w = low.shape
    flat = low.transpose(1, 2).reshape(b * f, c, h, w).float()
    flat = F.interpolate(flat, size=tuple(size), mode="bicubic", align_corners=False)
    return flat.clamp(-1, 1).reshape(b, f, c, *size).transpose(1, 2).to(low.dtype)


def residual_base(vae: AutoencoderKL, low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The latents a `latent_residual` spatial SR model corrects: those of the bicubic
    upscale of `low` (B, 3, F, h, w) to `size`. Its sample x stands for base + x / scale.
    (Training takes the same latents of crops of that upscale.)"""
    from vidsynth.models.vae import encode_video

    return encode_video(vae, upscale_pixels(low, size))


@dataclass
class Interpolation:
    """What temporal SR knows about each new frame of a clip (B, C, Fn, H, W), in time order.

    New frames are the positions i·k + j (0 < j < k) of the output, between known frames i and
    i + 1. After the last known frame there is no next one: those frames are extrapolated from
    the last two known frames (``prev`` the one before last, ``next`` the last, ``weight``
    1 + j/k, ``has_next`` 0), so the model sees how things move there too.
    """

    prev: torch.Tensor  # the known frame before, (B, 3, Fn, H, W)
    next: torch.Tensor  # the known frame after (past the end: the last one)
    weight: torch.Tensor  # the new frame's time from prev, in known frames: j / k, (1, 1, Fn, 1, 1)
    has_next: torch.Tensor  # 1 where a next known frame exists, (1, 1, Fn, 1, 1)
    motion: torch.Tensor  # 1 where prev and next differ nearby, (B, 1, Fn, H, W)
    # per-pixel motion (x, y) in pixels per known interval, (B, 2, Fn, H, W); None: no motion
    # compensation (the neighbours are used where they are)
    flow: torch.Tensor | None = None

    @property
    def blend(self) -> torch.Tensor:
        """Linear cross-fade of the neighbours at the new frame's time (frame blending); past
        the last known frame, the linear extrapolation of the last two."""
        return (1 - self.weight) * self.prev + self.weight * self.next

    @property
    def base(self) -> torch.Tensor:
        """What the model's residual is added to: the blend, or with a flow the
        motion-compensated interpolation of the neighbours (still pixels keep the blend)."""
        if self.flow is None:
            return self.blend
        return self._per_frame(interpolate, self.prev, self.next)[0]

    def align(self, prev: torch.Tensor, next_: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Neighbours (B, C, Fn, H, W) moved along the flow to the new frames' times (as they
        are without one)."""
        if self.flow is None:
            return prev, next_
        return self._per_frame(aligned, prev, next_)

    def _per_frame(self, fn, prev: torch.Tensor, next_: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """`fn(prev, next, weight, flow)` on the new frames as a batch of images."""
        b = prev.shape[0]
        weight = _frame_weights(self.weight, b)
        out = fn(_as_images(prev), _as_images(next_), weight, _as_images(self.flow))
        out = out if isinstance(out, tuple) else (out,)
        return tuple(_as_clips(x, b).to(prev.dtype) for x in out)

    def condition(self, prev: torch.Tensor, next_: torch.Tensor) -> torch.Tensor:
        """The UNet's 9 conditioning channels, with (augmented) neighbours `prev`, `next_`
        (aligned to the new frames when there is a flow)."""
        prev, next_ = self.align(prev, next_)
        shape = (*prev.shape[:1], 1, *prev.shape[2:])
        return torch.cat(
            [
                prev,
                next_,
                self.weight.expand(shape).to(prev.dtype),
                self.has_next.expand(shape).to(prev.dtype),
                self.motion.to(prev.dtype),
            ],
            dim=1,
        )


def _as_images(x: torch.Tensor) -> torch.Tensor:
    """(B, C, F, H, W) → (B·F, C, H, W) float, frames as a batch of images."""
    b, c, f, h, w = x.shape
    return x.transpose(1, 2).reshape(b * f, c, h, w).float()


def _as_clips(x: torch.Tensor, batch: int) -> torch.Tensor:
    """The inverse of `_as_images`: (B·F, C, H, W) → (B, C, F, H, W)."""
    n, c, h, w = x.shape
    return x.reshape(batch, n // batch, c, h, w).transpose(1, 2)


def _frame_weights(weight: torch.Tensor, batch: int) -> torch.Tensor:
    """Each new frame's time (1, 1, F, 1, 1), for every image of `_as_images`: (B·F,)."""
    return weight.reshape(-1).repeat(batch)


def neighbours(known: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(previous, next) known frame of every new frame, each (B, C, F·(k − 1), H, W); past the
    last known frame, the one before last and the last (a single frame is both)."""
    if factor < 2:
        raise ValueError(f"a temporal SR factor must be at least 2, got {factor}")
    f = known.shape[2]
    prev, nxt = _neighbour_indices(f, known.device)
    rep = factor - 1
    return (
        known[:, :, prev].repeat_interleave(rep, dim=2),
        known[:, :, nxt].repeat_interleave(rep, dim=2),
    )


def _neighbour_indices(f: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the known frames before and after the new frames that follow each known one."""
    idx = torch.arange(f, device=device)
    last = idx + 1 >= f
    prev = torch.where(last, torch.clamp(idx - 1, min=0), idx)
    return prev, torch.where(last, idx, idx + 1)


def interpolation(
    known: torch.Tensor, factor: int, motion_compensation: bool = False
) -> Interpolation:
    """The new frames' neighbours for known frames (B, 3, F, H, W) in [-1, 1] and a factor k:
    F·(k − 1) new frames, output positions i·k + j; with `motion_compensation`, also each new
    pixel's motion between them (bilateral motion estimation on the known frames as given)."""
    prev, nxt_frames = neighbours(known, factor)
    f = known.shape[2]
    idx = torch.arange(f, device=known.device)
    # the change that decides the motion mask: between the same two frames
    before, after = _neighbour_indices(f, known.device)
    change = (known[:, :, before] - known[:, :, after]).abs().amax(dim=1, keepdim=True)
    moving = (change > MOTION_THRESHOLD).float()
    r = MOTION_RADIUS
    moving = F.max_pool3d(moving, (1, 2 * r + 1, 2 * r + 1), stride=1, padding=(0, r, r))
    steps = torch.arange(1, factor, device=known.device, dtype=torch.float32) / factor
    rep = factor - 1  # new frames per known frame, in time order: (i, j=1), (i, j=2), ...

    def per_new(t: torch.Tensor) -> torch.Tensor:
        return t.repeat_interleave(rep, dim=2)

    has_next = per_new((idx + 1 < f).float().reshape(1, 1, f, 1, 1))
    # past the end the time counts from the frame before last (one known frame: it stays put)
    beyond = float(f > 1) * (1 - has_next)
    weight = steps.repeat(f).reshape(1, 1, f * rep, 1, 1) + beyond
    motion = per_new(moving)
    flow = None
    if motion_compensation:
        b = prev.shape[0]
        flow = bilateral_flow(_as_images(prev), _as_images(nxt_frames), _frame_weights(weight, b))
        flow = _as_clips(flow, b) * motion  # only where the neighbours differ: else blend
    return Interpolation(
        prev=prev, next=nxt_frames, weight=weight, has_next=has_next, motion=motion, flow=flow
    )


def new_frame_positions(num_known: int, factor: int) -> list[int]:
    """Output positions of the new frames, in the order `interpolation` lists them."""
    return [i * factor + j for i in range(num_known) for j in range(1, factor)]


__all__ = [
    "LEVEL_SCALE",
    "MOTION_RADIUS",
    "MOTION_THRESHOLD",
    "RESIDUAL_SCALE",
    "SR_KINDS",
    "Interpolation",
    "augment",
    "condition_channels",
    "interpolation",
    "level_features",
    "neighbours",
    "new_frame_positions",
    "sample_channels",
    "spatial_condition",
]
