import math

import pytest
import torch

from vidsynth.errors import InvalidParameter
from vidsynth.models.parameterization import alpha_sigma, convert
from vidsynth.pipelines.params import check_guidance_interval
from vidsynth.sampling.denoise import denoise, timestep_sigma
from vidsynth.sampling.guidance import DenoisedGuidance, in_interval
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
    out = _denoise_from(
        model,
        x,
        sched,
        uncond_context=-torch.ones(1, 1, 1),
        guidance_scale=scale,
        guidance_interval=interval,
    )
    return out, batches, sigmas


def _denoise_from(model, x, sched, **kwargs):
    """`denoise` over `sched`'s timesteps (already set) from unit noise `x`, context ones."""
    return denoise(
        model,
        x * sched.init_noise_sigma,
        sched,
        num_inference_steps=len(sched.timesteps),
        timesteps=sched.timesteps,
        context=torch.ones(1, 1, 1),
        **kwargs,
    )


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


# -- guidance of the denoised estimate -------------------------------------------------------


def _pull_toward(target: torch.Tensor):
    """A log-likelihood whose gradient points each sample at `target`."""
    return lambda x0: -((x0 - target) ** 2).flatten(1).sum(dim=1)


def test_a_denoised_guidance_step_moves_each_sample_up_its_gradient_by_the_step() -> None:
    x0 = torch.randn(3, 2, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    target = torch.zeros_like(x0)
    target[2] = x0[2]  # already there: a zero gradient, left alone
    guide = DenoisedGuidance(_pull_toward(target), step=0.25, interval=(0.0, math.inf))
    moved = guide.shift(x0)
    delta = moved - x0
    for b in range(2):  # along the gradient -2 (x0 - target), of root mean square `step`
        cos = torch.nn.functional.cosine_similarity(delta[b].flatten(), -x0[b].flatten(), dim=0)
        assert cos > 0.9999
        assert delta[b].pow(2).mean().sqrt() == pytest.approx(0.25, rel=1e-5)
    assert torch.equal(moved[2], x0[2])
    # a sample's move depends on that sample alone
    alone = DenoisedGuidance(_pull_toward(target[1:2]), step=0.25, interval=(0.0, math.inf))
    torch.testing.assert_close(alone.shift(x0[1:2]), moved[1:2])


def test_a_likelihood_that_does_not_depend_on_x0_leaves_it_alone() -> None:
    x0 = torch.randn(2, 2, 1, 4, 4)
    guide = DenoisedGuidance(lambda x: torch.zeros(len(x)), step=1.0, interval=(0.0, math.inf))
    assert torch.equal(guide.shift(x0), x0)


@pytest.mark.parametrize("kind", ["v_prediction", "epsilon"])
def test_applied_guidance_changes_the_prediction_to_the_moved_clean_estimate(kind) -> None:
    sched = make_scheduler("dpm++2m", {**MODELSCOPE_SCHEDULER, "prediction_type": kind})
    sched.set_timesteps(10)
    t = sched.timesteps[4]
    x_t, out = torch.randn(2, 2, 1, 4, 4), torch.randn(2, 2, 1, 4, 4)
    guide = DenoisedGuidance(_pull_toward(torch.ones_like(x_t)), step=0.5, interval=(0, math.inf))
    a, s = (float(v) for v in alpha_sigma(sched.alphas_cumprod, int(t)))
    x0 = convert(out, x_t, a, s, source=kind, target="sample")
    guided = guide.apply(out, x_t, sched, t)
    torch.testing.assert_close(
        convert(guided, x_t, a, s, source=kind, target="sample"), guide.shift(x0)
    )


def test_a_noise_prediction_at_pure_noise_is_left_as_it_is() -> None:
    config = {**MODELSCOPE_SCHEDULER, "rescale_betas_zero_snr": True}
    sched = make_scheduler("ddim", config)
    guide = DenoisedGuidance(_pull_toward(torch.zeros(1, 2, 1, 4, 4)), 1.0, (0.0, math.inf))
    out, x_t = torch.randn(1, 2, 1, 4, 4), torch.randn(1, 2, 1, 4, 4)
    assert torch.equal(guide.apply(out, x_t, sched, torch.tensor(999)), out)
    moved = guide.apply(out, x_t, sched, torch.tensor(500))
    assert torch.isfinite(moved).all() and not torch.equal(moved, out)


def test_denoised_guidance_pulls_the_sample_only_inside_its_interval() -> None:
    """A model that predicts v for a clean sample of zeros, guided toward ones: the result
    ends nearer ones; guided at noise levels the schedule never reaches, it is unchanged."""
    sched = make_scheduler("dpm++2m", MODELSCOPE_SCHEDULER)
    steps = 10
    x = torch.randn(1, 2, 1, 4, 4, generator=torch.Generator().manual_seed(0))

    def model(x_in, t, context):
        a, s = (float(v) for v in alpha_sigma(sched.alphas_cumprod, int(t)))
        return convert(torch.zeros_like(x_in), x_in, a, s, source="sample", target="epsilon")

    def run(interval):
        sched.set_timesteps(steps)
        guide = None
        if interval is not None:
            guide = DenoisedGuidance(_pull_toward(torch.ones_like(x)), 0.5, interval=interval)
        return _denoise_from(model, x, sched, denoised_guidance=guide)

    plain = run((1e6, 1e7))
    torch.testing.assert_close(plain, run(None))
    assert plain.abs().max() < 0.05  # the model's zeros
    pulled = run((0.3, math.inf))
    assert pulled.mean() > 0.4  # each guided step's clean estimate is moved 0.5 toward ones
