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
    pipe = TextToVideoPipeline(
        trainer.ema_model(),
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
