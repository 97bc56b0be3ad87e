import math

import pytest
import torch

from vidsynth.errors import InvalidParameter
from vidsynth.pipelines.params import check_guidance_interval
from vidsynth.sampling.denoise import denoise, timestep_sigma
from vidsynth.sampling.guidance import in_interval
from vidsynth.sampling.schedulers import make_scheduler, scheduler_names
from vidsynth.testing import MODELSCOPE_SCHEDULER


def _run(interval, scale=5.0, steps=10, name="dpm++2m"):
    """Denoise with a model that records each call's batch and pulls the conditional half
    one way and the unconditional half the other, so guidance shows in the result."""
    sched = make_scheduler(name, MODELSCOPE_SCHEDULER)
    sched.set_timesteps(steps)
    batches, sigmas = [], []

    def model(x, t, context):
        batches.append(x.shape[0])
        sigmas.append(timestep_sigma(sched, t))
        return 0.1 * x + context.view(-1, 1, 1, 1, 1)

    x = torch.randn(1, 2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    out = denoise(
        model,
        x * sched.init_noise_sigma,
        sched,
        num_inference_steps=steps,
        timesteps=sched.timesteps,
        context=torch.ones(1, 1, 1),
        uncond_context=-torch.ones(1, 1, 1),
        guidance_scale=scale,
        guidance_interval=interval,
    )
    return out, batches, sigmas


def test_timestep_sigma_is_the_schedules_noise_level():
    sched = make_scheduler("ddim", MODELSCOPE_SCHEDULER)
    a = float(sched.alphas_cumprod[500])
    assert timestep_sigma(sched, torch.tensor(500)) == pytest.approx(math.sqrt((1 - a) / a))
    # fractional and out-of-range timesteps (sigma-space solvers) land on the nearest one
    assert timestep_sigma(sched, 499.7) == timestep_sigma(sched, 500)
    assert timestep_sigma(sched, 5000) == timestep_sigma(sched, 999)
    # a zero-terminal-SNR schedule ends in pure noise: infinite sigma, guided by (lo, inf]
    ztsnr = make_scheduler("ddim", {**MODELSCOPE_SCHEDULER, "rescale_betas_zero_snr": True})
    assert timestep_sigma(ztsnr, 999) == math.inf and in_interval(math.inf, (0.7, math.inf))


@pytest.mark.parametrize("name", scheduler_names())
def test_guidance_runs_only_inside_the_interval(name):
    _, batches, sigmas = _run((0.7, math.inf), name=name)
    assert any(s <= 0.7 for s in sigmas) and any(s > 0.7 for s in sigmas)  # both kinds ran
    # doubled batch [uncond, cond] above 0.7, the conditional pass alone at or below
    assert batches == [2 if s > 0.7 else 1 for s in sigmas]


def test_the_full_interval_is_guidance_at_every_step():
    full, batches, _ = _run((0.0, math.inf))
    assert set(batches) == {2}
    never, batches, _ = _run((1e6, math.inf))
    assert set(batches) == {1}
    unguided, _, _ = _run((0.0, math.inf), scale=1.0)
    assert torch.equal(never, unguided)  # outside the interval: exactly no guidance
    assert not torch.allclose(full, unguided)


def test_interval_bounds():
    assert in_interval(1.0, (0.5, 1.0)) and not in_interval(0.5, (0.5, 1.0))
    assert in_interval(1e9, (0.0, math.inf))


@pytest.mark.parametrize(
    ("given", "expected"),
    [([0.7], (0.7, math.inf)), ((0.7, None), (0.7, math.inf)), ([0, 5], (0.0, 5.0))],
)
def test_interval_forms(given, expected):
    assert check_guidance_interval(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("0.7", "must be \\[lo\\] or \\[lo, hi\\]"),
        ([], "must be \\[lo\\] or \\[lo, hi\\]"),
        ([1, 2, 3], "must be \\[lo\\] or \\[lo, hi\\]"),
        ([-1], "lo must be between 0"),
        ([float("nan")], "lo must be a finite number"),
        ([1, 0.5], "hi must be a number above lo=1"),
        ([1, "x"], "hi must be a number above"),
    ],
)
def test_bad_intervals_say_what_is_wrong(given, message):
    with pytest.raises(InvalidParameter, match=message):
        check_guidance_interval(given)
