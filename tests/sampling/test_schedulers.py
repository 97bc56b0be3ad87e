import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

from vidsynth.errors import InvalidParameter
from vidsynth.sampling.denoise import denoise
from vidsynth.sampling.schedulers import make_scheduler, scheduler_names
from vidsynth.testing import MODELSCOPE_SCHEDULER


@pytest.mark.parametrize("name", scheduler_names())
def test_every_scheduler_keeps_the_training_schedule(name):
    sched = make_scheduler(name, MODELSCOPE_SCHEDULER, prediction_type="v_prediction")
    assert sched.config.beta_schedule == "scaled_linear"
    assert sched.config.beta_end == pytest.approx(0.012)
    assert sched.config.prediction_type == "v_prediction"


def test_default_is_the_checkpoints_own_class():
    assert isinstance(make_scheduler(None, MODELSCOPE_SCHEDULER), DDIMScheduler)
    dpm = make_scheduler("dpm++2m", MODELSCOPE_SCHEDULER)
    assert isinstance(dpm, DPMSolverMultistepScheduler)
    assert dpm.config.algorithm_type == "dpmsolver++" and dpm.config.solver_order == 2


def test_unknown_name_lists_the_choices():
    with pytest.raises(InvalidParameter, match="ddim"):
        make_scheduler("plms-ish", MODELSCOPE_SCHEDULER)


@pytest.mark.parametrize("name", scheduler_names())
def test_exact_denoiser_recovers_a_point(name):
    """With the ideal denoiser of a one-point data set, every solver must land on the point."""
    sched = make_scheduler(name, MODELSCOPE_SCHEDULER)
    target = torch.full((1, 2, 3, 4, 4), 0.5)
    alphas = sched.alphas_cumprod

    def model(x, t, context):
        a = alphas[int(t)]
        return (x - a.sqrt() * target) / (1 - a).sqrt()  # eps that explains x exactly

    sched.set_timesteps(20)
    x = torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    x = x * sched.init_noise_sigma

    # The loop feeds the model scale_model_input(x): for sigma-space solvers (Euler) that is
    # x / sqrt(sigma^2 + 1), which is exactly the variance-preserving x_t the model expects.
    out = denoise(
        model,
        x,
        sched,
        num_inference_steps=20,
        timesteps=sched.timesteps,
        context=torch.zeros(1, 1, 1),
    )
    # ModelScope's schedule stops at alpha_bar = 1 - 0.00085 (set_alpha_to_one=False), so
    # about sigma = 0.03 of noise is left by design; the start was ~0.8 away.
    assert (out - target).abs().mean() < 0.04, name
