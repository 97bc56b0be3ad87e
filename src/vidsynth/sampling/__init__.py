"""Sampling: seeded noise, schedulers by name, guidance and the denoising loop."""

from vidsynth.sampling.denoise import denoise
from vidsynth.sampling.guidance import cfg_combine
from vidsynth.sampling.noise import resolve_seed, seeded_noise
from vidsynth.sampling.schedulers import make_scheduler, scheduler_names

__all__ = [
    "cfg_combine",
    "denoise",
    "make_scheduler",
    "resolve_seed",
    "scheduler_names",
    "seeded_noise",
]
