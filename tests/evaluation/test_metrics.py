"""PSNR and SSIM against properties and values known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vidsynth.evaluation.metrics import MAX_PSNR, psnr, ssim


def test_psnr_values() -> None:
    a = np.full((2, 8, 8, 3), 100, np.uint8)
    assert psnr(a, a) == MAX_PSNR
    assert psnr(a, a + 1) == pytest.approx(10 * math.log10(255**2))  # MSE 1: 48.13 dB
    b = a.copy()
    b[0] = 110  # MSE (10² over half the pixels) = 50
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 50))
    with pytest.raises(ValueError, match="same shape"):
        psnr(a, a[:1])


def test_ssim_identity_symmetry_and_order() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert ssim(x, x) == pytest.approx(1.0)
    noisy = np.clip(x + rng.normal(0, 10, x.shape), 0, 255).astype(np.uint8)
    noisier = np.clip(x + rng.normal(0, 40, x.shape), 0, 255).astype(np.uint8)
    assert ssim(x, noisy) == pytest.approx(ssim(noisy, x))
    assert 1 > ssim(x, noisy) > ssim(x, noisier) > 0
    assert ssim(x[0], noisy[0]) == pytest.approx(ssim(x[:1], noisy[:1]))  # (H, W, C) works
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(x[:, :8, :8], x[:, :8, :8])


def test_ssim_of_flat_images_is_the_luminance_term() -> None:
    """No variance anywhere: SSIM = (2 m1 m2 + C1) / (m1² + m2² + C1) exactly."""
    m1, m2 = 100.0, 140.0
    c1 = (0.01 * 255) ** 2
    a = np.full((16, 16, 3), m1, np.uint8)
    b = np.full((16, 16, 3), m2, np.uint8)
    assert ssim(a, b) == pytest.approx((2 * m1 * m2 + c1) / (m1**2 + m2**2 + c1))


def test_ssim_matches_a_direct_windowed_computation() -> None:
    """Eq. 13 of Wang et al. 2004 at every valid 11×11 window, written out with loops."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (14, 13, 1), dtype=np.uint8)
    b = np.clip(a + rng.normal(0, 25, a.shape), 0, 255).astype(np.uint8)
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    x, y = a[..., 0].astype(float), b[..., 0].astype(float)
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx = (w * (px - mx) ** 2).sum()
            vy = (w * (py - my) ** 2).sum()
            cov = (w * (px - mx) * (py - my)).sum()
            values.append(
                ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
            )
    assert ssim(a, b) == pytest.approx(np.mean(values), abs=1e-9)
