"""Losses: the VAE's reconstruction objective and the video UNet's v-prediction objective."""

from __future__ import annotations

import torch
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


def min_snr_weight(
    scheduler: DDPMScheduler, t: torch.Tensor, gamma: float, prediction_type: str
) -> torch.Tensor:
    """Per-sample loss weight of Min-SNR-γ (Hang et al. 2023, eq. 11), one per timestep in t.

    Clamping the SNR at γ stops the nearly clean timesteps, which are easy, from dominating the
    gradient; the paper reports ~3× faster convergence. The weight is min(SNR, γ) expressed in
    the parameterisation trained: divided by SNR for ε, by SNR + 1 for v.
    """
    alphas = scheduler.alphas_cumprod.to(t.device)[t].float()
    snr = alphas / (1 - alphas).clamp_min(1e-8)
    clamped = snr.clamp(max=gamma)
    if prediction_type == "v_prediction":
        return clamped / (snr + 1)
    return clamped / snr.clamp_min(1e-8)


def sample_timesteps(
    num_train_timesteps: int,
    batch: int,
    shift: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Training timesteps, uniform for `shift` = 1; `shift` > 1 draws noisier ones more often.

    u ~ U[0, 1) is mapped to shift·u / (1 + (shift − 1)·u), the timestep shift of SD3
    (Esser et al. 2024, eq. 23). A clip's layout and its motion are decided at the highest
    noise levels, where a uniform draw spends few samples.
    """
    u = torch.rand(batch, generator=generator, device=device)
    frac = shift * u / (1 + (shift - 1) * u)
    return (frac * num_train_timesteps).long().clamp(max=num_train_timesteps - 1)


def diffusion_loss(
    unet: UNet3DModel,
    scheduler: DDPMScheduler,
    latents: torch.Tensor,
    context: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    snr_gamma: float = 0.0,
    timestep_shift: float = 1.0,
    concat: torch.Tensor | None = None,
    timestep_cond: torch.Tensor | None = None,
    independent_frames: bool = False,
    frame_index: torch.Tensor | None = None,
    prediction_type: str | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Denoising loss on clean latents (B, C, F, h, w), in the parameterisation the UNet's
    config names. Imagen Video uses v = alpha_t eps - sigma_t x0 (Salimans & Ho 2022, eq. 7);
    it avoids the colour shift of eps-prediction at high noise. `snr_gamma` > 0 weights the
    timesteps by Min-SNR-γ; 0 leaves them uniform. `timestep_shift` > 1 draws the noisier
    timesteps more often (`sample_timesteps`). `concat` and `timestep_cond` go to the
    UNet as they are (a super-resolution stage's conditioning and augmentation level), and so
    do `independent_frames` (the batch holds single images: temporal layers bypassed) and
    `frame_index` (each image's time in its clip, for a UNet with a frame embedding).
    `prediction_type` overrides the UNet config's (an image UNet's lives in its scheduler's)."""
    b = latents.shape[0]
    device = latents.device
    noise = torch.randn(latents.shape, generator=generator, device=device, dtype=latents.dtype)
    if timestep_shift == 1.0:  # the plain draw, so that runs from before the option replay
        t = torch.randint(
            0, scheduler.config.num_train_timesteps, (b,), generator=generator, device=device
        )
    else:
        t = sample_timesteps(
            scheduler.config.num_train_timesteps, b, timestep_shift, generator, device
        )
    noisy = scheduler.add_noise(latents, noise, t)
    prediction = prediction_type or unet.config.prediction_type
    target = scheduler.get_velocity(latents, noise, t) if prediction == "v_prediction" else noise
    pred = unet(
        noisy,
        t,
        context,
        concat=concat,
        timestep_cond=timestep_cond,
        independent_frames=independent_frames,
        frame_index=frame_index,
    )
    per_sample = (pred.float() - target.float()).square().flatten(1).mean(1)
    mse = per_sample.mean()
    if snr_gamma > 0:
        loss = (min_snr_weight(scheduler, t, snr_gamma, prediction) * per_sample).mean()
    else:
        loss = mse
    return loss, {"mse": mse.item()}
