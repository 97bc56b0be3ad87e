"""Full-reference image metrics on uint8 frames: PSNR and SSIM.

SSIM follows Wang et al. 2004 ("Image quality assessment: from error visibility to structural
similarity", eq. 13): local statistics under an 11×11 Gaussian window (σ = 1.5), constants
C1 = (0.01 L)², C2 = (0.03 L)² with L = 255, computed over the window positions that fit
inside the image ("valid", as the authors' reference code does), per colour channel, then
averaged over channels, positions and frames.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

DATA_RANGE = 255.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
MAX_PSNR = 100.0  # identical inputs: reported as this instead of infinity


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    return a, b


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 arrays (any shape, e.g. a whole clip)."""
    a, b = _pair(a, b)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0:
        return MAX_PSNR
    return min(MAX_PSNR, 10.0 * float(np.log10(DATA_RANGE**2 / mse)))


def _gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two uint8 images (H, W, 3) or clips (F, H, W, 3); 1 means identical."""
    a, b = _pair(a, b)
    if a.ndim == 3:
        a, b = a[None], b[None]
    if a.ndim != 4:
        raise ValueError(f"expected (H, W, C) or (F, H, W, C) arrays, got shape {a.shape}")
    if min(a.shape[1:3]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}")
    g = _gaussian_window()

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable Gaussian, valid positions only
        t = F.conv2d(t, g.reshape(1, 1, -1, 1))
        return F.conv2d(t, g.reshape(1, 1, 1, -1))

    c1, c2 = (SSIM_K1 * DATA_RANGE) ** 2, (SSIM_K2 * DATA_RANGE) ** 2
    total = 0.0
    for fa, fb in zip(a, b, strict=True):  # a frame at a time: memory stays one frame's
        # (H, W, C) -> (C, 1, H, W): every channel is one image
        x = torch.from_numpy(fa.astype(np.float64)).permute(2, 0, 1)[:, None]
        y = torch.from_numpy(fb.astype(np.float64)).permute(2, 0, 1)[:, None]
        mx, my = blur(x), blur(y)
        vx = blur(x * x) - mx * mx
        vy = blur(y * y) - my * my
        cov = blur(x * y) - mx * my
        num = (2 * mx * my + c1) * (2 * cov + c2)
        index = num / ((mx * mx + my * my + c1) * (vx + vy + c2))
        total += float(index.mean())
    return total / len(a)


__all__ = ["MAX_PSNR", "psnr", "ssim"]
