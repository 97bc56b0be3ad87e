"""Training the motion planner (``models.motion_planner``) on the shapes world's captions.

Captions only: no clip is rendered, so a planner trains in a minute or two on a CPU. Each
caption's label is its scene's motion, the same one the trainer animates a clip's first frame
by (``WorldClips``' "motion"): one object's, or none for two objects.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vidsynth.models.motion_planner import MotionPlanner
from vidsynth.models.text_encoder import TextEncoder
from vidsynth.training.data import object_motion, path_motion
from vidsynth.world.spec import (
    BASE_FPS,
    DEFAULT_SPEED,
    DIRECTIONS,
    SPEEDS,
    ObjectSpec,
    SceneSpec,
)

log = logging.getLogger(__name__)


def world_motions() -> list[list[float]]:
    """The codebook (per base frame, rows of ``first_frame.motion_guide``): standing still,
    every direction at every speed, growing, shrinking and rotating."""
    kinds = [("still", DEFAULT_SPEED)]
    kinds += [(d, speed) for d in DIRECTIONS for speed in SPEEDS]
    kinds += [(m, DEFAULT_SPEED) for m in ("growing", "shrinking", "rotating")]
    # the same rows the trainer's guide uses for a clip of that motion
    return [list(object_motion(ObjectSpec("square", "red", motion=m, speed=v))) for m, v in kinds]


def motion_name(row: Sequence[float]) -> str:
    """The world's name of a planned motion (a codebook row): a direction, growing, shrinking,
    rotating or still."""
    vx, vy, growth, spin = [*row, 0.0, 0.0][:4]
    if vx or vy:
        if abs(vx) >= abs(vy):
            return "right" if vx > 0 else "left"
        return "down" if vy > 0 else "up"
    if growth:
        return "growing" if growth > 0 else "shrinking"
    return "rotating" if spin else "still"


def scene_label(scene: SceneSpec, codebook: Sequence[Sequence[float]]) -> int:
    """The codebook entry of a scene's motion (two objects: standing still)."""
    book = np.asarray(codebook)
    return int(np.abs(book - np.asarray(path_motion(scene))).sum(axis=1).argmin())


def caption_batch(
    rng: np.random.Generator, size: int, codebook: Sequence[Sequence[float]]
) -> tuple[list[str], torch.Tensor]:
    """`size` training captions (the eval prompts left out, as for the UNet) and labels."""
    from vidsynth.evaluation.prompts import eval_prompt_strings, normalise
    from vidsynth.world.captions import random_caption
    from vidsynth.world.sampling import sample_scene

    held_out = eval_prompt_strings()
    captions, labels = [], []
    for _ in range(size):
        scene = sample_scene(rng, int(rng.choice([1, 2], p=[0.75, 0.25])))
        caption = random_caption(scene, rng)
        while normalise(caption) in held_out:
            caption = random_caption(scene, rng)
        captions.append(caption)
        labels.append(scene_label(scene, codebook))
    return captions, torch.tensor(labels)


@dataclass
class PlannerReport:
    steps: int
    train_accuracy: float  # on the last 10 batches, before each step
    held_out_accuracy: float  # on fresh captions of a seed the run never drew


def accuracy(
    planner: MotionPlanner, text_encoder: TextEncoder, captions: list[str], labels: torch.Tensor
) -> float:
    with torch.no_grad():
        logits = planner(text_encoder(captions).float())
    return float((logits.argmax(-1) == labels).float().mean())


def train_planner(
    text_encoder: TextEncoder,
    *,
    steps: int = 400,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
) -> tuple[MotionPlanner, PlannerReport]:
    """A planner for `text_encoder`'s token states, trained with cross-entropy and Adam."""
    torch.manual_seed(seed)
    codebook = world_motions()
    planner = MotionPlanner(codebook, hidden_size=text_encoder.hidden_size, fps=BASE_FPS)
    optim = torch.optim.AdamW(planner.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, steps)
    rng = np.random.default_rng([seed, 1])
    recent: list[float] = []
    for step in range(steps):
        captions, labels = caption_batch(rng, batch_size, codebook)
        with torch.no_grad():
            context = text_encoder(captions).float()
        logits = planner(context)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optim.zero_grad()
        loss.backward()
        optim.step()
        sched.step()
        recent = [*recent, float((logits.argmax(-1) == labels).float().mean())][-10:]
        if step % 100 == 0 or step == steps - 1:
            log.info("planner step %d: loss %.4f, accuracy %.3f", step, loss.item(), recent[-1])
    captions, labels = caption_batch(np.random.default_rng([seed, 2]), 512, codebook)
    held_out = accuracy(planner.eval(), text_encoder, captions, labels)
    return planner, PlannerReport(steps, float(np.mean(recent)), held_out)
