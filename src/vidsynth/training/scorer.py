"""Training the frame scorer (``models.frame_scorer``) on the shapes world's first frames.

Each rendered first frame is scored against its own caption, the other captions of the batch,
and captions of the same scene changed in one thing the image shows (``near_miss``: one
object's shape or colour, an object more or fewer, two objects' shapes swapped). The near
misses are what teach it shapes: captions of other scenes differ in so much that colour alone
would tell most of them apart. Half the frames go through the model's VAE and back, so the
scorer sees the softer edges the pipeline's frames have.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL

from vidsynth.models.frame_scorer import FrameScorer
from vidsynth.models.text_encoder import TextEncoder
from vidsynth.training.checkpoint import CheckpointStore
from vidsynth.world.spec import COLOURS, SHAPES, ObjectSpec, SceneSpec

log = logging.getLogger(__name__)


def _allowed(obj: ObjectSpec, scene: SceneSpec, others: list[ObjectSpec]) -> bool:
    """The world's rules for an object's colour: no white on white, none shared."""
    if obj.colour == "white" and scene.background == "white":
        return False
    return all(o.colour != obj.colour for o in others)


def _still_shape(obj: ObjectSpec) -> str | None:
    """The shape `obj` cannot take: a circle, if it rotates (the world never draws one)."""
    return "circle" if obj.motion == "rotating" else None


def near_miss(scene: SceneSpec, rng: np.random.Generator) -> SceneSpec:
    """A scene the first frame of `scene` does not show, differing from it in one thing."""
    objects = list(scene.objects)
    while True:
        kind = rng.choice(["shape", "shape", "shape", "colour", "count", "swap"])
        k = int(rng.integers(len(objects)))
        others = objects[:k] + objects[k + 1 :]
        if kind in ("shape", "colour"):
            if kind == "shape":
                shapes = [
                    s for s in SHAPES if s not in (objects[k].shape, _still_shape(objects[k]))
                ]
                new = dataclasses.replace(objects[k], shape=str(rng.choice(shapes)))
            else:
                colours = [c for c in COLOURS if c != objects[k].colour]
                new = dataclasses.replace(objects[k], colour=str(rng.choice(colours)))
            if _allowed(new, scene, others):
                objects[k] = new
                return dataclasses.replace(scene, objects=tuple(objects))
        elif kind == "count" and len(objects) > 1:
            return dataclasses.replace(scene, objects=(objects[k],))
        elif kind == "count":
            extra = ObjectSpec(str(rng.choice(SHAPES)), str(rng.choice(COLOURS)))
            if _allowed(extra, scene, objects):
                return dataclasses.replace(scene, objects=(objects[0], extra))
        elif kind == "swap" and len(objects) > 1 and objects[0].shape != objects[1].shape:
            a, b = objects
            if b.shape != _still_shape(a) and a.shape != _still_shape(b):
                swapped = (
                    dataclasses.replace(a, shape=b.shape),
                    dataclasses.replace(b, shape=a.shape),
                )
                return dataclasses.replace(scene, objects=swapped)


def scorer_batch(
    rng: np.random.Generator, size: int, negatives: int, image_size: int = 64
) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
    """`size` first frames (B, 3, S, S) in [0, 1]; the same frames drawn at a quarter of the
    size and scaled up (shapes without their corners, as a model that draws blobs draws them);
    their captions; and `negatives` near-miss captions per frame (B * negatives, frame-major).
    Captions are training captions (the eval prompts left out); two objects in a third of the
    scenes."""
    from vidsynth.evaluation.prompts import eval_prompt_strings, normalise
    from vidsynth.world.captions import random_caption
    from vidsynth.world.renderer import render
    from vidsynth.world.sampling import sample_scene

    held_out = eval_prompt_strings()

    def caption(scene: SceneSpec) -> str:
        text = random_caption(scene, rng)
        while normalise(text) in held_out:
            text = random_caption(scene, rng)
        return text

    def pixels(frames: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255

    images, small, captions, misses = [], [], [], []
    for _ in range(size):
        scene = sample_scene(rng, int(rng.choice([1, 2], p=[2 / 3, 1 / 3])))
        images.append(render(scene, image_size, frames=[0])[0])
        small.append(render(scene, image_size // 4, frames=[0])[0])
        captions.append(caption(scene))
        misses += [caption(near_miss(scene, rng)) for _ in range(negatives)]
    blobs = torch.nn.functional.interpolate(pixels(small), size=image_size, mode="bilinear")
    return pixels(images), blobs, captions, misses


@torch.no_grad()
def vae_round_trip(vae: AutoencoderKL, images: torch.Tensor) -> torch.Tensor:
    """Images (B, 3, H, W) in [0, 1] as the VAE gives them back."""
    x = images.to(vae.device, vae.dtype) * 2 - 1
    latents = vae.encode(x).latent_dist.mean
    return (vae.decode(latents).sample.float().cpu() / 2 + 0.5).clamp(0, 1)


def scorer_loss(
    scorer: FrameScorer,
    images: torch.Tensor,
    blobs: torch.Tensor,
    text: torch.Tensor,
    negatives: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of each image over every caption of the batch, its own first (texts
    (B * (1 + negatives), L, D): the B captions, then the near misses, frame-major), plus that
    of each caption over the batch's images and their `blobs`; and whether each image's own
    caption scored above its near misses."""
    b = images.shape[0]
    image_emb = scorer.embed_image(torch.cat([images, blobs]))
    text_emb = scorer.embed_text(text)
    logits = scorer.logits(image_emb[:b], text_emb)
    target = torch.arange(b)
    ce = torch.nn.functional.cross_entropy
    loss = ce(logits, target) + ce(scorer.logits(text_emb[:b], image_emb), target)
    # its own caption against its near misses only: what picking among frames relies on
    own = logits[target, target][:, None]
    near = logits[:, b:].view(b, b, negatives)[target, target]
    right = (own > near).all(dim=1)
    return loss, right


@dataclass
class ScorerReport:
    steps: int
    train_accuracy: float  # own caption above every near miss, last 10 batches
    held_out_accuracy: float  # the same on a fresh batch of another seed
    train_seconds: float  # wall time of the run and its held-out score, over resumed parts


def train_scorer(
    text_encoder: TextEncoder,
    vae: AutoencoderKL | None,
    *,
    steps: int = 1500,
    batch_size: int = 48,
    negatives: int = 3,
    lr: float = 1e-3,
    seed: int = 0,
    image_size: int = 64,
    checkpoints: str | Path | None = None,
    checkpoint_every: int = 100,
    held_out: int = 256,
) -> tuple[FrameScorer, ScorerReport]:
    """A scorer for `text_encoder`'s token states, trained with AdamW on world first frames
    (half through `vae` and back, when given), then scored on `held_out` fresh frames.

    With `checkpoints` (a folder), the run saves itself there every `checkpoint_every` steps
    and a run with the same arguments picks up from the latest save: the same batches follow,
    so a run killed and resumed ends where an unbroken one would.
    """
    torch.manual_seed(seed)
    scorer = FrameScorer(hidden_size=text_encoder.hidden_size, image_size=image_size)
    optim = torch.optim.AdamW(scorer.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, lr, total_steps=steps, pct_start=0.05)
    rng = np.random.default_rng([seed, 3])
    store = CheckpointStore(checkpoints) if checkpoints is not None else None
    run = {"steps": steps, "batch_size": batch_size, "negatives": negatives, "lr": lr}
    run |= {"seed": seed, "image_size": image_size}
    first, recent, seconds = 0, [], 0.0
    parts = {"scorer": scorer, "optimizer": optim, "schedule": sched}
    saved = store.resume(run, parts) if store is not None else None
    if saved is not None:
        _, state = saved
        rng.bit_generator.state = state["rng"]
        first, recent, seconds = state["step"], state["recent"], state["seconds"]
        log.info("scorer: resumed at step %d from %s", first, store.root)

    def batch(rng: np.random.Generator, size: int) -> tuple[torch.Tensor, ...]:
        images, blobs, captions, misses = scorer_batch(rng, size, negatives, image_size)
        if vae is not None:
            half = size // 2
            images[:half] = vae_round_trip(vae, images[:half])
        with torch.no_grad():
            text = text_encoder(captions + misses).float()
        return images, blobs, text

    start = time.perf_counter() - seconds
    for step in range(first, steps):
        loss, right = scorer_loss(scorer, *batch(rng, batch_size), negatives)
        optim.zero_grad()
        loss.backward()
        optim.step()
        sched.step()
        recent = [*recent, float(right.float().mean())][-10:]
        if step % 100 == 0 or step == steps - 1:
            log.info("scorer step %d: loss %.4f, accuracy %.3f", step, loss.item(), recent[-1])
        done = step + 1
        if store is not None and (done % checkpoint_every == 0 or done == steps):
            tensors = {"scorer": scorer.state_dict(), "optimizer": optim.state_dict()}
            tensors["schedule"] = sched.state_dict()
            state = {"run": run, "rng": rng.bit_generator.state, "recent": recent}
            state["seconds"] = time.perf_counter() - start
            store.save(done, tensors, state)
    scorer.eval()
    with torch.no_grad():
        _, right = scorer_loss(
            scorer, *batch(np.random.default_rng([seed, 4]), held_out), negatives
        )
    seconds = round(time.perf_counter() - start, 1)
    held = float(right.float().mean())
    return scorer, ScorerReport(steps, float(np.mean(recent)), held, seconds)
