"""Conversions between what a denoiser can predict: noise (eps), clean sample (x0) or velocity (v).

With a noisy sample ``x_t = alpha_t * x0 + sigma_t * eps`` and ``v = alpha_t * eps - sigma_t * x0``
(Salimans & Ho, 2022), any one prediction plus ``x_t`` determines the other two. Samplers and
losses can therefore be written once (say, in x0) and serve models trained either way.

The names follow diffusers' ``prediction_type`` values: ``"epsilon"``, ``"v_prediction"`` and
``"sample"`` (x0). ``alpha``/``sigma`` may be floats, 0-d tensors or per-sample (B,) tensors; the
latter are broadcast over the remaining dimensions. The v formulas divide by
``alpha**2 + sigma**2`` so they also hold for non variance-preserving schedules (for VP it is 1).
"""

from __future__ import annotations

import torch

PARAMETERIZATIONS = ("epsilon", "v_prediction", "sample")

Scalar = float | torch.Tensor


def _bcast(value: Scalar, like: torch.Tensor) -> torch.Tensor | float:
    """Per-sample (B,) coefficients -> (B, 1, ..., 1) so they broadcast against ``like``.

    Tensor coefficients take ``like``'s dtype so results do not silently become float64.
    """
    if isinstance(value, torch.Tensor):
        value = value.to(like.device, like.dtype)
        if value.ndim == 1 and like.ndim > 1:
            return value.reshape(-1, *([1] * (like.ndim - 1)))
    return value


def alpha_sigma(
    alphas_cumprod: torch.Tensor, t: torch.Tensor | int, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sqrt(abar_t), sqrt(1 - abar_t))`` for a discrete (DDPM-style) schedule at timesteps t.

    Computed in float64 (``1 - abar`` loses digits near t=0 otherwise), returned as ``dtype``.
    """
    abar = alphas_cumprod.to(torch.float64)[torch.as_tensor(t, device=alphas_cumprod.device)]
    return abar.sqrt().to(dtype), (1.0 - abar).sqrt().to(dtype)


def x0_from_eps(x_t: torch.Tensor, eps: torch.Tensor, alpha: Scalar, sigma: Scalar) -> torch.Tensor:
    """Clean sample from a noise prediction: ``(x_t - sigma * eps) / alpha``."""
    return (x_t - _bcast(sigma, x_t) * eps) / _bcast(alpha, x_t)


def eps_from_x0(x_t: torch.Tensor, x0: torch.Tensor, alpha: Scalar, sigma: Scalar) -> torch.Tensor:
    """Noise from a clean-sample prediction: ``(x_t - alpha * x0) / sigma``."""
    return (x_t - _bcast(alpha, x_t) * x0) / _bcast(sigma, x_t)


def v_from_eps_x0(
    eps: torch.Tensor, x0: torch.Tensor, alpha: Scalar, sigma: Scalar
) -> torch.Tensor:
    """Velocity target ``alpha * eps - sigma * x0`` (what a v-prediction model learns)."""
    return _bcast(alpha, eps) * eps - _bcast(sigma, eps) * x0


def x0_from_v(x_t: torch.Tensor, v: torch.Tensor, alpha: Scalar, sigma: Scalar) -> torch.Tensor:
    """Clean sample from a velocity prediction: ``(alpha*x_t - sigma*v) / (alpha² + sigma²)``."""
    a, s = _bcast(alpha, x_t), _bcast(sigma, x_t)
    return (a * x_t - s * v) / (a * a + s * s)


def eps_from_v(x_t: torch.Tensor, v: torch.Tensor, alpha: Scalar, sigma: Scalar) -> torch.Tensor:
    """Noise from a velocity prediction: ``(sigma * x_t + alpha * v) / (alpha² + sigma²)``."""
    a, s = _bcast(alpha, x_t), _bcast(sigma, x_t)
    return (s * x_t + a * v) / (a * a + s * s)


def v_from_eps(x_t: torch.Tensor, eps: torch.Tensor, alpha: Scalar, sigma: Scalar) -> torch.Tensor:
    """Velocity from a noise prediction."""
    return v_from_eps_x0(eps, x0_from_eps(x_t, eps, alpha, sigma), alpha, sigma)


def v_from_x0(x_t: torch.Tensor, x0: torch.Tensor, alpha: Scalar, sigma: Scalar) -> torch.Tensor:
    """Velocity from a clean-sample prediction."""
    return v_from_eps_x0(eps_from_x0(x_t, x0, alpha, sigma), x0, alpha, sigma)


def convert(
    prediction: torch.Tensor,
    x_t: torch.Tensor,
    alpha: Scalar,
    sigma: Scalar,
    *,
    source: str,
    target: str,
) -> torch.Tensor:
    """Convert a model output from one parameterisation to another (names: ``PARAMETERIZATIONS``).

    Example: ``convert(out, x_t, a, s, source=unet.config.prediction_type, target="sample")``.
    """
    for name in (source, target):
        if name not in PARAMETERIZATIONS:
            raise ValueError(
                f"unknown parameterisation {name!r}; expected one of {PARAMETERIZATIONS}"
            )
    if source == target:
        return prediction
    table = {
        ("epsilon", "sample"): x0_from_eps,
        ("epsilon", "v_prediction"): v_from_eps,
        ("sample", "epsilon"): eps_from_x0,
        ("sample", "v_prediction"): v_from_x0,
        ("v_prediction", "sample"): x0_from_v,
        ("v_prediction", "epsilon"): eps_from_v,
    }
    return table[(source, target)](x_t, prediction, alpha, sigma)


def to_x0(
    prediction: torch.Tensor, x_t: torch.Tensor, alpha: Scalar, sigma: Scalar, source: str
) -> torch.Tensor:
    """Shorthand for ``convert(..., target="sample")``."""
    return convert(prediction, x_t, alpha, sigma, source=source, target="sample")


def to_eps(
    prediction: torch.Tensor, x_t: torch.Tensor, alpha: Scalar, sigma: Scalar, source: str
) -> torch.Tensor:
    """Shorthand for ``convert(..., target="epsilon")``."""
    return convert(prediction, x_t, alpha, sigma, source=source, target="epsilon")


def training_target(
    x0: torch.Tensor, eps: torch.Tensor, alpha: Scalar, sigma: Scalar, prediction_type: str
) -> torch.Tensor:
    """The output a ``prediction_type`` model should give for ``x_t = alpha*x0 + sigma*eps``."""
    if prediction_type == "epsilon":
        return eps
    if prediction_type == "sample":
        return x0
    if prediction_type == "v_prediction":
        return v_from_eps_x0(eps, x0, alpha, sigma)
    raise ValueError(
        f"unknown parameterisation {prediction_type!r}; expected one of {PARAMETERIZATIONS}"
    )
