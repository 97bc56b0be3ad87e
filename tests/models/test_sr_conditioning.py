"""How super-resolution stages see their input: noise augmentation, the level embedding (saved
and loaded with the UNet), and the spatial / temporal conditioning layouts."""

from __future__ import annotations

import math

import pytest
import torch

from vidsynth.models.sr_conditioning import (
    augment,
    condition_channels,
    interpolation,
    level_features,
    neighbours,
    new_frame_positions,
    sample_channels,
    spatial_condition,
)
from vidsynth.models.unet3d import UNet3DConfig, UNet3DModel
from vidsynth.testing import perturb_, tiny_unet_config


def test_augment_is_a_variance_preserving_mix() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 8, 8, generator=gen)
    noise = torch.randn(x.shape, generator=gen)
    assert torch.equal(augment(x, 0.0, noise), x)
    assert torch.allclose(augment(x, 1.0, noise), noise, atol=1e-6)
    half = augment(x, 0.5, noise)
    assert torch.allclose(half, (x + noise) / math.sqrt(2), atol=1e-6)
    # one level per sample: each row is mixed with its own level
    mixed = augment(x, torch.tensor([0.0, 1.0]), noise)
    assert torch.equal(mixed[0], x[0]) and torch.allclose(mixed[1], noise[1], atol=1e-6)
    big = torch.randn(4, 1, 64, 64, 64, generator=gen)
    std = augment(big, 0.3, torch.randn(big.shape, generator=gen)).std()
    assert std == pytest.approx(1.0, abs=0.01)
    with pytest.raises(ValueError, match="one level per sample"):
        augment(x, torch.tensor([0.1, 0.2, 0.3]), noise)


def test_level_features_tell_levels_apart() -> None:
    like = torch.zeros(3, 4, 2, 2, 2)
    f = level_features(torch.tensor([0.0, 0.1, 0.11]), 16, like)
    assert f.shape == (3, 16) and f.dtype == torch.float32
    assert (f[1] - f[2]).abs().max() > 1e-3  # 0.01 apart is still visible
    assert torch.equal(level_features(0.1, 16, like)[0], f[1])


def test_conditioning_layouts() -> None:
    assert (sample_channels("spatial-sr", 4), condition_channels("spatial-sr", 4)) == (4, 3)
    assert (sample_channels("temporal-sr", 4), condition_channels("temporal-sr")) == (3, 9)
    with pytest.raises(ValueError, match="unknown super-resolution kind"):
        condition_channels("text-to-video", 4)

    low = torch.rand(1, 3, 2, 8, 8) * 2 - 1
    assert spatial_condition(low, (8, 8)) is low  # a ×4 SR on a ×4 VAE: already the grid
    resized = spatial_condition(low, (4, 4))
    assert resized.shape == (1, 3, 2, 4, 4) and resized.abs().max() <= 1
    flat = torch.full((1, 3, 1, 8, 8), 0.25)
    assert torch.allclose(spatial_condition(flat, (16, 16)), torch.tensor(0.25))


def test_temporal_interpolation_inputs() -> None:
    """Known frames 0..3 → new frames at 1, 3, 5, 7: neighbours, blend, weights, motion."""
    known = torch.full((1, 3, 4, 16, 16), -1.0)
    known[:, :, 1, 4:6, 4:6] = 1.0  # a dot shows in frame 1 only
    inter = interpolation(known, 2)
    assert new_frame_positions(4, 2) == [1, 3, 5, 7]
    assert inter.prev.shape == (1, 3, 4, 16, 16)
    assert torch.equal(inter.prev[:, :, :3], known[:, :, :3])
    assert torch.equal(inter.next[:, :, :3], known[:, :, 1:])
    # the last one extrapolates from the two frames before it, 1.5 frames on from the first
    assert torch.equal(inter.prev[:, :, 3], known[:, :, 2])
    assert torch.equal(inter.next[:, :, 3], known[:, :, 3])
    assert inter.weight.flatten().tolist() == [0.5, 0.5, 0.5, 1.5]
    assert inter.has_next.flatten().tolist() == [1, 1, 1, 0]
    blend = inter.blend
    assert torch.allclose(blend[:, :, 0, 4, 4], torch.tensor(0.0))  # halfway to the dot
    assert torch.equal(blend[:, :, 3], known[:, :, 3])  # nothing moved at the end: held
    # where the dot changes, within MOTION_RADIUS pixels, is "moving"; elsewhere is not
    motion = inter.motion[0, 0]
    assert motion[0, 4, 4] == 1 and motion[0, 1, 1] == 1 and motion[0, 0, 0] == 0
    assert motion[0, 12, 12] == 0 and not motion[2:].any()
    cond = inter.condition(*neighbours(known, 2))
    assert cond.shape == (1, 9, 4, 16, 16)
    assert torch.equal(cond[:, 8:], inter.motion) and torch.equal(
        cond[:, 6, :, 0, 0], inter.weight[0, 0, :, 0, 0].expand(1, 4)
    )
    three = interpolation(known, 3)
    assert three.weight.flatten().tolist() == pytest.approx([1 / 3, 2 / 3] * 3 + [4 / 3, 5 / 3])
    single = interpolation(known[:, :, :1], 2)  # one known frame: held
    assert single.weight.flatten().tolist() == [0.5]
    assert torch.equal(single.blend, known[:, :, :1])
    assert new_frame_positions(2, 3) == [1, 2, 4, 5]
    with pytest.raises(ValueError, match="at least 2"):
        interpolation(known, 1)


def test_frames_past_the_end_continue_the_motion() -> None:
    """A ramp brightening by 0.2 per known frame goes on brightening past the last one, in the
    base the model's residual is added to, and the model is shown the last two frames there."""
    known = torch.linspace(-0.6, 0.0, 4).reshape(1, 1, 4, 1, 1).expand(1, 3, 4, 8, 8)
    inter = interpolation(known, 2)
    expected = torch.tensor([-0.5, -0.3, -0.1, 0.1]).reshape(1, 1, 4, 1, 1)
    torch.testing.assert_close(inter.blend, expected.expand(1, 3, 4, 8, 8))
    prev, nxt = neighbours(known, 2)
    assert torch.equal(prev[:, :, 3], known[:, :, 2]) and torch.equal(nxt[:, :, 3], known[:, :, 3])
    assert inter.motion[:, :, 3].all()  # the last two frames differ everywhere


def test_motion_compensated_interpolation_inputs() -> None:
    """With motion compensation the base follows the moving object (much nearer the true new
    frames than the blend), the UNet sees the neighbours moved to the new frame's time (they
    average to the base), and where nothing moves everything is as without it."""
    from vidsynth.world import ObjectSpec, SceneSpec, render

    scene = SceneSpec((ObjectSpec("star", "yellow", "large", "left", "quickly", 0.7),), "gray")

    def pixels(frames):
        return torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1

    known, truth = pixels(render(scene, 64, 8)), pixels(render(scene, 64, 16, 16.0))
    new = truth[:, :, 1::2]
    moved, plain = interpolation(known, 2, motion_compensation=True), interpolation(known, 2)
    assert plain.flow is None and torch.equal(plain.base, plain.blend)
    assert moved.flow.shape == (1, 2, 8, 64, 64)
    assert not moved.flow[(moved.motion == 0).expand_as(moved.flow)].any()
    still = (moved.flow == 0).all(dim=1, keepdim=True).expand_as(moved.base)
    assert torch.equal(moved.base[still], plain.blend[still])

    def error(x: torch.Tensor) -> float:
        return float((x - new).square().mean())

    assert error(moved.base) < 0.3 * error(plain.blend)
    cond, plain_cond = (i.condition(*neighbours(known, 2)) for i in (moved, plain))
    assert torch.equal(cond[:, 6:], plain_cond[:, 6:])  # weight, has-next, motion mask
    assert not torch.equal(cond[:, :6], plain_cond[:, :6])
    between = slice(0, 7)  # frames with a next known frame: the base is the aligned mean
    torch.testing.assert_close(
        (cond[:, :3, between] + cond[:, 3:6, between]) / 2, moved.base[:, :, between]
    )


def test_level_embedding_round_trips_through_save_and_load(tmp_path) -> None:
    """The augmentation level reaches the UNet through timestep_cond: its projection is part of
    the UNet's state dict and config, so a saved SR UNet answers the same after loading."""
    config = UNet3DConfig.from_dict(tiny_unet_config(in_channels=7, time_cond_proj_dim=8))
    torch.manual_seed(0)
    unet = perturb_(UNet3DModel(config)).eval()
    assert any("cond_proj" in k for k in unet.state_dict())
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, 2, 8, 8, generator=gen)
    concat = torch.randn(1, 3, 2, 8, 8, generator=gen)
    context = torch.randn(1, 5, 32, generator=gen)

    def run(model: UNet3DModel, level: float) -> torch.Tensor:
        with torch.no_grad():
            cond = level_features(level, 8, x)
            return model(x, 10, context, concat=concat, timestep_cond=cond)

    unet.save_pretrained(tmp_path / "unet")
    loaded = UNet3DModel.from_pretrained(tmp_path / "unet")
    assert loaded.config.time_cond_proj_dim == 8
    assert torch.allclose(run(unet, 0.1), run(loaded, 0.1), atol=1e-6)
    assert not torch.allclose(run(loaded, 0.1), run(loaded, 0.4), atol=1e-4)


def test_sr_unet_folder_is_diffusers_loadable(tmp_path) -> None:
    """An SR UNet (extra input channels + timestep_cond) is still diffusers' UNet3D: the saved
    folder loads there and gives the same output for the concatenated input."""
    from diffusers import UNet3DConditionModel

    config = UNet3DConfig.from_dict(tiny_unet_config(in_channels=9, time_cond_proj_dim=8))
    torch.manual_seed(0)
    ours = perturb_(UNet3DModel(config)).eval()
    ours.save_pretrained(tmp_path / "unet")
    theirs = UNet3DConditionModel.from_pretrained(tmp_path / "unet").eval()
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 9, 4, 8, 8, generator=gen)
    context = torch.randn(1, 5, 32, generator=gen)
    cond = level_features(0.2, 8, x)
    with torch.no_grad():
        a = ours(x[:, :4], 10, context, concat=x[:, 4:], timestep_cond=cond)
        b = theirs(x, 10, context, timestep_cond=cond).sample
    assert torch.allclose(a, b, atol=1e-4)
