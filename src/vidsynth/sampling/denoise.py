"""The sampling loop: a plain function over a model callable and a diffusers scheduler."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from vidsynth.sampling.guidance import cfg_combine, uses_guidance

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
) -> torch.Tensor:
    """Run the reverse process from `latents` (already scaled by the scheduler's init sigma).

    With guidance, unconditional and conditional passes run as one doubled batch
    [uncond, cond], as ModelScope does. `timesteps` lets a caller start part-way
    (video-to-video); by default the scheduler's full schedule is used.
    """
    guided = uses_guidance(guidance_scale) and uncond_context is not None
    if guided:
        context = torch.cat([uncond_context, context])
    if timesteps is None:
        scheduler.set_timesteps(num_inference_steps, device=latents.device)
        timesteps = scheduler.timesteps
    step_kwargs = {}
    if generator is not None and "generator" in inspect.signature(scheduler.step).parameters:
        step_kwargs["generator"] = generator

    total = len(timesteps)
    for i, t in enumerate(timesteps):
        x_in = torch.cat([latents, latents]) if guided else latents
        x_in = scheduler.scale_model_input(x_in, t)
        out = model(x_in, t, context)
        if guided:
            uncond_out, cond_out = out.chunk(2)
            out = cfg_combine(uncond_out, cond_out, guidance_scale)
        latents = scheduler.step(out, t, latents, **step_kwargs).prev_sample
        if callback is not None:
            callback(i, total, t)
    return latents
