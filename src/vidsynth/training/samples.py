"""Sample videos during training, scored by the world's judge when prompts are world captions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vidsynth.training.trainer import Trainer


def write_samples(trainer: Trainer, folder: Path, seed: int = 0) -> dict:
    """Generate each sample prompt with the EMA weights; write MP4s and scores.json."""
    from vidsynth.pipelines.text_to_video import Defaults, TextToVideoPipeline
    from vidsynth.world.judge import judge
    from vidsynth.world.parse import parse_caption

    config = trainer.config
    noise = {
        **trainer.noise_config,
        "_class_name": "DDIMScheduler",
        "prediction_type": trainer.unwrapped.config.prediction_type,
    }
    unet = trainer.ema_model()
    if unet.config.first_frame_motion and trainer.planner is None:
        return {}  # a UNet that follows planned motion, before any planner exists for it
    pipe = TextToVideoPipeline(
        unet,
        trainer.vae,
        trainer.text_encoder,
        noise,
        defaults=Defaults(
            num_frames=config.data.num_frames,
            height=config.data.size,
            width=config.data.size,
            fps=config.data.fps,
            num_inference_steps=config.train.sample_steps,
            **{
                k: v
                for k, v in config.model.defaults.items()
                if k in ("guidance_scale", "scheduler")
            },
        ),
        planner=trainer.planner,
    )
    folder.mkdir(parents=True, exist_ok=True)
    scores = {}
    for i, prompt in enumerate(config.train.sample_prompts):
        result = pipe(prompt, seed=seed + i)
        result.save(folder / f"{i:02d}.mp4")
        try:
            verdict = judge(result.frames, parse_caption(prompt))
            scores[prompt] = verdict.accuracy
        except ValueError:
            scores[prompt] = None  # not a world caption: nothing to judge
    (folder / "scores.json").write_text(json.dumps(scores, indent=2))
    return scores


def write_sr_samples(trainer: Trainer, folder: Path, clips: int = 2) -> dict:
    """Super-resolve a few held-out world clips with the EMA weights; write MP4s (ours and the
    true render) and metrics.json (PSNR/SSIM against the truth and the baselines)."""
    from vidsynth.evaluation.super_resolution import evaluate_sr
    from vidsynth.pipelines.super_resolution import SR_PIPELINES
    from vidsynth.pipelines.text_to_video import Defaults

    config = trainer.config
    noise = {
        **trainer.noise_config,
        "_class_name": "DDIMScheduler",
        "prediction_type": trainer.unwrapped.config.prediction_type,
    }
    picked = {
        k: v for k, v in config.model.defaults.items() if k in ("guidance_scale", "scheduler")
    }
    sr = trainer.sr
    pipe = SR_PIPELINES[config.task](
        trainer.ema_model(),
        trainer.text_encoder,
        noise,
        vae=trainer.vae,
        factor=sr.factor,
        noise_aug_level=sr.noise_aug_level,
        latent_residual=sr.latent_residual,
        motion_compensation=sr.motion_compensation,
        defaults=Defaults(
            fps=config.data.fps,
            num_inference_steps=config.train.sample_steps,
            **{"guidance_scale": 1.0, **picked},
        ),
    )
    data = config.data
    if config.task == "spatial-sr":
        geometry = {"low_size": data.size // sr.factor, "num_frames": data.num_frames}
        geometry["fps"] = data.fps
    else:
        geometry = {"size": data.size, "num_frames": data.num_frames // sr.factor}
        geometry["fps"] = data.fps / sr.factor
    report = evaluate_sr(pipe, clips=clips, save_dir=folder, **geometry).to_dict()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(report, indent=2))
    return report
