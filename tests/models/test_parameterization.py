"""Round trips between eps / x0 / v predictions, and agreement with diffusers' v definition."""

from __future__ import annotations

import itertools

import pytest
import torch

from vidsynth.models import parameterization as P


def _problem(vp: bool = True, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(3, 4, 2, 5, 6, generator=gen, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    alpha = torch.rand(3, generator=gen, dtype=torch.float64) * 0.9 + 0.05
    sigma = (1 - alpha**2).sqrt() if vp else torch.rand(3, generator=gen, dtype=torch.float64) * 5
    x_t = alpha.view(-1, 1, 1, 1, 1) * x0 + sigma.view(-1, 1, 1, 1, 1) * eps
    return x0, eps, alpha, sigma, x_t


@pytest.mark.parametrize("vp", [True, False], ids=["variance-preserving", "general"])
def test_every_pair_recovers_the_truth(vp: bool) -> None:
    x0, eps, alpha, sigma, x_t = _problem(vp)
    truth = {
        "epsilon": eps,
        "sample": x0,
        "v_prediction": P.v_from_eps_x0(eps, x0, alpha, sigma),
    }
    for source, target in itertools.product(P.PARAMETERIZATIONS, repeat=2):
        got = P.convert(truth[source], x_t, alpha, sigma, source=source, target=target)
        torch.testing.assert_close(got, truth[target], rtol=1e-9, atol=1e-9)


def test_round_trips_and_shorthands() -> None:
    x0, eps, alpha, sigma, x_t = _problem()
    v = P.v_from_eps(x_t, eps, alpha, sigma)
    torch.testing.assert_close(P.eps_from_v(x_t, v, alpha, sigma), eps)
    torch.testing.assert_close(P.x0_from_v(x_t, v, alpha, sigma), x0)
    torch.testing.assert_close(P.v_from_x0(x_t, x0, alpha, sigma), v)
    torch.testing.assert_close(P.x0_from_eps(x_t, eps, alpha, sigma), x0)
    torch.testing.assert_close(P.eps_from_x0(x_t, x0, alpha, sigma), eps)
    torch.testing.assert_close(P.to_x0(v, x_t, alpha, sigma, "v_prediction"), x0)
    torch.testing.assert_close(P.to_eps(x0, x_t, alpha, sigma, "sample"), eps)


def test_scalar_coefficients() -> None:
    x0 = torch.randn(2, 3)
    eps = torch.randn(2, 3)
    alpha, sigma = 0.6, 0.8
    x_t = alpha * x0 + sigma * eps
    v = P.training_target(x0, eps, alpha, sigma, "v_prediction")
    torch.testing.assert_close(P.x0_from_v(x_t, v, alpha, sigma), x0)
    assert P.training_target(x0, eps, alpha, sigma, "epsilon") is eps
    assert P.training_target(x0, eps, alpha, sigma, "sample") is x0


def test_matches_diffusers_velocity_and_alpha_sigma() -> None:
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear")
    x0 = torch.randn(2, 4, 3, 4, 4)
    eps = torch.randn_like(x0)
    t = torch.tensor([10, 900])
    alpha, sigma = P.alpha_sigma(sched.alphas_cumprod, t)
    assert alpha.dtype == torch.float32
    torch.testing.assert_close(
        P.v_from_eps_x0(eps, x0, alpha, sigma), sched.get_velocity(x0, eps, t)
    )
    x_t = sched.add_noise(x0, eps, t)
    torch.testing.assert_close(P.x0_from_eps(x_t, eps, alpha, sigma), x0, atol=2e-4, rtol=1e-4)


def test_unknown_names_are_rejected() -> None:
    x = torch.zeros(1)
    with pytest.raises(ValueError, match="unknown parameterisation"):
        P.convert(x, x, 1.0, 0.0, source="flow", target="epsilon")
    with pytest.raises(ValueError, match="unknown parameterisation"):
        P.training_target(x, x, 1.0, 0.0, "x0")
