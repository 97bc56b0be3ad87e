"""The training objectives: Min-SNR-γ weighting of the diffusion loss."""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler

from vidsynth.training.objectives import min_snr_weight


def _scheduler() -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", rescale_betas_zero_snr=True
    )


def test_min_snr_weight_clamps_high_snr_and_matches_the_formula() -> None:
    sched = _scheduler()
    t = torch.tensor([0, 100, 500, 900, 999])
    alphas = sched.alphas_cumprod[t].double()
    snr = alphas / (1 - alphas).clamp_min(1e-8)
    v = min_snr_weight(sched, t, 5.0, "v_prediction").double()
    eps = min_snr_weight(sched, t, 5.0, "epsilon").double()
    torch.testing.assert_close(v, snr.clamp(max=5) / (snr + 1), rtol=1e-4, atol=1e-6)
    # low-noise steps (SNR far above γ) are down-weighted; noisy ones keep weight ≈ SNR/(SNR+1)
    assert snr[0] > 100 and v[0] < 0.06
    assert snr[3] < 5 and abs(v[3] - snr[3] / (snr[3] + 1)) < 1e-6
    # zero terminal SNR: the last step carries no weight in v, and ε's weight is capped at 1
    assert v[-1] == 0
    assert (eps <= 1 + 1e-6).all() and eps[0] < 0.05
