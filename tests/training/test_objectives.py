"""The training objectives: Min-SNR-γ weighting and the timestep draw of the diffusion loss."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler

from vidsynth.errors import InvalidParameter
from vidsynth.training.config import parse_config
from vidsynth.training.objectives import min_snr_weight, sample_timesteps


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


def test_timestep_shift_draws_noisier_timesteps_and_is_uniform_at_one() -> None:
    def draw(shift: float) -> torch.Tensor:
        return sample_timesteps(1000, 200_000, shift, torch.Generator().manual_seed(0))

    plain, shifted = draw(1.0), draw(8.0)
    for t in (plain, shifted):
        assert t.dtype == torch.long and t.min() >= 0 and t.max() <= 999
    # shift 1 is uniform; shift s puts P(t ≥ 0.8 T) at 1 − u* with u* = 0.8 / (s − 0.8 (s − 1))
    assert abs((plain >= 800).float().mean() - 0.2) < 0.01
    assert abs((shifted >= 800).float().mean() - (1 - 0.8 / (8 - 0.8 * 7))) < 0.01
    assert abs(plain.float().mean() - 499.5) < 3 and shifted.float().mean() > 700


def test_timestep_shift_must_be_positive(tmp_path) -> None:
    for bad in (0, -1.0, "8", True):
        config = {"task": "vae", "output_dir": str(tmp_path), "train": {"timestep_shift": bad}}
        with pytest.raises(InvalidParameter, match="timestep_shift must be a number > 0"):
            parse_config(config)
