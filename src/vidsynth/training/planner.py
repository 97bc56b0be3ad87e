"""Training the motion planner (``models.motion_planner``) on the shapes world's captions.

Captions only: no clip is rendered, so a planner trains in a minute or two on a CPU. A
caption's labels are, per object in the order it names them, its motion (the same one the
trainer animates that object in a clip's first frame by, ``WorldClips``' "motion") and its
colour.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidsynth.models.motion_planner import MotionPlanner
from vidsynth.models.text_encoder import TextEncoder
from vidsynth.training.checkpoint import CheckpointStore
from vidsynth.training.data import MAX_OBJECTS, object_motion, world_palette
from vidsynth.world.spec import (
    BASE_FPS,
    COLOURS,
    DEFAULT_SPEED,
    DIRECTIONS,
    SHAPES,
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


def object_label(obj: ObjectSpec, codebook: Sequence[Sequence[float]]) -> int:
    """The codebook entry of one object's motion."""
    book = np.asarray(codebook)
    return int(np.abs(book - np.asarray(object_motion(obj))).sum(axis=1).argmin())


def mention_order(caption: str, scene: SceneSpec) -> list[ObjectSpec]:
    """The scene's objects in the order the caption names them, told apart by their colour
    words (a scene's objects never share a colour, and no background shares a name with an
    object on it)."""

    def at(obj: ObjectSpec) -> int:
        found = re.search(rf"\b{obj.colour}\b", caption.lower())
        return found.start() if found else len(caption)

    return sorted(scene.objects, key=at)


IGNORE = -100  # cross_entropy's ignore_index: a slot with no object has no motion


def caption_labels(
    caption: str, scene: SceneSpec, codebook: Sequence[Sequence[float]], slots: int
) -> tuple[list[int], list[int]]:
    """A caption's targets (``MotionPlanner.forward``'s): motion codebook entries, first the
    lone object's (IGNORE for two objects), then per slot the k-th object's named (IGNORE past
    the last); and per slot that object's colour, an index in the world's palette
    (len(COLOURS): no k-th object)."""
    objects = mention_order(caption, scene)
    motions = [object_label(o, codebook) for o in objects][:slots]
    colours = [COLOURS.index(o.colour) for o in objects][:slots]
    lone = motions[0] if len(objects) == 1 else IGNORE
    missing = slots - len(motions)
    return [lone, *motions] + [IGNORE] * missing, colours + [len(COLOURS)] * missing


def shape_labels(caption: str, scene: SceneSpec, slots: int) -> list[int]:
    """A caption's shape targets (``MotionPlanner.shape_logits``'): as ``caption_labels``'
    motions, the lone object's shape first (IGNORE for two objects), then the k-th object's
    named per slot (IGNORE past the last), indices in the world's SHAPES."""
    shapes = [SHAPES.index(o.shape) for o in mention_order(caption, scene)][:slots]
    lone = shapes[0] if len(scene.objects) == 1 else IGNORE
    return [lone, *shapes] + [IGNORE] * (slots - len(shapes))


def caption_batch(
    rng: np.random.Generator, size: int, codebook: Sequence[Sequence[float]], slots: int = 2
) -> tuple[list[str], torch.Tensor, torch.Tensor, torch.Tensor]:
    """`size` training captions (the eval prompts left out, as for the UNet), a quarter of
    them of two objects, with their motion labels (B, 1 + slots), colour labels (B, slots)
    (``caption_labels``) and shape labels (B, 1 + slots) (``shape_labels``). (Half of two
    objects read the lone object's motion of 48 val1 paraphrases of 64 instead of 53: it
    learns from one-object captions only.)"""
    from vidsynth.evaluation.prompts import eval_prompt_strings, normalise
    from vidsynth.world.captions import random_caption
    from vidsynth.world.sampling import sample_scene

    held_out = eval_prompt_strings()
    captions, motions, colours, shapes = [], [], [], []
    for _ in range(size):
        scene = sample_scene(rng, int(rng.choice([1, 2], p=[0.75, 0.25])))
        caption = random_caption(scene, rng)
        while normalise(caption) in held_out:
            caption = random_caption(scene, rng)
        captions.append(caption)
        motion, colour = caption_labels(caption, scene, codebook, slots)
        motions.append(motion)
        colours.append(colour)
        shapes.append(shape_labels(caption, scene, slots))
    return captions, torch.tensor(motions), torch.tensor(colours), torch.tensor(shapes)


@dataclass
class PlannerReport:
    steps: int
    train_accuracy: float  # captions read wholly right, last 10 batches, before each step
    held_out_accuracy: float  # the same on fresh captions of a seed the run never drew


def slots_right(
    logits: tuple[torch.Tensor, torch.Tensor | None],
    motions: torch.Tensor,
    colours: torch.Tensor,
    shape: torch.Tensor | None = None,
    shapes: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per caption (B,), whether every pooling is right: the motion of each object named (and
    of a lone one), the colour (or "none") of every slot, and with `shape` logits, the shape
    of each object named."""
    motion, colour = logits
    ok = ((motion.argmax(-1) == motions) | (motions == IGNORE)).all(dim=1)
    if colour is not None:
        ok &= (colour.argmax(-1) == colours).all(dim=1)
    if shape is not None and shapes is not None:
        ok &= ((shape.argmax(-1) == shapes) | (shapes == IGNORE)).all(dim=1)
    return ok


def accuracy(
    planner: MotionPlanner,
    text_encoder: TextEncoder,
    captions: list[str],
    motions: torch.Tensor,
    colours: torch.Tensor,
    shapes: torch.Tensor | None = None,
) -> float:
    with torch.no_grad():
        context = text_encoder(captions).float()
        shape = planner.shape_logits(context) if planner.config.shapes else None
        right = slots_right(planner(context), motions, colours, shape, shapes)
    return float(right.float().mean())


def planner_loss(
    logits: tuple[torch.Tensor, torch.Tensor | None],
    motions: torch.Tensor,
    colours: torch.Tensor,
    shape: torch.Tensor | None = None,
    shapes: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of every slot's motion (objects named only), colour (or "none") and, with
    `shape` logits, shape (objects named only)."""
    motion, colour = logits
    ce = torch.nn.functional.cross_entropy
    loss = ce(motion.flatten(0, 1), motions.flatten(), ignore_index=IGNORE)
    if colour is not None:
        loss = loss + ce(colour.flatten(0, 1), colours.flatten())
    if shape is not None and shapes is not None:
        loss = loss + ce(shape.flatten(0, 1), shapes.flatten(), ignore_index=IGNORE)
    return loss


def train_planner(
    text_encoder: TextEncoder,
    *,
    steps: int = 400,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    checkpoints: str | Path | None = None,
    checkpoint_every: int = 100,
    name_weight: float | None = None,
) -> tuple[MotionPlanner, PlannerReport]:
    """A planner for `text_encoder`'s token states with a slot per object a world caption can
    name, trained with cross-entropy and Adam; `name_weight` is its config's (how much a lone
    object's shape reading counts the shapes' names; training does not use it).

    With `checkpoints` (a folder), the run saves itself there every `checkpoint_every` steps
    and a run with the same arguments picks up from the latest save: the same batches follow,
    so a run killed and resumed ends where an unbroken one would."""
    torch.manual_seed(seed)
    codebook = world_motions()
    planner = MotionPlanner(
        codebook,
        hidden_size=text_encoder.hidden_size,
        fps=BASE_FPS,
        slots=MAX_OBJECTS,
        colours=world_palette(),
        max_length=max(64, text_encoder.max_length),
        shapes=list(SHAPES),
        name_weight=name_weight,
    )
    optim = torch.optim.AdamW(planner.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, steps)
    rng = np.random.default_rng([seed, 1])
    recent: list[float] = []
    store = CheckpointStore(checkpoints) if checkpoints is not None else None
    run = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed}
    parts = {"planner": planner, "optimizer": optim, "schedule": sched}
    saved = store.resume(run, parts) if store is not None else None
    first = 0
    if saved is not None:
        _, state = saved
        rng.bit_generator.state = state["rng"]
        first, recent = state["step"], state["recent"]
        log.info("planner: resumed at step %d from %s", first, store.root)
    for step in range(first, steps):
        captions, motions, colours, shapes = caption_batch(rng, batch_size, codebook)
        with torch.no_grad():
            context = text_encoder(captions).float()
        logits, shape = planner(context), planner.shape_logits(context)
        loss = planner_loss(logits, motions, colours, shape, shapes)
        optim.zero_grad()
        loss.backward()
        optim.step()
        sched.step()
        right = slots_right(logits, motions, colours, shape, shapes).float().mean()
        recent = [*recent, float(right)][-10:]
        if step % 100 == 0 or step == steps - 1:
            log.info("planner step %d: loss %.4f, accuracy %.3f", step, loss.item(), recent[-1])
        done = step + 1
        if store is not None and (done % checkpoint_every == 0 or done == steps):
            tensors = {name: part.state_dict() for name, part in parts.items()}
            state = {"run": run, "rng": rng.bit_generator.state, "recent": recent}
            store.save(done, tensors, state)
    held = caption_batch(np.random.default_rng([seed, 2]), 512, codebook)
    held_out = accuracy(planner.eval(), text_encoder, *held)
    return planner, PlannerReport(steps, float(np.mean(recent)), held_out)
