"""Which words reach the noisiest step: a text-to-video model's mean clip per prompt against
the world's.

At the last training timestep of a zero-terminal-SNR schedule the noisy latent is pure noise,
so the model's x0 estimate there is its estimate of the mean clip for the prompt,
E[x0 | prompt] (for v-prediction, x0 = -v). That step lays out where objects are and which
way they go. For two prompts that differ in one attribute, ‖mean(A) - mean(B)‖ in latent
space says how far the model moves its estimate for that attribute; the same distance
between the means of rendered clips, encoded with the model's own VAE, says how far it
should. The share of the data's difference that the model's reproduces (its projection onto
the data's, over the data's squared length) near 1: the model's conditioning carries the
attribute where a clip's layout is decided; near 0: the attribute is left to the noise, and no
sampler setting brings it back. The ratio of the two lengths alone can mislead: a difference
of the right length may point elsewhere. It takes seconds, so a training run can be checked
long before an eval can tell.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from vidsynth.errors import InvalidParameter
from vidsynth.models.parameterization import alpha_sigma, to_x0
from vidsynth.models.vae import encode_video
from vidsynth.sampling.noise import seeded_noise
from vidsynth.world.parse import parse_caption
from vidsynth.world.renderer import render
from vidsynth.world.sampling import place_target

# Pairs of canonical captions that differ in one attribute; the rest is held fixed.
CONTRASTS: dict[str, tuple[str, str]] = {
    "colour": (
        "a red circle moving right on a white background",
        "a blue circle moving right on a white background",
    ),
    "shape": (
        "a green circle standing still on a white background",
        "a green square standing still on a white background",
    ),
    "left/right": (
        "a red circle moving left on a white background",
        "a red circle moving right on a white background",
    ),
    "up/down": (
        "a yellow square moving up on a white background",
        "a yellow square moving down on a white background",
    ),
    "growing/shrinking": (
        "a purple circle growing on a white background",
        "a purple circle shrinking on a white background",
    ),
}


@dataclass
class Contrast:
    """One attribute: how far the model's mean clip moves between its two prompts, and how far
    the data's does."""

    name: str
    prompts: tuple[str, str]
    model: float  # ‖Δ‖ of the model's means
    data: float  # ‖Δ‖ of the data's means
    share: float  # <Δmodel, Δdata> / ‖Δdata‖²

    @property
    def ratio(self) -> float:
        return self.model / self.data if self.data > 0 else float("nan")


def data_mean(
    vae: Any, caption: str, *, frames: int, size: int, fps: float, clips: int
) -> torch.Tensor:
    """Mean VAE latent (C, F, h, w) of `clips` renders of `caption` at random start positions
    (seeded by the count, so every model is compared with the same clips)."""
    target = parse_caption(caption)
    rng = np.random.default_rng(clips)
    videos = []
    for _ in range(clips):
        pixels = render(place_target(rng, target), size, frames, fps)  # (F, H, W, 3) uint8
        videos.append(torch.from_numpy(pixels).permute(3, 0, 1, 2).float() / 127.5 - 1.0)
    means = [
        encode_video(vae, torch.stack(videos[i : i + 8])).float().sum(0) for i in range(0, clips, 8)
    ]
    return torch.stack(means).sum(0) / clips


@torch.no_grad()
def model_mean(pipe: Any, caption: str, *, frames: int, size: int, seeds: int) -> torch.Tensor:
    """The model's x0 estimate (C, F, h, w) at its last training timestep, averaged over
    `seeds` draws of the noise (at zero terminal SNR it does not depend on them)."""
    unet, scheduler = pipe.unet, pipe.scheduler()
    t = scheduler.config.num_train_timesteps - 1
    alpha, sigma = alpha_sigma(scheduler.alphas_cumprod, t)
    prediction = unet.config.prediction_type
    if prediction == "epsilon" and alpha.item() == 0.0:
        # x0 = (x - sigma * eps) / alpha: a noise predictor says nothing about x0 at zero SNR
        raise InvalidParameter("an epsilon-prediction model has no x0 estimate at zero SNR")
    side = size // pipe.vae_scale
    shape = (seeds, pipe.latent_channels, frames, side, side)
    noise = seeded_noise(shape, list(range(seeds)), device=pipe.device, dtype=unet.dtype)
    context = pipe.encode_prompts([caption] * seeds)
    timestep = torch.full((seeds,), t, device=pipe.device)
    out = unet(noise, timestep, context).float()
    x0 = to_x0(out, noise.float(), alpha, sigma, prediction)
    return x0.mean(0).cpu()


@dataclass
class MeanProbeReport:
    """The contrasts of one model, printable like the other eval reports."""

    contrasts: list[Contrast]
    settings: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        head = f"{'attribute':<18} {'model':>8} {'data':>8} {'ratio':>6} {'share':>6}"
        rows = [head, "-" * len(head)]
        for c in self.contrasts:
            rows.append(
                f"{c.name:<18} {c.model:>8.2f} {c.data:>8.2f} {c.ratio:>6.2f} {c.share:>6.2f}"
            )
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        contrasts = {c.name: {**asdict(c), "ratio": c.ratio} for c in self.contrasts}
        return {"contrasts": contrasts, "settings": self.settings}


def probe(
    pipe: Any,
    contrasts: dict[str, tuple[str, str]] | None = None,
    *,
    clips: int = 48,
    seeds: int = 4,
) -> MeanProbeReport:
    """Every contrast of `contrasts` (default: CONTRASTS) at the model's default clip size."""
    if clips < 1 or seeds < 1:
        raise InvalidParameter(f"the probe needs clips and seeds >= 1, got {clips} and {seeds}")
    frames, size, fps = pipe.defaults.num_frames, pipe.defaults.height, pipe.defaults.fps
    means: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # prompts recur across contrasts

    def both(prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        if prompt not in means:
            means[prompt] = (
                model_mean(pipe, prompt, frames=frames, size=size, seeds=seeds),
                data_mean(pipe.vae, prompt, frames=frames, size=size, fps=fps, clips=clips),
            )
        return means[prompt]

    results = []
    for name, (a, b) in (contrasts or CONTRASTS).items():
        model, data = zip(both(a), both(b), strict=True)
        d_model, d_data = model[0] - model[1], data[0] - data[1]
        norm = d_data.square().sum().item()
        share = (d_model * d_data).sum().item() / norm if norm > 0 else float("nan")
        results.append(Contrast(name, (a, b), d_model.norm().item(), d_data.norm().item(), share))
    settings = {"clips": clips, "seeds": seeds, "num_frames": frames, "size": size}
    return MeanProbeReport(results, settings)
