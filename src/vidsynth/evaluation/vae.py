"""How much a VAE keeps: PSNR and the judge's accuracy on encode→decode round trips of world
clips. A text-to-video model in that latent space cannot score above it."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import AutoencoderKL

from vidsynth.models.vae import decode_to_uint8, encode_video


@torch.no_grad()
def evaluate_vae(
    vae: AutoencoderKL, *, clips: int = 64, size: int = 64, num_frames: int = 16, seed: int = 7
) -> dict[str, float]:
    from vidsynth.training.data import to_tensor
    from vidsynth.world.judge import judge, score
    from vidsynth.world.renderer import render_clip
    from vidsynth.world.target import SceneTarget

    verdicts, psnrs = [], []
    for i in range(clips):
        frames, scene = render_clip(
            seed * 100_000 + i, level=1 + i % 2, size=size, num_frames=num_frames
        )
        video = to_tensor(frames)[None].to(vae.device, vae.dtype)
        recon = decode_to_uint8(vae, encode_video(vae, video))[0].numpy()
        mse = np.mean((recon.astype(np.float64) - frames) ** 2)
        psnr = 10 * np.log10(255.0**2 / max(mse, 1e-10))
        psnrs.append(psnr)
        verdicts.append(judge(recon, SceneTarget.from_scene(scene)))
    return {"psnr": float(np.mean(psnrs)), **score(verdicts)}
