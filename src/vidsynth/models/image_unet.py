"""A text-to-image UNet for a text-to-video model's first frame.

The bundled text-to-video model draws a clip's first frame as an image before the clip (Emu
Video's factorisation). Its own UNet can do that with its temporal layers bypassed, but it is
sized for 16 frames at once and has no attention at its largest level, where a shape's outline
is drawn. An image stage of its own (as SDXL feeds Stable Video Diffusion) can be wider and
attend at every level for the same cost per frame.

The network is diffusers' ``UNet2DConditionModel``, saved in its layout under ``image_unet/``.
`ImageUNet` only gives it the call of vidsynth's video UNets, so samplers, guidance and the
training loss take either: latents (B, C, F, h, w) whose F frames are independent images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DConditionModel
from diffusers.configuration_utils import FrozenDict
from torch import nn


class ImageUNet(nn.Module):
    """``UNet2DConditionModel`` called as ``unet(x (B, C, F, h, w), t, context (B, L, D))``.

    It predicts what the model's scheduler says (``prediction_type`` lives in the scheduler's
    config, which the image stage shares with the video UNet)."""

    def __init__(self, unet: UNet2DConditionModel) -> None:
        super().__init__()
        self.unet = unet
        self.record: dict[str, Any] | None = None

    @classmethod
    def from_config(cls, kwargs: dict) -> ImageUNet:
        """A fresh network from ``UNet2DConditionModel`` keyword arguments."""
        return cls(UNet2DConditionModel(**kwargs))

    @classmethod
    def from_pretrained(cls, folder: str | Path, dtype: torch.dtype = torch.float32) -> ImageUNet:
        """A saved image UNet (an ``image_unet/`` folder), with ``record``: how it was
        trained (its training.json), or None."""
        folder = Path(folder)
        model = cls(UNet2DConditionModel.from_pretrained(folder, torch_dtype=dtype))
        record = folder / "training.json"
        model.record = json.loads(record.read_text()) if record.is_file() else None
        return model

    def save_pretrained(self, folder: str | Path, **kwargs: Any) -> None:
        """Save in diffusers' layout: ``UNet2DConditionModel.from_pretrained`` reads it."""
        self.unet.save_pretrained(folder, **kwargs)

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def config(self) -> FrozenDict:
        return self.unet.config

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        context: torch.Tensor,
        **video_inputs: object,
    ) -> torch.Tensor:
        """The prediction for each frame of `x`, each denoised as an image. A video UNet's
        other inputs (a first frame to concatenate, a frame index, ...) mean nothing to an
        image model; passing one is a bug, so it is refused."""
        given = [k for k, v in video_inputs.items() if v is not None and not isinstance(v, bool)]
        if given:
            raise TypeError(f"ImageUNet takes no video inputs, got {given}")
        b, c, f, h, w = x.shape
        images = x.transpose(1, 2).reshape(b * f, c, h, w)
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(b).repeat_interleave(f)
        out = self.unet(images, t, encoder_hidden_states=context.repeat_interleave(f, 0)).sample
        return out.reshape(b, f, c, h, w).transpose(1, 2)


def load_image_stage(folder: str | Path, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """A saved image stage (an ``image_unet/`` folder), with ``record`` (its training.json, or
    None): an `ImageUNet`, or a UNet3D of the video model's architecture that learned first
    frames alone (`UNet3DModel`, run with its temporal layers bypassed)."""
    from vidsynth.models.unet3d import UNet3DModel

    folder = Path(folder)
    kind = json.loads((folder / "config.json").read_text()).get("_class_name")
    if kind == "UNet3DConditionModel":
        model = UNet3DModel.from_pretrained(folder, dtype=dtype)
        record = folder / "training.json"
        model.record = json.loads(record.read_text()) if record.is_file() else None
        return model
    return ImageUNet.from_pretrained(folder, dtype)
