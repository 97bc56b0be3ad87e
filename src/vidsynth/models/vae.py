"""Frame-wise VAE encode/decode for video latents shaped (B, C, F, h, w).

The image VAE (diffusers `AutoencoderKL`) sees frames as a batch; doing that in chunks of
frames keeps peak memory independent of the clip length (SVD users hit OOM without it).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from diffusers import AutoencoderKL


def latent_scale(vae: AutoencoderKL) -> float:
    return float(getattr(vae.config, "scaling_factor", 0.18215))


def iter_decode(
    vae: AutoencoderKL, latents: torch.Tensor, chunk_size: int = 8
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first_frame, pixels) with pixels (B, 3, n, H, W) in [-1, 1], n ≤ chunk_size."""
    if chunk_size < 1:
        raise ValueError(f"decode chunk size must be ≥ 1, got {chunk_size}")
    b, c, f, h, w = latents.shape
    z = latents / latent_scale(vae)
    dtype = next(vae.parameters()).dtype
    for start in range(0, f, chunk_size):
        part = z[:, :, start : start + chunk_size]
        n = part.shape[2]
        flat = part.permute(0, 2, 1, 3, 4).reshape(b * n, c, h, w).to(dtype)
        img = vae.decode(flat).sample.float()
        yield start, img.reshape(b, n, *img.shape[1:]).permute(0, 2, 1, 3, 4)


@torch.no_grad()
def decode_video(vae: AutoencoderKL, latents: torch.Tensor, chunk_size: int = 8) -> torch.Tensor:
    """Latents → float video (B, 3, F, H, W) in [0, 1] on the CPU."""
    chunks = [(img / 2 + 0.5).clamp(0, 1).cpu() for _, img in iter_decode(vae, latents, chunk_size)]
    return torch.cat(chunks, dim=2)


@torch.no_grad()
def decode_to_uint8(vae: AutoencoderKL, latents: torch.Tensor, chunk_size: int = 8) -> torch.Tensor:
    """Latents → uint8 frames (B, F, H, W, 3) on the CPU, converting each chunk as it comes."""
    b, _, f = latents.shape[:3]
    out: torch.Tensor | None = None
    for start, img in iter_decode(vae, latents, chunk_size):
        # Round like diffusers' numpy_to_pil so frames match the reference pipeline's.
        u8 = ((img / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).cpu()
        u8 = u8.permute(0, 2, 3, 4, 1)  # (B, n, H, W, 3)
        if out is None:
            out = torch.empty((b, f, *u8.shape[2:]), dtype=torch.uint8)
        out[:, start : start + u8.shape[1]] = u8
    assert out is not None
    return out


@torch.no_grad()
def encode_video(
    vae: AutoencoderKL,
    video: torch.Tensor,
    chunk_size: int = 8,
    *,
    sample: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Float video (B, 3, F, H, W) in [-1, 1] → scaled latents (B, C, F, H/8, W/8).

    `sample=False` takes the posterior mean (deterministic); training samples it.
    """
    b, _, f, h, w = video.shape
    dtype = next(vae.parameters()).dtype
    device = next(vae.parameters()).device
    parts = []
    for start in range(0, f, chunk_size):
        part = video[:, :, start : start + chunk_size]
        n = part.shape[2]
        flat = part.permute(0, 2, 1, 3, 4).reshape(b * n, 3, h, w).to(device, dtype)
        dist = vae.encode(flat).latent_dist
        z = dist.sample(generator) if sample else dist.mode()
        parts.append(z.reshape(b, n, *z.shape[1:]).permute(0, 2, 1, 3, 4))
    return torch.cat(parts, dim=2) * latent_scale(vae)
