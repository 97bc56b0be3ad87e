"""The real ModelScope T2V UNet config: same parameters, keys and shapes as diffusers.

Both models are built on the ``meta`` device, so this costs no memory and well under a second.
"""

from __future__ import annotations

from typing import Any

import torch

from vidsynth.models import UNet3DConfig, UNet3DModel

# damo-vilab/text-to-video-ms-1.7b unet/config.json (Zeroscope v2 uses the same architecture).
MODELSCOPE_UNET: dict[str, Any] = {
    "_class_name": "UNet3DConditionModel",
    "_diffusers_version": "0.15.0.dev0",
    "act_fn": "silu",
    "attention_head_dim": 64,
    "block_out_channels": [320, 640, 1280, 1280],
    "cross_attention_dim": 1024,
    "down_block_types": [
        "CrossAttnDownBlock3D",
        "CrossAttnDownBlock3D",
        "CrossAttnDownBlock3D",
        "DownBlock3D",
    ],
    "downsample_padding": 1,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 32,
    "up_block_types": [
        "UpBlock3D",
        "CrossAttnUpBlock3D",
        "CrossAttnUpBlock3D",
        "CrossAttnUpBlock3D",
    ],
}


def test_modelscope_unet_is_identical_to_diffusers_on_meta() -> None:
    from diffusers import UNet3DConditionModel

    with torch.device("meta"):
        ref = UNet3DConditionModel.from_config(MODELSCOPE_UNET)
        ours = UNet3DModel(UNet3DConfig.from_dict(MODELSCOPE_UNET))

    ref_params = sum(p.numel() for p in ref.parameters())
    assert ours.num_parameters() == ref_params
    assert 1.40e9 < ref_params < 1.42e9  # 1,411,233,860

    ours_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert ours_shapes.keys() == ref_shapes.keys()
    assert ours_shapes == ref_shapes
    assert all(p.is_meta for p in ours.parameters())


def test_config_defaults_are_the_modelscope_unet() -> None:
    assert UNet3DConfig(sample_size=32) == UNet3DConfig.from_dict(MODELSCOPE_UNET)
    assert UNet3DConfig().time_embed_dim == 1280
