"""The image stage's UNet: diffusers' UNet2DConditionModel behind the video UNets' call."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import UNet2DConditionModel

from vidsynth.models.image_unet import ImageUNet
from vidsynth.testing import tiny_image_unet_config

TINY = tiny_image_unet_config(cross_attention_dim=12)


def _tiny(seed: int = 0) -> ImageUNet:
    torch.manual_seed(seed)
    model = ImageUNet.from_config(TINY).eval()
    with torch.no_grad():  # diffusers zero-initialises the output conv: give it weights
        model.unet.conv_out.weight.normal_(0, 0.05)
    return model


def test_each_frame_is_denoised_as_its_own_image():
    model = _tiny()
    x = torch.randn(2, 4, 3, 8, 8)
    context = torch.randn(2, 5, 12)
    t = torch.tensor([10, 700])
    with torch.no_grad():
        out = model(x, t, context, independent_frames=True)
        assert out.shape == x.shape and out.abs().max() > 0
        for b in range(2):
            for f in range(3):
                one = model.unet(
                    x[b : b + 1, :, f], t[b : b + 1], encoder_hidden_states=context[b : b + 1]
                )
                assert torch.allclose(out[b : b + 1, :, f], one.sample, atol=1e-5)
        # one timestep for the whole batch, as a sampler passes it
        assert torch.allclose(model(x, torch.tensor(700), context)[1], out[1], atol=1e-5)


def test_a_video_input_is_refused():
    model = _tiny()
    x = torch.randn(1, 4, 1, 8, 8)
    with pytest.raises(TypeError, match="concat"):
        model(x, torch.tensor([1]), torch.randn(1, 5, 12), concat=torch.zeros(1, 5, 1, 8, 8))


def test_saved_in_diffusers_layout_with_its_record(tmp_path):
    model = _tiny()
    model.save_pretrained(tmp_path / "image_unet")
    (tmp_path / "image_unet" / "training.json").write_text(json.dumps({"steps": 3}))
    plain = UNet2DConditionModel.from_pretrained(tmp_path / "image_unet")  # diffusers reads it
    assert list(plain.config.block_out_channels) == [16, 32]
    again = ImageUNet.from_pretrained(tmp_path / "image_unet")
    assert again.record == {"steps": 3}
    x, t, c = torch.randn(1, 4, 2, 8, 8), torch.tensor([5]), torch.randn(1, 5, 12)
    with torch.no_grad():
        assert torch.allclose(again(x, t, c), model(x, t, c), atol=1e-6)
