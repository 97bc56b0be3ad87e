"""Classifier-free guidance (Ho & Salimans 2022)."""

from __future__ import annotations

import torch


def cfg_combine(uncond: torch.Tensor, cond: torch.Tensor, scale: float) -> torch.Tensor:
    """eps = eps_uncond + w (eps_cond - eps_uncond); the same form holds for v and x0 outputs."""
    return uncond + scale * (cond - uncond)


def uses_guidance(scale: float) -> bool:
    """Scale 1 is the conditional model alone, so the unconditional pass can be skipped."""
    return scale > 1.0


def in_interval(sigma: float, interval: tuple[float, float]) -> bool:
    """Whether guidance applies at noise level `sigma`: lo < sigma <= hi.

    Guidance in a limited interval (Kynkäänniemi et al. 2024): at the lowest noise levels
    the picture is settled and guidance mostly costs the unconditional pass (and, at the
    highest, it pulls samples together); skipping it there saves that pass.
    """
    lo, hi = interval
    return lo < sigma <= hi
