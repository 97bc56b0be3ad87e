"""Video → video (SDEdit, Meng et al. 2022): noise an input video part-way, denoise with a prompt.

Any text-to-video model re-renders video this way; Zeroscope's two-stage recipe runs its XL
model over the 576w model's upscaled output. Same schedule truncation and noising as
diffusers' `VideoToVideoSDPipeline`, on a loaded `TextToVideoPipeline`'s components.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vidsynth.errors import InvalidParameter
from vidsynth.io.video import check_frames, read_video
from vidsynth.models.vae import encode_video
from vidsynth.pipelines.params import GenerationParams, check_strength
from vidsynth.pipelines.result import VideoResult
from vidsynth.pipelines.text_to_video import Defaults, ProgressFn, TextToVideoPipeline
from vidsynth.sampling.noise import seeded_noise

# A video file or frame folder path, uint8 frames (F, H, W, 3), or a list of frames/PIL images.
VideoInput = str | os.PathLike[str] | np.ndarray | Sequence[np.ndarray] | Sequence[Image.Image]

DEFAULT_STRENGTH = 0.6  # Zeroscope's suggested refining strength (0.6-0.7)


def load_frames(video: VideoInput) -> tuple[np.ndarray, float | None]:
    """uint8 RGB frames (F, H, W, 3), and their fps when read from a file."""
    if isinstance(video, str | os.PathLike):
        try:
            return read_video(Path(video))
        except (OSError, ValueError) as err:  # PyAV's errors are among these
            raise InvalidParameter(
                f"cannot use {os.fspath(video)!r} as input video: {err}"
            ) from err
    return check_frames(video), None


def frames_to_pixels(
    frames: np.ndarray, height: int, width: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """uint8 (F, H, W, 3) → float (1, 3, F, height, width) in [-1, 1].

    Resizing happens on float pixels (bicubic, antialiased when shrinking), so upscaling a
    base model's output for a refiner adds no extra 8-bit rounding.
    """
    x = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float() / 255 * 2 - 1
    if x.shape[-2:] != (height, width):
        x = F.interpolate(
            x, size=(height, width), mode="bicubic", align_corners=False, antialias=True
        ).clamp(-1, 1)
    return x.permute(1, 0, 2, 3).unsqueeze(0)


class VideoToVideoPipeline:
    """Re-render a video with a text-to-video model: `pipe("in.mp4", "a prompt", strength=0.6)`."""

    def __init__(self, t2v: TextToVideoPipeline) -> None:
        self.t2v = t2v  # shares its modules: no weights are copied

    @classmethod
    def from_pipeline(cls, pipe: TextToVideoPipeline) -> VideoToVideoPipeline:
        """The video-to-video pipeline over a loaded text-to-video pipeline's components."""
        return cls(pipe)

    @property
    def name(self) -> str:
        return self.t2v.name

    @property
    def device(self) -> torch.device:
        return self.t2v.device

    @property
    def dtype(self) -> torch.dtype:
        return self.t2v.dtype

    @property
    def defaults(self) -> Defaults:
        return self.t2v.defaults

    def to(self, device: torch.device | str) -> VideoToVideoPipeline:
        self.t2v.to(device)
        return self

    # -- building blocks -------------------------------------------------------------------
    @torch.inference_mode()
    def encode(
        self, frames: Sequence[np.ndarray], height: int, width: int, chunk_size: int = 8
    ) -> torch.Tensor:
        """Scaled VAE latents (B, C, F, h, w) of uint8 clips, resized to height × width.

        The posterior mean, not a sample: the input's encoding is deterministic and all the
        randomness is in the seeded noise.
        """
        vae = self.t2v.vae
        return torch.cat(
            [
                encode_video(vae, frames_to_pixels(f, height, width, self.device), chunk_size)
                for f in frames
            ]
        )

    @torch.inference_mode()
    def generate_latents(
        self,
        init_latents: torch.Tensor,
        prompts: Sequence[str],
        negative_prompts: Sequence[str],
        seeds: Sequence[int],
        params: GenerationParams,
        *,
        strength: float = DEFAULT_STRENGTH,
        scheduler: str | None = None,
        noise: torch.Tensor | None = None,
        progress: ProgressFn | None = None,
    ) -> torch.Tensor:
        """Noise `init_latents` to `strength` of the schedule and denoise them with the prompts."""
        if noise is None:
            noise = seeded_noise(init_latents.shape, seeds, device=self.device, dtype=self.dtype)
        return self.t2v.from_latents(
            prompts, negative_prompts, init_latents, noise, params, strength, scheduler, progress
        )

    # -- the main entry points ---------------------------------------------------------------
    def batch(
        self,
        videos: Sequence[VideoInput],
        prompts: Sequence[str],
        negative_prompt: str | Sequence[str] | None = None,
        *,
        strength: float = DEFAULT_STRENGTH,
        seeds: Sequence[int | None] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        fps: float | None = None,
        scheduler: str | None = None,
        noise: torch.Tensor | None = None,
        decode_chunk_size: int = 8,
        progress: ProgressFn | None = None,
    ) -> list[VideoResult]:
        """Re-render video i with prompt i and seed i; clip i depends only on those.

        Width and height default to the input's size; `strength` in (0, 1] is how much of the
        schedule is re-run: 0.3 keeps the layout, 1 starts from almost pure noise. `noise`
        (B, C, F, h, w) replaces the seeded noise, for comparisons with other implementations.
        """
        strength = check_strength(strength)
        if isinstance(videos, str | os.PathLike | np.ndarray):
            raise InvalidParameter("videos must be a list with one video per prompt")
        prompts, negs, resolved = self.t2v.prepare_batch(prompts, negative_prompt, seeds)
        loaded = [load_frames(v) for v in videos]
        if len(loaded) != len(prompts):
            raise InvalidParameter(f"{len(loaded)} videos for {len(prompts)} prompts")
        frames = [f for f, _ in loaded]
        num_frames, in_h, in_w = frames[0].shape[:3]
        if any(f.shape[:3] != frames[0].shape[:3] for f in frames):
            raise InvalidParameter("videos in one batch must have the same frame count and size")
        factor = self.t2v.vae_scale
        if (height is None or width is None) and (in_h % factor or in_w % factor):
            raise InvalidParameter(
                f"the input video is {in_w}x{in_h}, which is not a multiple of {factor} (the "
                f"VAE's downsampling); pass width and height to resize it, e.g. "
                f"{in_w - in_w % factor or factor}x{in_h - in_h % factor or factor}"
            )
        params = self.t2v.check_params(
            len(prompts),
            num_frames=num_frames,
            height=in_h if height is None else height,
            width=in_w if width is None else width,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            fps=fps if fps is not None else loaded[0][1],
        )
        if progress is not None:
            progress("encode", 0, 1)
        init = self.encode(frames, params.height, params.width, decode_chunk_size)
        if progress is not None:
            progress("encode", 1, 1)
        z = self.generate_latents(
            init,
            prompts,
            negs,
            resolved,
            params,
            strength=strength,
            scheduler=scheduler,
            noise=noise,
            progress=progress,
        )
        return self.t2v.results(
            z,
            prompts,
            negs,
            resolved,
            params,
            scheduler=scheduler,
            decode_chunk_size=decode_chunk_size,
            progress=progress,
            info={"task": "video-to-video", "strength": strength},
        )

    def __call__(
        self,
        video: VideoInput,
        prompt: str = "",
        negative_prompt: str | None = None,
        *,
        strength: float = DEFAULT_STRENGTH,
        seed: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        fps: float | None = None,
        scheduler: str | None = None,
        noise: torch.Tensor | None = None,
        decode_chunk_size: int = 8,
        progress: ProgressFn | None = None,
    ) -> VideoResult:
        """One re-rendered clip (see `batch`)."""
        if not isinstance(prompt, str):
            raise InvalidParameter(
                f"prompt must be a string, got {type(prompt).__name__}; use .batch() for lists"
            )
        return self.batch(
            [video],
            [prompt],
            negative_prompt,
            strength=strength,
            seeds=[seed],
            height=height,
            width=width,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            fps=fps,
            scheduler=scheduler,
            noise=noise,
            decode_chunk_size=decode_chunk_size,
            progress=progress,
        )[0]
