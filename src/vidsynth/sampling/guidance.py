"""Guidance: classifier-free (Ho & Salimans 2022) and of the denoised estimate by a
differentiable log-likelihood (classifier guidance on x0)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from vidsynth.models.parameterization import alpha_sigma, convert

# x0 (B, ...) -> (B,) how likely each denoised sample is to show what was asked; differentiable
LogLikelihood = Callable[[torch.Tensor], torch.Tensor]


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


def timestep_index(scheduler: SchedulerMixin, t: torch.Tensor | float) -> int:
    """The entry of the scheduler's ``alphas_cumprod`` for timestep `t`: fractional timesteps
    (sigma-space solvers) rounded, out-of-range ones clamped to the schedule."""
    return min(max(round(float(t)), 0), len(scheduler.alphas_cumprod) - 1)


@dataclass(frozen=True)
class DenoisedGuidance:
    """Moves the denoiser's clean estimate x0 up the gradient of `log_likelihood`, at the
    noise levels in `interval` (lo, hi].

    The gradient is taken at x0, not through the denoiser, as manifold-preserving guided
    diffusion does (He et al. 2024): one pass of the likelihood's own network and no
    backward pass through the UNet. Each sample moves `step` in units of its gradient's
    root mean square, so the push has one size whatever the likelihood's scale and however
    sure it already is; a sample whose gradient is zero (nothing to read) is left alone.
    Each sample's move depends on that sample alone, if `log_likelihood`'s does.
    """

    log_likelihood: LogLikelihood
    step: float
    interval: tuple[float, float]

    def shift(self, x0: torch.Tensor) -> torch.Tensor:
        """x0 moved one step up the log-likelihood."""
        # sampling runs in inference mode; the gradient needs a tensor made outside it
        with torch.inference_mode(False), torch.enable_grad():
            x = x0.detach().clone().requires_grad_(True)
            total = self.log_likelihood(x).sum()
            if not total.requires_grad:  # nothing on any sample depends on x0
                return x0
            (grad,) = torch.autograd.grad(total, x)
        rms = grad.flatten(1).pow(2).mean(dim=1).sqrt()
        scale = torch.where(rms > 0, self.step / rms.clamp_min(1e-30), torch.zeros_like(rms))
        return x0 + scale.view(-1, *[1] * (x0.ndim - 1)).to(x0) * grad.to(x0)

    def apply(
        self,
        prediction: torch.Tensor,
        model_input: torch.Tensor,
        scheduler: SchedulerMixin,
        t: torch.Tensor,
    ) -> torch.Tensor:
        """A model's `prediction` (in the scheduler's parameterisation) at its scaled input
        `model_input`, timestep `t`, changed so that its clean estimate is `shift`'s. A noise
        prediction at pure noise (alpha 0) has no clean estimate and is left as it is."""
        kind = scheduler.config.prediction_type
        alpha, sigma = alpha_sigma(scheduler.alphas_cumprod, timestep_index(scheduler, t))
        alpha, sigma = float(alpha), float(sigma)
        if alpha == 0 and kind == "epsilon":
            return prediction
        x0 = convert(prediction, model_input, alpha, sigma, source=kind, target="sample")
        moved = self.shift(x0)
        return convert(moved, model_input, alpha, sigma, source="sample", target=kind)
