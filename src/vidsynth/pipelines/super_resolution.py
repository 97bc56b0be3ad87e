"""Super-resolution stages of a cascade (Imagen Video): more pixels, or more frames, of a video.

Each is a diffusion model conditioned on the previous stage's output by channel concatenation,
with noise conditioning augmentation (vidsynth.models.sr_conditioning):

- `SpatialSRPipeline`: (F, h, w) → (F, h·k, w·k), in the VAE's latent space. The low-resolution
  frames, resized to the latent grid of the output, are the conditioning (Stable Diffusion's
  ×4 upscaler works this way).
- `TemporalSRPipeline`: (F, H, W) → (F·k, H, W) at k times the frame rate, in pixel space. The
  input frames are kept as they are at positions 0, k, 2k, ...; the model draws each new
  frame's residual over the blend of its neighbours, where they differ.

Both take uint8 frames (or a video path), a prompt (optional: the input carries most of the
content) and a seed, and return `VideoResult`s like the other pipelines; clip i depends only on
(video i, prompt i, seed i).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from diffusers import AutoencoderKL

from vidsynth.devices import available_memory
from vidsynth.errors import InvalidParameter
from vidsynth.models.sr_conditioning import (
    RESIDUAL_SCALE,
    SPATIAL_RESIDUAL_SCALE,
    augment,
    condition_channels,
    interpolation,
    level_features,
    neighbours,
    new_frame_positions,
    residual_base,
    sample_channels,
    spatial_condition,
)
from vidsynth.models.text_encoder import TextEncoder
from vidsynth.models.unet3d import UNet3DModel
from vidsynth.models.vae import decode_to_uint8
from vidsynth.pipelines.conditioning import PromptAndScheduler
from vidsynth.pipelines.memory import estimate_peak_bytes
from vidsynth.pipelines.params import GenerationParams, check_noise_aug_level
from vidsynth.pipelines.result import VideoResult
from vidsynth.pipelines.text_to_video import (
    Defaults,
    MemoryBudgetExceeded,
    ProgressFn,
    TextToVideoPipeline,
)
from vidsynth.pipelines.video_to_video import VideoInput, frames_to_pixels, load_frames
from vidsynth.sampling.denoise import StepCallback, denoise
from vidsynth.sampling.noise import derive_seed, seeded_noise

# The augmentation noise of a clip is its own stream of the clip's seed (sampling.noise).
AUG_NOISE_STREAM = 0xA06
# Decode at most this many pixels per VAE call (2 frames at 256x256, 32 at 64x64, at least
# 1): peak memory independent of the size and length of the clip.
DECODE_PIXELS = 2 * 256 * 256


class SuperResolutionPipeline(PromptAndScheduler):
    """Shared by the spatial and temporal stages: prompts, seeds, guided sampling, results."""

    task: ClassVar[str] = ""
    needs_vae: ClassVar[bool] = False

    def __init__(
        self,
        unet: UNet3DModel,
        text_encoder: TextEncoder,
        scheduler_config: dict[str, Any],
        *,
        factor: int,
        vae: AutoencoderKL | None = None,
        noise_aug_level: float = 0.1,
        latent_residual: bool = False,
        motion_compensation: bool = False,
        defaults: Defaults | None = None,
        name: str = "",
        memory_budget: int | None = None,
    ) -> None:
        if latent_residual and self.task != "spatial-sr":
            raise ValueError("latent_residual applies to spatial super-resolution only")
        if motion_compensation and self.task != "temporal-sr":
            raise ValueError("motion_compensation applies to temporal super-resolution only")
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
            raise ValueError(f"a super-resolution factor must be an integer >= 2, got {factor!r}")
        if self.needs_vae and vae is None:
            raise ValueError(f"a {self.task} model needs its VAE")
        self.unet = unet.eval()
        self.vae = vae.eval() if vae is not None else None
        self.text_encoder = text_encoder.eval()
        self.scheduler_config = dict(scheduler_config)
        self.factor = factor
        self.noise_aug_level = check_noise_aug_level(noise_aug_level)
        self.latent_residual = latent_residual
        self.motion_compensation = motion_compensation
        self.defaults = defaults or Defaults()
        self.name = name
        self.memory_budget = memory_budget
        self._empty_embedding: torch.Tensor | None = None
        config = unet.config
        latent = int(vae.config.latent_channels) if vae is not None else 4
        sample = sample_channels(self.task, latent)
        need = sample + condition_channels(self.task, latent)
        if (
            config.in_channels != need
            or config.out_channels != sample
            or not config.time_cond_proj_dim
        ):
            raise InvalidParameter(
                f"model {name!r} is not a {self.task} model: its UNet maps "
                f"{config.in_channels} to {config.out_channels} channels with "
                f"time_cond_proj_dim={config.time_cond_proj_dim}; {self.task} needs {need} to "
                f"{sample} and a time_cond_proj_dim (the augmentation level)"
            )

    @classmethod
    def from_pipeline(
        cls, pipe: TextToVideoPipeline, *, factor: int, noise_aug_level: float = 0.1
    ) -> SuperResolutionPipeline:
        """An SR pipeline over a loaded pipeline's components (no weights are copied)."""
        return cls(
            pipe.unet,
            pipe.text_encoder,
            pipe.scheduler_config,
            vae=pipe.vae,
            factor=factor,
            noise_aug_level=noise_aug_level,
            defaults=pipe.defaults,
            name=pipe.name,
            memory_budget=pipe.memory_budget,
        )

    # -- properties ------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def spatial_factor(self) -> int:
        """Output sides must be multiples of this (the VAE's, or the UNet's downsampling)."""
        raise NotImplementedError

    def to(self, device: torch.device | str) -> SuperResolutionPipeline:
        for module in (self.unet, self.vae, self.text_encoder):
            if module is not None:
                module.to(device)
        self._empty_embedding = None
        return self

    # -- what the two stages do differently --------------------------------------------------
    def output_geometry(self, frames: np.ndarray) -> tuple[int, int, int]:
        """(num_frames, height, width) of the output for input frames (F, H, W, 3)."""
        raise NotImplementedError

    def output_fps(self, fps: float | None, input_fps: float | None) -> float:
        """The output's frame rate: `fps` if given, else derived from the input's."""
        raise NotImplementedError

    def sample_shape(self, batch: int, params: GenerationParams) -> tuple[int, ...]:
        """Shape of what the UNet denoises for a batch of outputs `params` describes."""
        raise NotImplementedError

    def prepare(
        self,
        frames: Sequence[np.ndarray],
        params: GenerationParams,
        level: float,
        aug_seeds: Sequence[int],
    ) -> tuple[torch.Tensor, Any]:
        """The UNet's `concat` input (B, Cc, F, h, w), noise-augmented to `level`, and what
        `finish` needs besides the denoised sample."""
        raise NotImplementedError

    def finish(
        self,
        sample: torch.Tensor,
        frames: Sequence[np.ndarray],
        state: Any,
        params: GenerationParams,
        decode_chunk_size: int,
    ) -> np.ndarray:
        """uint8 output clips (B, F, H, W, 3) from the denoised sample."""
        raise NotImplementedError

    # -- building blocks -------------------------------------------------------------------
    def _pixels(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """Same-sized uint8 input clips (F, h, w, 3) as one float batch (B, 3, F, h, w)."""
        h, w = frames[0].shape[1:3]
        return torch.cat([frames_to_pixels(f, h, w, self.device) for f in frames])

    def check_params(self, batch: int, **kwargs: Any) -> GenerationParams:
        """Resolve defaults, validate, and refuse requests that cannot fit in memory."""
        d = self.defaults
        pick = lambda key, default: default if kwargs.get(key) is None else kwargs[key]
        params = GenerationParams.checked(
            num_frames=kwargs["num_frames"],
            height=kwargs["height"],
            width=kwargs["width"],
            num_inference_steps=pick("num_inference_steps", d.num_inference_steps),
            guidance_scale=pick("guidance_scale", d.guidance_scale),
            fps=pick("fps", d.fps),
            spatial_factor=self.spatial_factor,
        )
        budget = self.memory_budget or available_memory(self.device)
        if budget is not None:
            shape = self.sample_shape(batch * (2 if params.guidance_scale > 1 else 1), params)
            need = estimate_peak_bytes(
                self.unet.config,
                batch=shape[0],
                num_frames=shape[2],
                latent_height=shape[3],
                latent_width=shape[4],
                bytes_per_element=torch.finfo(self.dtype).bits // 8,
                num_parameters=0,
            )
            if need > budget:
                gib = 1024**3
                raise MemoryBudgetExceeded(
                    f"{params.num_frames} frames at {params.width}x{params.height} need about "
                    f"{need / gib:.1f} GiB on {self.device}, more than the {budget / gib:.1f} "
                    "GiB available; give a shorter or smaller input"
                )
        return params

    @torch.inference_mode()
    def generate(
        self,
        concat: torch.Tensor,
        level: float,
        prompts: Sequence[str],
        negative_prompts: Sequence[str],
        seeds: Sequence[int],
        params: GenerationParams,
        *,
        scheduler: str | None = None,
        progress: ProgressFn | None = None,
    ) -> torch.Tensor:
        """Denoise seeded noise into the UNet's sample, conditioned on `concat` and the level."""
        unet = self.unet
        sched = self.scheduler(scheduler)
        sched.set_timesteps(params.num_inference_steps, device=self.device)
        shape = self.sample_shape(len(seeds), params)
        x = seeded_noise(shape, seeds, device=self.device, dtype=self.dtype)
        x = x * sched.init_noise_sigma
        concat = concat.to(self.device, self.dtype)
        features = level_features(level, unet.config.time_cond_proj_dim, x)
        features = features.to(self.device, self.dtype)

        def model(x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
            # with guidance x is the [uncond, cond] doubled batch: both see the same input
            reps = x.shape[0] // concat.shape[0]
            c = concat if reps == 1 else concat.repeat(reps, 1, 1, 1, 1)
            f = features if reps == 1 else features.repeat(reps, 1)
            return unet(x.to(unet.dtype), t, context, concat=c, timestep_cond=f)

        guided = params.guidance_scale > 1.0
        callback: StepCallback | None = None
        if progress is not None:
            callback = lambda i, total, t: progress("denoise", i + 1, total)
        return denoise(
            model,
            x,
            sched,
            num_inference_steps=params.num_inference_steps,
            timesteps=sched.timesteps,
            context=self.encode_prompts(prompts),
            uncond_context=self.encode_prompts(negative_prompts) if guided else None,
            guidance_scale=params.guidance_scale,
            callback=callback,
        )

    # -- the main entry points ---------------------------------------------------------------
    def batch(
        self,
        videos: Sequence[VideoInput],
        prompts: Sequence[str] | None = None,
        negative_prompt: str | Sequence[str] | None = None,
        *,
        seeds: Sequence[int | None] | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        noise_aug_level: float | None = None,
        fps: float | None = None,
        scheduler: str | None = None,
        decode_chunk_size: int | None = None,
        progress: ProgressFn | None = None,
    ) -> list[VideoResult]:
        """Upsample video i with prompt i (default "") and seed i; clip i depends only on those.

        `noise_aug_level` in [0, 1] is how much the input is noised before the model sees it
        (default: the model's own); higher hides more of the previous stage's artefacts and
        follows the input less closely. `fps` is the output's (default: from the input).
        """
        if isinstance(videos, str | os.PathLike | np.ndarray):
            raise InvalidParameter("videos must be a list with one video per prompt")
        loaded = [load_frames(v) for v in videos]
        if not loaded:
            raise InvalidParameter("no videos given")
        if prompts is None:
            prompts = [""] * len(loaded)
        prompts, negs, resolved = self.prepare_batch(prompts, negative_prompt, seeds)
        if len(loaded) != len(prompts):
            raise InvalidParameter(f"{len(loaded)} videos for {len(prompts)} prompts")
        frames = [f for f, _ in loaded]
        if any(f.shape != frames[0].shape for f in frames):
            raise InvalidParameter("videos in one batch must have the same frame count and size")
        level = self.noise_aug_level if noise_aug_level is None else noise_aug_level
        level = check_noise_aug_level(level)
        num_frames, height, width = self.output_geometry(frames[0])
        params = self.check_params(
            len(prompts),
            num_frames=num_frames,
            height=height,
            width=width,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            fps=self.output_fps(fps, loaded[0][1]),
        )
        if decode_chunk_size is None:
            decode_chunk_size = max(1, DECODE_PIXELS // (params.height * params.width))
        if progress is not None:
            progress("encode", 0, 1)
        aug_seeds = [derive_seed(s, AUG_NOISE_STREAM) for s in resolved]
        with torch.inference_mode():
            concat, state = self.prepare(frames, params, level, aug_seeds)
        if progress is not None:
            progress("encode", 1, 1)
        sample = self.generate(
            concat, level, prompts, negs, resolved, params, scheduler=scheduler, progress=progress
        )
        del concat
        if progress is not None:
            progress("decode", 0, 1)
        with torch.inference_mode():
            out = self.finish(sample, frames, state, params, decode_chunk_size)
        if progress is not None:
            progress("decode", 1, 1)
        info = {"task": self.task, "factor": self.factor, "noise_aug_level": level}
        return self.video_results(
            out, prompts, negs, resolved, params, scheduler=scheduler, info=info
        )

    def __call__(
        self,
        video: VideoInput,
        prompt: str = "",
        negative_prompt: str | None = None,
        *,
        seed: int | None = None,
        **kwargs: Any,
    ) -> VideoResult:
        """One upsampled clip; keyword arguments as in `batch`."""
        if not isinstance(prompt, str):
            raise InvalidParameter(
                f"prompt must be a string, got {type(prompt).__name__}; use .batch() for lists"
            )
        return self.batch([video], [prompt], negative_prompt, seeds=[seed], **kwargs)[0]


class SpatialSRPipeline(SuperResolutionPipeline):
    """(F, h, w) → (F, h·factor, w·factor) in latent space: `pipe(frames, "a prompt", seed=0)`."""

    task: ClassVar[str] = "spatial-sr"
    needs_vae: ClassVar[bool] = True

    @property
    def spatial_factor(self) -> int:
        assert self.vae is not None
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def output_geometry(self, frames: np.ndarray) -> tuple[int, int, int]:
        f, h, w = frames.shape[:3]
        k, vae = self.factor, self.spatial_factor
        if (h * k) % vae or (w * k) % vae:
            step = vae // np.gcd(vae, k)
            raise InvalidParameter(
                f"the input video is {w}x{h}: x{k} gives {w * k}x{h * k}, which is not a "
                f"multiple of {vae} (the VAE's downsampling); the input sides must be "
                f"multiples of {step}"
            )
        return f, h * k, w * k

    def output_fps(self, fps: float | None, input_fps: float | None) -> float:
        if fps is not None:
            return fps
        return input_fps if input_fps is not None else self.defaults.fps

    def sample_shape(self, batch: int, params: GenerationParams) -> tuple[int, ...]:
        assert self.vae is not None
        s = self.spatial_factor
        c = int(self.vae.config.latent_channels)
        return (batch, c, params.num_frames, params.height // s, params.width // s)

    def prepare(
        self,
        frames: Sequence[np.ndarray],
        params: GenerationParams,
        level: float,
        aug_seeds: Sequence[int],
    ) -> tuple[torch.Tensor, Any]:
        low = self._pixels(frames)
        s = self.spatial_factor
        cond = spatial_condition(low, (params.height // s, params.width // s))
        noise = seeded_noise(cond.shape, aug_seeds, device=self.device)
        base = None
        if self.latent_residual:  # the sample is a residual over these latents
            base = residual_base(self.vae, low, (params.height, params.width))
        return augment(cond, level, noise), base

    def finish(
        self,
        sample: torch.Tensor,
        frames: Sequence[np.ndarray],
        state: Any,
        params: GenerationParams,
        decode_chunk_size: int,
    ) -> np.ndarray:
        assert self.vae is not None
        if state is not None:  # latent_residual: state holds the bicubic upscale's latents
            sample = state.to(sample.dtype) + sample / SPATIAL_RESIDUAL_SCALE
        return decode_to_uint8(self.vae, sample, decode_chunk_size).numpy()


class TemporalSRPipeline(SuperResolutionPipeline):
    """(F, H, W) at r fps → (F·factor, H, W) at r·factor fps in pixel space: `pipe(frames)`.

    Input frame i is output frame i·factor, unchanged. Each new frame is the blend of its two
    neighbours (with `motion_compensation`, the neighbours moved along each pixel's motion) plus
    the residual the model draws, where the neighbours differ (elsewhere nothing moves and the
    blend is exact); the last factor − 1 frames extrapolate the last two known frames past the
    input's end.
    """

    task: ClassVar[str] = "temporal-sr"

    @property
    def spatial_factor(self) -> int:
        return 2 ** (len(self.unet.config.block_out_channels) - 1)

    def output_geometry(self, frames: np.ndarray) -> tuple[int, int, int]:
        f, h, w = frames.shape[:3]
        s = self.spatial_factor
        if h % s or w % s:
            raise InvalidParameter(
                f"the input video is {w}x{h}, which is not a multiple of {s} (the model's "
                "downsampling); temporal super-resolution keeps the size, so resize it first"
            )
        return f * self.factor, h, w

    def output_fps(self, fps: float | None, input_fps: float | None) -> float:
        if fps is not None:
            return fps
        if input_fps is not None:
            return input_fps * self.factor
        return self.defaults.fps  # the model's own output rate

    def sample_shape(self, batch: int, params: GenerationParams) -> tuple[int, ...]:
        new = params.num_frames // self.factor * (self.factor - 1)
        return (batch, 3, new, params.height, params.width)

    def prepare(
        self,
        frames: Sequence[np.ndarray],
        params: GenerationParams,
        level: float,
        aug_seeds: Sequence[int],
    ) -> tuple[torch.Tensor, Any]:
        known = self._pixels(frames)
        # base, motion mask and motion: of the clean input
        inter = interpolation(known, self.factor, self.motion_compensation)
        noise = seeded_noise(known.shape, aug_seeds, device=self.device)
        prev, nxt = neighbours(augment(known, level, noise), self.factor)
        return inter.condition(prev, nxt), inter

    def finish(
        self,
        sample: torch.Tensor,
        frames: Sequence[np.ndarray],
        state: Any,
        params: GenerationParams,
        decode_chunk_size: int,
    ) -> np.ndarray:
        inter = state
        residual = sample.float() / RESIDUAL_SCALE
        return self._with_new_frames(frames, inter.base + inter.motion * residual)

    def without_model(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (F·factor, H, W, 3): what this stage makes of a clip (F, H, W, 3) with a zero
        residual, i.e. its base alone (the blend, or the motion-compensated interpolation)."""
        known = self._pixels([frames])
        inter = interpolation(known, self.factor, self.motion_compensation)
        return self._with_new_frames([frames], inter.base)[0]

    def _with_new_frames(self, frames: Sequence[np.ndarray], new: torch.Tensor) -> np.ndarray:
        """Input clips (F, H, W, 3) with the new frames (B, 3, Fn, H, W) in [-1, 1] put in."""
        new = ((new.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        new = new.permute(0, 2, 3, 4, 1).cpu().numpy()
        k, f = self.factor, frames[0].shape[0]
        out = np.empty((len(frames), f * k, *frames[0].shape[1:]), np.uint8)
        out[:, ::k] = np.stack(frames)
        out[:, new_frame_positions(f, k)] = new
        return out


SR_PIPELINES: dict[str, type[SuperResolutionPipeline]] = {
    SpatialSRPipeline.task: SpatialSRPipeline,
    TemporalSRPipeline.task: TemporalSRPipeline,
}

__all__ = [
    "SR_PIPELINES",
    "SpatialSRPipeline",
    "SuperResolutionPipeline",
    "TemporalSRPipeline",
]
