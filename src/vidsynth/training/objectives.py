"""Losses: the VAE's reconstruction objective and the video UNet's v-prediction objective."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler

from vidsynth.models.unet3d import UNet3DModel


def salient_weight(
    images: torch.Tensor, boost: float = 4.0, threshold: float = 0.1
) -> torch.Tensor:
    """Per-pixel loss weight, higher where a pixel differs from the image's median colour.

    Small objects on flat backgrounds cover a few percent of the pixels; unweighted, a VAE
    learns the background and blurs the objects away.
    """
    median = images.flatten(2).median(dim=2).values[:, :, None, None]
    differs = (images - median).abs().amax(dim=1, keepdim=True) > threshold
    return 1.0 + boost * differs.float()


def vae_loss(
    vae: AutoencoderKL, images: torch.Tensor, kl_weight: float, generator=None
) -> tuple[torch.Tensor, dict[str, float]]:
    """images (N, 3, H, W) in [-1, 1] → loss, logs. L1 + L2 weighted by saliency, plus KL."""
    posterior = vae.encode(images).latent_dist
    z = posterior.sample(generator)
    recon = vae.decode(z).sample
    w = salient_weight(images)
    err = recon - images
    rec = (w * (err.abs() + err.square())).mean()
    kl = posterior.kl().mean() / images[0].numel()
    loss = rec + kl_weight * kl
    return loss, {"rec": rec.item(), "kl": kl.item()}


def diffusion_loss(
    unet: UNet3DModel,
    scheduler: DDPMScheduler,
    latents: torch.Tensor,
    context: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Denoising loss on clean latents (B, C, F, h, w), in the parameterisation the UNet's
    config names. Imagen Video uses v = alpha_t eps - sigma_t x0 (Salimans & Ho 2022, eq. 7);
    it avoids the colour shift of eps-prediction at high noise."""
    b = latents.shape[0]
    device = latents.device
    noise = torch.randn(latents.shape, generator=generator, device=device, dtype=latents.dtype)
    t = torch.randint(
        0, scheduler.config.num_train_timesteps, (b,), generator=generator, device=device
    )
    noisy = scheduler.add_noise(latents, noise, t)
    if unet.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, t)
    else:
        target = noise
    pred = unet(noisy, t, context)
    loss = F.mse_loss(pred.float(), target.float())
    return loss, {"mse": loss.item()}
