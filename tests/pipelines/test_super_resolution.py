"""The spatial and temporal super-resolution pipelines on tiny random models: shapes, frame
rates, seeds, the conditioning paths, and messages for bad input."""

from __future__ import annotations

import numpy as np
import pytest

import vidsynth
from vidsynth.errors import InvalidParameter
from vidsynth.pipelines.super_resolution import SpatialSRPipeline, TemporalSRPipeline


def clip(frames: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def ssr(tiny_ssr_model):
    return vidsynth.load(tiny_ssr_model, device="cpu")


@pytest.fixture(scope="module")
def tsr(tiny_tsr_model):
    return vidsynth.load(tiny_tsr_model, device="cpu")


def test_loading_picks_the_models_own_task(ssr, tsr, tiny_model, tiny_ssr_model):
    assert isinstance(ssr, SpatialSRPipeline) and ssr.factor == 4
    assert isinstance(tsr, TemporalSRPipeline) and tsr.factor == 2
    assert ssr.noise_aug_level == pytest.approx(0.1)
    with pytest.raises(InvalidParameter, match="is a text-to-video model; it cannot run spatial"):
        vidsynth.load(tiny_model, device="cpu", task="spatial-sr")
    with pytest.raises(InvalidParameter, match="is a spatial-sr model; it cannot run text-to"):
        vidsynth.load(tiny_ssr_model, device="cpu", task="text-to-video")
    t2v = vidsynth.load(tiny_model, device="cpu")
    with pytest.raises(InvalidParameter, match="is not a temporal-sr model"):
        TemporalSRPipeline.from_pipeline(t2v, factor=2)


def test_spatial_sr_contract(ssr):
    result = ssr(clip(3, 8), "a red circle", seed=4)
    assert result.frames.shape == (3, 32, 32, 3) and result.frames.dtype == np.uint8
    assert result.seed == 4 and result.fps == 8.0 and result.prompt == "a red circle"
    assert result.info["task"] == "spatial-sr" and result.info["noise_aug_level"] == 0.1
    assert ssr(clip(3, 8), fps=16, seed=4).fps == 16


def test_same_seed_same_video_whatever_the_batch(ssr, tsr):
    for pipe in (ssr, tsr):
        size = 8 if pipe is ssr else 16
        a, b = clip(2, size, 1), clip(2, size, 2)
        alone = pipe(b, "x", seed=5)
        batch = pipe.batch([a, b], ["y", "x"], seeds=[9, 5])
        assert np.abs(alone.frames.astype(int) - batch[1].frames.astype(int)).max() <= 1
        assert not np.array_equal(batch[0].frames, batch[1].frames)
        again = pipe(b, "x", seed=5)
        assert np.array_equal(alone.frames, again.frames)


def test_noise_aug_level_is_an_input(ssr):
    low = clip(2, 8)
    a = ssr(low, seed=0, noise_aug_level=0.0).frames
    b = ssr(low, seed=0, noise_aug_level=0.6).frames
    assert not np.array_equal(a, b)
    for bad in (-0.1, 1.5, float("nan"), "high"):
        with pytest.raises(InvalidParameter, match="noise_aug_level must be"):
            ssr(low, seed=0, noise_aug_level=bad)


def test_guidance_runs_the_doubled_batch(ssr, monkeypatch):
    batches = []
    real = ssr.unet.forward

    def spy(x, *args, **kwargs):
        batches.append((x.shape[0], kwargs["concat"].shape[0], kwargs["timestep_cond"].shape[0]))
        return real(x, *args, **kwargs)

    monkeypatch.setattr(ssr.unet, "forward", spy)
    ssr(clip(2, 8), "a red circle", seed=0, num_inference_steps=1)
    ssr(clip(2, 8), "a red circle", seed=0, num_inference_steps=1, guidance_scale=3.0)
    assert batches == [(1, 1, 1), (2, 2, 2)]


def test_resized_conditioning_path(tmp_path):
    """A ×2 upscaler on a ×4 VAE: the input is resized onto the latent grid."""
    from vidsynth.testing import save_tiny_sr_model

    pipe = vidsynth.load(save_tiny_sr_model(tmp_path / "m", "spatial-sr", factor=2), device="cpu")
    assert pipe(clip(2, 16), seed=0).frames.shape == (2, 32, 32, 3)
    with pytest.raises(InvalidParameter, match=r"is 15x15: x2 gives 30x30.*multiples of 2"):
        pipe(clip(2, 15), seed=0)


def test_temporal_sr_contract(tsr, tmp_path):
    low = clip(3, 16)
    result = tsr(low, "a red circle", seed=1)
    assert result.frames.shape == (6, 16, 16, 3)
    assert np.array_equal(result.frames[::2], low)  # the known frames, exactly
    assert result.fps == 16  # the model's own output rate for bare frames
    # from a file, the output rate is the input's times the factor
    from vidsynth.io.video import write_video

    path = write_video(tmp_path / "in", low, 5)  # PNG frames + fps
    assert tsr(path, seed=1).fps == 10


def test_temporal_sr_keeps_what_does_not_move(tsr):
    """Where the neighbours of a new frame agree, nothing moves there: the new frame has
    their pixels exactly, whatever the (here random) model draws elsewhere."""
    from vidsynth.world import ObjectSpec, SceneSpec, render

    scene = SceneSpec((ObjectSpec("square", "red", "large", "still"),), "gray")
    still = render(scene, 16, 3)
    out = tsr(still, seed=0).frames
    assert np.array_equal(out, np.repeat(still, 2, axis=0))
    moving = render(
        SceneSpec((ObjectSpec("circle", "blue", "small", "right", "quickly", 0.3, 0.3),)), 32, 3
    )
    far = tsr(moving, seed=0).frames[1::2, 28:, 28:]  # far from the object: background
    assert (far == 0).all()


@pytest.mark.parametrize(
    ("kind", "frames", "message"),
    [
        ("tsr", clip(2, 17), "17x17, which is not a multiple of 2"),
        ("tsr", np.zeros((2, 16, 16, 3), np.float32), "uint8"),
        ("ssr", np.zeros((2, 8, 8), np.uint8), "shape"),
    ],
)
def test_bad_input_is_named(ssr, tsr, kind, frames, message):
    pipe = tsr if kind == "tsr" else ssr
    with pytest.raises(InvalidParameter, match=message):
        pipe(frames, seed=0)


def test_batch_arguments_are_checked(ssr):
    with pytest.raises(InvalidParameter, match="one video per prompt"):
        ssr.batch(clip(2, 8))
    with pytest.raises(InvalidParameter, match="2 videos for 1 prompts"):
        ssr.batch([clip(2, 8), clip(2, 8)], ["x"])
    with pytest.raises(InvalidParameter, match="same frame count and size"):
        ssr.batch([clip(2, 8), clip(3, 8)])
    with pytest.raises(InvalidParameter, match="prompt must be a string"):
        ssr(clip(2, 8), ["x"])
    # The checks text-to-video makes too (one prepare_batch, conditioning.PromptAndScheduler).
    with pytest.raises(InvalidParameter, match="no prompts given"):
        ssr.batch([clip(2, 8)], [])
    with pytest.raises(InvalidParameter, match="2 seeds for 1 prompts"):
        ssr.batch([clip(2, 8)], ["x"], seeds=[0, 1])
    with pytest.raises(InvalidParameter, match="negative_prompt must be a string"):
        ssr.batch([clip(2, 8)], ["x"], [3])
