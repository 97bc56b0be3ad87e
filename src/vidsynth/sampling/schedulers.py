"""Noise schedules and solvers, chosen by name: thin wrappers over diffusers' schedulers."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from vidsynth.errors import InvalidParameter

# name -> (class, overrides applied on top of the checkpoint's scheduler config)
SCHEDULERS: dict[str, tuple[type[SchedulerMixin], dict[str, Any]]] = {
    "ddim": (DDIMScheduler, {}),
    # DPM-Solver++ (2M): good guided samples in 15-20 steps (Lu et al. 2022).
    "dpm++2m": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2},
    ),
    "euler": (EulerDiscreteScheduler, {}),
    "unipc": (UniPCMultistepScheduler, {}),
}
ALIASES = {
    "dpm": "dpm++2m",
    "dpmsolver++": "dpm++2m",
    "dpm-solver++": "dpm++2m",
    "dpmpp_2m": "dpm++2m",
    "uni_pc": "unipc",
}

# Keys of a scheduler config that describe the trained model (its noise schedule and output
# parameterisation) rather than the solver; they carry over when switching solvers.
_MODEL_KEYS = (
    "num_train_timesteps",
    "beta_start",
    "beta_end",
    "beta_schedule",
    "trained_betas",
    "prediction_type",
    "timestep_spacing",
    "steps_offset",
    "rescale_betas_zero_snr",
    "clip_sample",
    "set_alpha_to_one",
)


def scheduler_names() -> list[str]:
    """The names `make_scheduler` accepts."""
    return sorted(SCHEDULERS)


def make_scheduler(
    name: str | None,
    base_config: dict[str, Any],
    *,
    prediction_type: str | None = None,
) -> SchedulerMixin:
    """Build scheduler `name` for a model whose training schedule is `base_config`.

    `name=None` keeps the checkpoint's own scheduler class. `prediction_type` overrides the
    checkpoint's (a model trained with v-prediction says so in its UNet config).
    """
    config = dict(base_config)
    if prediction_type is not None:
        config["prediction_type"] = prediction_type
    if name is None:
        class_name = config.get("_class_name", "DDIMScheduler")
        cls = next((c for c, _ in SCHEDULERS.values() if c.__name__ == class_name), None)
        if cls is None:
            import diffusers

            cls = getattr(diffusers, class_name, None)
            if cls is None:
                raise ValueError(f"unknown scheduler class {class_name!r} in scheduler_config")
        return cls.from_config(config)
    key = ALIASES.get(name.lower(), name.lower())
    if key not in SCHEDULERS:
        raise InvalidParameter(
            f"unknown scheduler {name!r}; choose one of: {', '.join(scheduler_names())}"
        )
    cls, overrides = SCHEDULERS[key]
    kept = {k: v for k, v in config.items() if k in _MODEL_KEYS}
    return cls.from_config({**kept, **overrides})


def strength_timesteps(
    scheduler: SchedulerMixin, num_inference_steps: int, strength: float
) -> torch.Tensor:
    """The last `int(num_inference_steps * strength)` steps of the schedule (SDEdit).

    As diffusers' img2img/video-to-video `get_timesteps`: the scheduler's timesteps must be set;
    its begin index is set too, so multistep solvers and `add_noise` start at the right sigma.
    """
    init = min(int(num_inference_steps * strength), num_inference_steps)
    if init < 1:
        raise InvalidParameter(
            f"strength={strength} of {num_inference_steps} steps runs no denoising step; "
            f"raise strength to at least {1 / num_inference_steps:.3g} or use more steps"
        )
    start = (num_inference_steps - init) * scheduler.order
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start)
    return scheduler.timesteps[start:]
