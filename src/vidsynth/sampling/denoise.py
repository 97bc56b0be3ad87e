"""The sampling loop: a plain function over a model callable and a diffusers scheduler."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from vidsynth.sampling.guidance import (
    DenoisedGuidance,
    cfg_combine,
    in_interval,
    timestep_index,
    uses_guidance,
)

# model(x, t, context) -> prediction, all shaped like x = (B, C, F, H, W)
ModelFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
# callback(step_index, num_steps, timestep); it may raise to stop sampling (cancellation)
StepCallback = Callable[[int, int, torch.Tensor], None]


def denoise(
    model: ModelFn,
    latents: torch.Tensor,
    scheduler: SchedulerMixin,
    *,
    num_inference_steps: int,
    context: torch.Tensor,
    uncond_context: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
    timesteps: torch.Tensor | None = None,
    callback: StepCallback | None = None,
    generator: torch.Generator | None = None,
    guidance_interval: tuple[float, float] = (0.0, math.inf),
    denoised_guidance: DenoisedGuidance | None = None,
) -> torch.Tensor:
    """Run the reverse process from `latents` (already scaled by the scheduler's init sigma).

    With guidance, unconditional and conditional passes run as one doubled batch
    [uncond, cond], as ModelScope does, at the steps whose noise level sigma lies in
    `guidance_interval` (lo, hi]; the other steps run the conditional pass alone.
    `timesteps` lets a caller start part-way (video-to-video); by default the scheduler's
    full schedule is used. `denoised_guidance` moves each step's clean estimate up its
    log-likelihood at the noise levels of its own interval, after classifier-free guidance.
    """
    guided = uses_guidance(guidance_scale) and uncond_context is not None
    both = torch.cat([uncond_context, context]) if guided else context
    if timesteps is None:
        scheduler.set_timesteps(num_inference_steps, device=latents.device)
        timesteps = scheduler.timesteps
    step_kwargs = {}
    if generator is not None and "generator" in inspect.signature(scheduler.step).parameters:
        step_kwargs["generator"] = generator

    total = len(timesteps)
    for i, t in enumerate(timesteps):
        sigma = timestep_sigma(scheduler, t)
        x_in = scheduler.scale_model_input(latents, t)
        if guided and in_interval(sigma, guidance_interval):
            uncond_out, cond_out = model(torch.cat([x_in, x_in]), t, both).chunk(2)
            out = cfg_combine(uncond_out, cond_out, guidance_scale)
        else:
            out = model(x_in, t, context)
        if denoised_guidance is not None and in_interval(sigma, denoised_guidance.interval):
            out = denoised_guidance.apply(out, x_in, scheduler, t)
        latents = scheduler.step(out, t, latents, **step_kwargs).prev_sample
        if callback is not None:
            callback(i, total, t)
    return latents


def timestep_sigma(scheduler: SchedulerMixin, t: torch.Tensor | float) -> float:
    """The noise level sigma = sqrt((1 - alpha_bar) / alpha_bar) of a discrete timestep `t`
    (Karras et al. 2022's sigma for a DDPM-family schedule), read off the scheduler's own
    alphas_cumprod; fractional timesteps are rounded, and pure noise is sigma = inf."""
    alphas = scheduler.alphas_cumprod
    alpha = float(alphas[timestep_index(scheduler, t)])
    # a zero-terminal-SNR schedule's last timestep is pure noise: alpha_bar = 0
    return math.sqrt((1 - alpha) / alpha) if alpha > 0 else math.inf
