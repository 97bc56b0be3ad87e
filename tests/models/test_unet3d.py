"""UNet3DModel: exact agreement with diffusers' UNet3DConditionModel, checkpoints, extensions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from _tiny import (
    diffusers_unet,
    randomize_,
    single_thread,
    three_stage_config,
    tiny_config,
    unet_inputs,
)
from safetensors.torch import load_file, save_file

from vidsynth.models import UNet3DConfig, UNet3DModel

ATOL = 1e-4


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with single_thread():
        yield


def _ours(config: dict[str, Any], seed: int = 0, **overrides: Any) -> UNet3DModel:
    torch.manual_seed(seed)
    model = UNet3DModel(UNet3DConfig.from_dict({**config, **overrides}))
    return randomize_(model, seed).eval()


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()


def _skip_shapes(config: dict[str, Any], bf: int, h: int, w: int) -> list[tuple[int, ...]]:
    """Frame-folded shapes of the skip connections (diffusers' down_block_res_samples)."""
    channels = config["block_out_channels"]
    shapes = [(bf, channels[0], h, w)]
    for i, c in enumerate(channels):
        shapes += [(bf, c, h, w)] * config["layers_per_block"]
        if i < len(channels) - 1:
            h, w = (h + 1) // 2, (w + 1) // 2  # 3x3 stride-2 conv, padding 1
            shapes.append((bf, c, h, w))
    return shapes


# ----------------------------------------------------------------------------- vs diffusers


@pytest.mark.parametrize(
    ("make_config", "batch", "frames", "height", "width"),
    [
        (tiny_config, 1, 3, 8, 8),
        (tiny_config, 2, 4, 5, 7),  # odd, non-square: up blocks need an explicit size
        (three_stage_config, 2, 2, 9, 6),
        (three_stage_config, 1, 1, 8, 8),  # single frame
    ],
)
def test_matches_diffusers_after_loading_its_folder(
    tmp_path: Path, make_config: Any, batch: int, frames: int, height: int, width: int
) -> None:
    config = make_config()
    ref = diffusers_unet(config)
    ref.save_pretrained(tmp_path)
    ours = UNet3DModel.from_pretrained(tmp_path)
    assert not ours.training
    assert ours.state_dict().keys() == ref.state_dict().keys()

    sample, t, context = unet_inputs(config, batch=batch, frames=frames, height=height, width=width)
    with torch.inference_mode():
        expected = ref(sample, t, context).sample
        got = ours(sample, t, context)
    assert got.shape == expected.shape == (batch, 4, frames, height, width)
    assert _max_diff(got, expected) < ATOL


@pytest.mark.parametrize("timestep", [7, 321.5, torch.tensor(999), torch.tensor([5])])
def test_timestep_forms(timestep: Any) -> None:
    config = tiny_config()
    ref = diffusers_unet(config)
    ours = UNet3DModel(UNet3DConfig.from_dict(config)).eval()
    ours.load_state_dict(ref.state_dict())
    sample, _, context = unet_inputs(config, batch=2)
    with torch.no_grad():
        assert (
            _max_diff(ours(sample, timestep, context), ref(sample, timestep, context).sample) < ATOL
        )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_is_as_accurate_as_diffusers(dtype: torch.dtype) -> None:
    config = three_stage_config()
    ref = diffusers_unet(config)
    ours = UNet3DModel(UNet3DConfig.from_dict(config)).eval()
    ours.load_state_dict(ref.state_dict())
    sample, t, context = unet_inputs(config, batch=2, frames=3, height=12, width=12)
    with torch.inference_mode():
        gold = ref(sample, t, context).sample
        ref_err = _max_diff(ref.to(dtype)(sample.to(dtype), t, context.to(dtype)).sample, gold)
        out = ours.to(dtype)(sample.to(dtype), t, context.to(dtype))
    assert out.dtype == dtype
    assert _max_diff(out, gold) < 1.5 * ref_err + 1e-3


def test_fp16_variant(tmp_path: Path) -> None:
    config = tiny_config()
    ref = diffusers_unet(config).half()
    ref.save_pretrained(tmp_path, variant="fp16")
    assert (tmp_path / "diffusion_pytorch_model.fp16.safetensors").is_file()

    stored = UNet3DModel.from_pretrained(tmp_path)  # falls back to the fp16 variant
    assert stored.dtype == torch.float16
    ours = UNet3DModel.from_pretrained(tmp_path, variant="fp16", dtype=torch.float32)
    assert ours.dtype == torch.float32
    ref = ref.float()  # same fp16-rounded weights, computed in fp32
    sample, t, context = unet_inputs(config, batch=2, frames=2)
    with torch.inference_mode():
        assert _max_diff(ours(sample, t, context), ref(sample, t, context).sample) < ATOL


def test_sharded_checkpoint(tmp_path: Path) -> None:
    config = three_stage_config()
    ref = diffusers_unet(config)
    ref.save_pretrained(tmp_path, max_shard_size="100KB")
    assert (tmp_path / "diffusion_pytorch_model.safetensors.index.json").is_file()
    assert len(list(tmp_path.glob("diffusion_pytorch_model-*-of-*.safetensors"))) > 2

    ours = UNet3DModel.from_pretrained(tmp_path)
    sample, t, context = unet_inputs(config, batch=1, frames=2)
    with torch.inference_mode():
        assert _max_diff(ours(sample, t, context), ref(sample, t, context).sample) < ATOL


def test_residuals_match_diffusers() -> None:
    config = three_stage_config()
    ref = diffusers_unet(config)
    ours = UNet3DModel(UNet3DConfig.from_dict(config)).eval()
    ours.load_state_dict(ref.state_dict())
    batch, frames, h, w = 2, 3, 7, 5
    sample, t, context = unet_inputs(config, batch=batch, frames=frames, height=h, width=w)
    gen = torch.Generator().manual_seed(3)
    shapes = _skip_shapes(config, batch * frames, h, w)
    down = [torch.randn(s, generator=gen) for s in shapes]
    mid = torch.randn(shapes[-1], generator=gen)

    with torch.inference_mode():
        expected = ref(
            sample,
            t,
            context,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
        ).sample
        got = ours(sample, t, context, down_residuals=down, mid_residual=mid)
        plain = ours(sample, t, context)
        # The same residuals as (B, C, F, H, W) video tensors.
        video = [r.unflatten(0, (batch, frames)).transpose(1, 2) for r in down]
        got_5d = ours(
            sample,
            t,
            context,
            down_residuals=video,
            mid_residual=mid.unflatten(0, (batch, frames)).transpose(1, 2),
        )
    assert _max_diff(got, expected) < ATOL
    assert _max_diff(got_5d, got) < 1e-6
    assert _max_diff(got, plain) > 1e-2

    with pytest.raises(ValueError, match=f"needs {len(shapes)} tensors"):
        ours(sample, t, context, down_residuals=down[:-1])


def test_every_weight_matters() -> None:
    """Guard against a comparison that passes because some layer is silently a no-op."""
    config = tiny_config()
    ours = _ours(config)
    sample, t, context = unet_inputs(config)
    with torch.no_grad():
        base = ours(sample, t, context)
        for name in (
            "down_blocks.0.temp_convs.0.conv4.3.weight",
            "transformer_in.transformer_blocks.0.attn2.to_out.0.weight",
            "down_blocks.0.temp_attentions.0.proj_out.weight",
            "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
        ):
            param = ours.get_parameter(name)
            saved = param.clone()
            param.zero_()
            assert _max_diff(ours(sample, t, context), base) > 1e-3, name
            param.copy_(saved)


# ----------------------------------------------------------------------------- checkpoints


def test_save_pretrained_round_trips_through_diffusers(tmp_path: Path) -> None:
    from diffusers import UNet3DConditionModel

    config = three_stage_config()
    ours = _ours(config, prediction_type="v_prediction")
    sample, t, context = unet_inputs(config, batch=2, frames=2)
    with torch.inference_mode():
        ours(sample, t, context)  # after a forward, q/k/v weights live in one fused buffer
    ours.save_pretrained(tmp_path)
    assert not list(tmp_path.glob(".*tmp*")), "temporary files left behind"
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["_class_name"] == "UNet3DConditionModel"
    assert saved["prediction_type"] == "v_prediction"

    ref = UNet3DConditionModel.from_pretrained(tmp_path).eval()
    again = UNet3DModel.from_pretrained(tmp_path)
    assert again.config == ours.config
    with torch.inference_mode():
        expected = ours(sample, t, context)
        assert _max_diff(ref(sample, t, context).sample, expected) < ATOL
        assert _max_diff(again(sample, t, context), expected) == 0.0


def test_save_dtype_and_shards(tmp_path: Path) -> None:
    ours = _ours(tiny_config())
    ours.save_pretrained(tmp_path, dtype=torch.float16)
    tensors = load_file(tmp_path / "diffusion_pytorch_model.safetensors")
    assert {t.dtype for t in tensors.values()} == {torch.float16}
    assert ours.dtype == torch.float32  # the model itself is untouched

    ours.save_pretrained(tmp_path, max_shard_size=200_000)
    assert not (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    index = json.loads((tmp_path / "diffusion_pytorch_model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(ours.state_dict())
    loaded = UNet3DModel.from_pretrained(tmp_path)
    for key, value in ours.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_clear_error_on_missing_and_unexpected_keys(tmp_path: Path) -> None:
    ours = _ours(tiny_config())
    ours.save_pretrained(tmp_path)
    path = tmp_path / "diffusion_pytorch_model.safetensors"
    tensors = load_file(path)
    del tensors["conv_in.weight"]
    tensors["extra.weight"] = torch.zeros(1)
    tensors["conv_out.bias"] = torch.zeros(7)
    save_file(tensors, path)
    with pytest.raises(ValueError) as info:
        UNet3DModel.from_pretrained(tmp_path)
    message = str(info.value)
    assert "1 missing keys" in message and "conv_in.weight" in message
    assert "1 unexpected keys" in message and "extra.weight" in message
    assert "conv_out.bias: checkpoint (7,) vs model (4,)" in message


def test_missing_weights_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(tiny_config()))
    with pytest.raises(FileNotFoundError, match=r"diffusion_pytorch_model\.safetensors"):
        UNet3DModel.from_pretrained(tmp_path)


# ----------------------------------------------------------------------------- config


def test_config_dict_round_trip_and_validation() -> None:
    data = {**tiny_config(), "_class_name": "UNet3DConditionModel", "_diffusers_version": "0.15.0"}
    data["some_future_key"] = 1
    config = UNet3DConfig.from_dict(data)
    assert config.block_out_channels == (32, 64)
    assert config.prediction_type == "epsilon"
    out = config.to_dict()
    assert out["_class_name"] == "UNet3DConditionModel"
    assert out["block_out_channels"] == [32, 64]
    assert UNet3DConfig.from_dict(out) == config

    with pytest.raises(ValueError, match="prediction_type"):
        UNet3DConfig.from_dict({**tiny_config(), "prediction_type": "flow"})
    with pytest.raises(ValueError, match="same length"):
        UNet3DConfig.from_dict({**tiny_config(), "block_out_channels": [32, 64, 64]})
    with pytest.raises(ValueError, match="unsupported down block"):
        UNet3DConfig.from_dict({**tiny_config(), "down_block_types": ["X", "DownBlock3D"]})


def test_utilities() -> None:
    ref = diffusers_unet(tiny_config())
    ours = _ours(tiny_config())
    assert ours.num_parameters() == sum(p.numel() for p in ref.parameters())
    assert ours.dtype == torch.float32
    assert ours.device == torch.device("cpu")
    assert ours.config.time_embed_dim == 128


# ----------------------------------------------------------------------------- extensions


def test_concat_conditioning() -> None:
    config = tiny_config(in_channels=8)
    ours = _ours(config)
    sample, t, context = unet_inputs(tiny_config(), batch=2)
    cond_a = torch.randn_like(sample)
    cond_b = torch.randn_like(sample)
    with torch.no_grad():
        out_a = ours(sample, t, context, concat=cond_a)
        out_b = ours(sample, t, context, concat=cond_b)
        manual = ours(torch.cat([sample, cond_a], dim=1), t, context)
    assert out_a.shape == sample.shape
    assert _max_diff(out_a, out_b) > 1e-3
    assert _max_diff(out_a, manual) == 0.0

    with pytest.raises(ValueError, match=r"in_channels=8 .* got 6 \(4 latent \+ 2 concat\)"):
        ours(sample, t, context, concat=cond_a[:, :2])
    with pytest.raises(ValueError, match="in_channels=8"):
        ours(sample, t, context)
    with pytest.raises(ValueError, match="concat must be"):
        ours(sample, t, context, concat=cond_a[:, :, :2])


def test_extra_context_tokens() -> None:
    config = tiny_config()
    ours = _ours(config)
    sample, t, context = unet_inputs(config, batch=2)
    extra = torch.randn(2, 3, config["cross_attention_dim"])
    with torch.no_grad():
        plain = ours(sample, t, context)
        extended = ours(sample, t, context, extra_context=extra)
        manual = ours(sample, t, torch.cat([context, extra], dim=1))
    assert _max_diff(extended, plain) > 1e-3
    assert _max_diff(extended, manual) == 0.0

    ref = diffusers_unet(config)
    ref.load_state_dict(ours.state_dict())
    with torch.no_grad():
        expected = ref(sample, t, torch.cat([context, extra], dim=1)).sample
    assert _max_diff(extended, expected) < ATOL


def test_added_embedding() -> None:
    config = tiny_config()
    ours = _ours(config)
    sample, t, context = unet_inputs(config, batch=2)
    dim = ours.config.time_embed_dim
    with torch.no_grad():
        plain = ours(sample, t, context)
        zero = ours(sample, t, context, added_emb=torch.zeros(2, dim))
        shifted = ours(sample, t, context, added_emb=torch.randn(2, dim))
    assert _max_diff(zero, plain) == 0.0
    assert _max_diff(shifted, plain) > 1e-3


def test_timestep_cond_projection_matches_diffusers() -> None:
    config = tiny_config(time_cond_proj_dim=6)
    ref = diffusers_unet(config)
    ours = UNet3DModel(UNet3DConfig.from_dict(config)).eval()
    ours.load_state_dict(ref.state_dict())
    sample, t, context = unet_inputs(config)
    cond = torch.randn(1, 6)
    with torch.no_grad():
        expected = ref(sample, t, context, timestep_cond=cond).sample
        assert _max_diff(ours(sample, t, context, timestep_cond=cond), expected) < ATOL


# ----------------------------------------------------------------------------- training


def test_gradient_checkpointing_gives_identical_gradients() -> None:
    config = three_stage_config()
    sample, t, context = unet_inputs(config, batch=1, frames=2)

    def grads(checkpointing: bool) -> dict[str, torch.Tensor]:
        model = _ours(config).train()
        model.enable_gradient_checkpointing(checkpointing)
        torch.manual_seed(5)  # same dropout masks in both runs
        model(sample, t, context).square().mean().backward()
        return {n: p.grad for n, p in model.named_parameters()}

    plain, checkpointed = grads(False), grads(True)
    assert all(g is not None for g in plain.values())
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_fused_qkv_stays_in_sync_with_the_parameters() -> None:
    """Inference fuses q/k/v storage; loading, casting and training must all still work."""
    config = tiny_config()
    model = _ours(config, seed=0)
    other = _ours(config, seed=1)
    sample, t, context = unet_inputs(config)
    with torch.inference_mode():
        model(sample, t, context)  # fuses
        expected_other = other(sample, t, context)

    model.load_state_dict(other.state_dict())  # in-place copies into the fused storage
    with torch.inference_mode():
        assert _max_diff(model(sample, t, context), expected_other) == 0.0

    model.load_state_dict(_ours(config, seed=0).state_dict(), assign=True)  # replaces tensors
    model.double()
    with torch.inference_mode():
        out = model(sample.double(), t, context.double())
    assert out.dtype == torch.float64

    # Training after inference: parameters are ordinary tensors and receive gradients.
    model.float().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(sample, t, context).square().mean().backward()
    attn = model.down_blocks[0].attentions[0].transformer_blocks[0].attn1
    assert attn.to_q.weight.grad is not None and attn.to_v.weight.grad is not None
    optimizer.step()
    model.eval()
    with torch.inference_mode():
        after = model(sample, t, context)
    fresh = UNet3DModel(model.config).eval()
    fresh.load_state_dict(model.state_dict())
    with torch.inference_mode():
        assert _max_diff(fresh(sample, t, context), after) == 0.0


def test_independent_frames_bypass_the_temporal_layers() -> None:
    """Joint image–video training: with ``independent_frames`` each frame's output depends on
    that frame alone, and the temporal layers neither act nor receive gradients."""
    config = tiny_config()
    ours = _ours(config)
    sample, t, context = unet_inputs(config, batch=2)
    with torch.no_grad():
        together = ours(sample, t, context, independent_frames=True)
        video = ours(sample, t, context)
        # frame 0 alone, its neighbours changed: the same output for it
        other = sample.clone()
        other[:, :, 1:] = torch.randn_like(other[:, :, 1:])
        changed = ours(other, t, context, independent_frames=True)
    assert _max_diff(together[:, :, :1], changed[:, :, :1]) < 1e-5
    assert _max_diff(together[:, :, 1:], changed[:, :, 1:]) > 1e-3
    assert _max_diff(together, video) > 1e-3  # the video path does mix frames

    ours.train()
    ours(sample, t, context, independent_frames=True).square().mean().backward()
    temporal = ("temp_convs", "temp_attentions", "transformer_in")
    for name, param in ours.named_parameters():
        bypassed = any(part in name for part in temporal)
        assert (param.grad is None) == bypassed, name


def test_frame_embedding_tells_frames_where_they_are_in_the_clip(tmp_path: Path) -> None:
    """With ``frame_embedding`` each frame's output depends on its position in the clip (what a
    direction of travel needs); added to a trained UNet it changes nothing until it trains."""
    config = tiny_config()
    plain = _ours(config)
    sample, t, context = unet_inputs(config, batch=2, frames=4)
    with torch.no_grad():
        before = plain(sample, t, context)
        plain.add_frame_embedding()
        assert _max_diff(before, plain(sample, t, context)) == 0.0  # zero-initialised
        with pytest.raises(ValueError, match="already has"):
            plain.add_frame_embedding()

        ours = _ours(config, frame_embedding=True)  # randomised: the embedding acts
        forward = ours(sample, t, context)
        assert _max_diff(forward, ours(sample, t, context, frame_index=torch.arange(4))) == 0.0
        backward = ours(sample, t, context, frame_index=torch.arange(4).flip(0))
        assert _max_diff(forward, backward) > 1e-3

        # single frames of joint training: the output depends on the time each was taken at
        image = sample[:, :, :1]
        at = lambda k: ours(image, t, context, independent_frames=True, frame_index=k)
        assert _max_diff(at(torch.tensor([[0], [5]]))[:1], at(torch.tensor([[0], [9]]))[:1]) == 0
        assert _max_diff(at(torch.tensor([[0], [5]]))[1:], at(torch.tensor([[0], [9]]))[1:]) > 1e-3
        with pytest.raises(ValueError, match="frame_index must be"):
            ours(sample, t, context, frame_index=torch.arange(3))
        with pytest.raises(ValueError, match="no frame_embedding"):
            _ours(config)(sample, t, context, frame_index=torch.arange(4))

    ours.save_pretrained(tmp_path)
    loaded = UNet3DModel.from_pretrained(tmp_path)
    assert loaded.config.frame_embedding
    with torch.no_grad():
        assert _max_diff(loaded(sample, t, context), forward) < 1e-6


def test_position_embedding_tells_pixels_where_they_are_in_the_frame(tmp_path: Path) -> None:
    """``position_embedding``: every latent pixel gets features of its own (left is not right,
    which zero padding alone barely tells a conv net), the map is the same in frame sides at
    any resolution, and added to a trained UNet it changes nothing until it trains."""
    from vidsynth.models.embeddings import PositionEmbedding

    features = PositionEmbedding.features(6, 8)
    assert features.shape == (16, 6, 8)
    points = features.flatten(1).T  # one feature vector per pixel
    assert torch.cdist(points, points).add(torch.eye(48) * 9).min() > 0.1  # all distinct
    assert (features[0, 0].diff() < 0).all()  # cos(πx) falls from the left edge to the right
    # a place in frame sides gets the same features at any resolution: 4×4 against 12×12
    assert torch.allclose(
        PositionEmbedding.features(4, 4),
        PositionEmbedding.features(12, 12)[:, 1::3, 1::3],
        atol=1e-5,
    )

    config = tiny_config()
    plain = _ours(config)
    sample, t, context = unet_inputs(config, frames=4)
    with torch.no_grad():
        before = plain(sample, t, context)
        plain.add_position_embedding()
        assert plain.config.position_embedding
        assert _max_diff(before, plain(sample, t, context)) == 0.0  # zero-initialised
        with pytest.raises(ValueError, match="already has"):
            plain.add_position_embedding()

        ours = _ours(config, position_embedding=True)  # randomised: the embedding acts
        forward = ours(sample, t, context)
        ours.position_embedding.proj.weight.zero_()
        assert _max_diff(forward, ours(sample, t, context)) > 1e-3
    ours.save_pretrained(tmp_path)
    loaded = UNet3DModel.from_pretrained(tmp_path)
    assert loaded.config.position_embedding
    with torch.no_grad():
        assert _max_diff(loaded(sample, t, context), ours(sample, t, context)) < 1e-6


def test_temporal_position_embedding_lets_temporal_attention_order_frames(
    tmp_path: Path,
) -> None:
    """``temporal_position_embedding``: without it a temporal transformer is blind to frame
    order (reversing its input frames reverses its output exactly, so nothing downstream can
    tell "moving left" from "moving right" played backwards); with it, it is not. It acts from
    the first step, travels in config.json, and independent frames still skip it."""
    from vidsynth.models.transformers import TemporalTransformer

    torch.manual_seed(0)
    layer = randomize_(TemporalTransformer(16, 2, 8, groups=4), 0).eval()
    x = torch.randn(2 * 6, 16, 3, 3)  # 2 clips of 6 frames, folded

    def reversed_frames(y: torch.Tensor) -> torch.Tensor:
        return y.view(2, 6, *y.shape[1:]).flip(1).flatten(0, 1)

    with torch.no_grad():
        blind = layer(x, 6)
        assert _max_diff(reversed_frames(layer(reversed_frames(x), 6)), blind) < 1e-5
        layer.frame_positions = True
        ordered = layer(x, 6)
        assert _max_diff(reversed_frames(layer(reversed_frames(x), 6)), ordered) > 1e-3
        assert _max_diff(ordered, blind) > 1e-3
        assert _max_diff(layer(x, None), x) == 0.0  # independent frames: still the identity

    config = tiny_config()
    plain = _ours(config)
    sample, t, context = unet_inputs(config, frames=4)
    with torch.no_grad():
        before = plain(sample, t, context)
        plain.add_temporal_position_embedding()
        temporal = [m for m in plain.modules() if isinstance(m, TemporalTransformer)]
        assert len(temporal) > 1 and all(m.frame_positions for m in temporal)
        after = plain(sample, t, context)
        assert _max_diff(before, after) > 1e-4  # no weights: it acts at once
        with pytest.raises(ValueError, match="already has"):
            plain.add_temporal_position_embedding()
        images = plain(sample, t, context, independent_frames=True)
        plain_images = _ours(config)(sample, t, context, independent_frames=True)
        assert _max_diff(images, plain_images) == 0.0
    plain.save_pretrained(tmp_path)
    loaded = UNet3DModel.from_pretrained(tmp_path)
    assert loaded.config.temporal_position_embedding
    with torch.no_grad():
        assert _max_diff(loaded(sample, t, context), after) < 1e-6


def test_frame_embedding_can_see_the_prompt() -> None:
    """``frame_embedding_text``: the frame embedding also gets the mean of the prompt's token
    states (padding, all zero, left out), so a frame's place in time can meet the words for
    its motion; it needs ``frame_embedding`` and starts at zero when added to a trained UNet."""
    from vidsynth.models.unet3d import _pooled_text

    states = torch.randn(2, 3, 8)
    padded = torch.cat([states, torch.zeros(2, 4, 8)], dim=1)
    assert torch.allclose(_pooled_text(padded), states.mean(1), atol=1e-6)

    config = tiny_config()
    ours = _ours(config, frame_embedding=True, frame_embedding_text=True)
    index = torch.arange(4)
    dim = config["cross_attention_dim"]
    text_a, text_b = torch.randn(2, dim), torch.randn(2, dim)
    with torch.no_grad():
        emb_a = ours.frame_embedding(index.repeat(2), text_a.repeat_interleave(4, 0))
        emb_b = ours.frame_embedding(index.repeat(2), text_b.repeat_interleave(4, 0))
    assert ours.frame_embedding.mlp.cond_proj.in_features == config["cross_attention_dim"]
    assert _max_diff(emb_a, emb_b) > 1e-3
    with pytest.raises(ValueError, match="needs frame_embedding"):
        _ours(config, frame_embedding_text=True)

    plain = _ours(config)
    sample, t, context = unet_inputs(config, frames=4)
    with torch.no_grad():
        before = plain(sample, t, context)
        plain.add_frame_embedding(text=True)
        assert plain.config.frame_embedding_text
        assert _max_diff(before, plain(sample, t, context)) == 0.0


def test_first_frame_input_is_added_zero_initialised_and_saved(tmp_path: Path) -> None:
    """``add_first_frame_input``: ``conv_in`` gains latent + 1 channels with zero weights (the
    model is what it was, whatever the first frame), the config records it, and a UNet that
    has learned to use it loads back as it was saved."""
    from vidsynth.models.first_frame import first_frame_concat

    config = tiny_config()
    plain = _ours(config)
    sample, t, context = unet_inputs(config, batch=2, frames=4)
    c = config["out_channels"]
    first = torch.randn(2, c, *sample.shape[-2:])
    with torch.no_grad():
        before = plain(sample, t, context)
        plain.add_first_frame_input()
        assert plain.config.first_frame and plain.config.in_channels == 2 * c + 1
        assert (
            _max_diff(before, plain(sample, t, context, concat=first_frame_concat(first, sample)))
            == 0
        )
        with pytest.raises(ValueError, match="already has"):
            plain.add_first_frame_input()
        with pytest.raises(ValueError, match="input channels"):
            plain(sample, t, context)  # the first-frame channels are not optional

        randomize_(plain, seed=3)  # as if trained: now the first frame matters
        given = plain(sample, t, context, concat=first_frame_concat(first, sample))
        other = plain(sample, t, context, concat=first_frame_concat(-first, sample))
        assert _max_diff(given, other) > 1e-3
    plain.save_pretrained(tmp_path)
    loaded = UNet3DModel.from_pretrained(tmp_path)
    assert loaded.config.first_frame
    with torch.no_grad():
        assert (
            _max_diff(loaded(sample, t, context, concat=first_frame_concat(first, sample)), given)
            < 1e-6
        )

    with pytest.raises(ValueError, match="first_frame needs in_channels"):
        UNet3DConfig.from_dict({**config, "first_frame": True})

    # warm start: the first frame enters through c × the latent weights, so it acts at once
    warm = _ours(config)
    warm.add_first_frame_input(warm_start=0.5)
    weight = warm.conv_in.weight
    assert torch.equal(weight[:, c : 2 * c], 0.5 * weight[:, :c]) and not weight[:, 2 * c].any()
    with torch.no_grad():
        given = warm(sample, t, context, concat=first_frame_concat(first, sample))
        assert (
            _max_diff(given, warm(sample, t, context, concat=first_frame_concat(None, sample)))
            > 1e-3
        )
