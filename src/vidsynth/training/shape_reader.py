"""Training the shape reader (``models.shape_reader``) on two kinds of object crops.

- Rendered: world frames (one or two objects, a random frame of a clip, so sizes and turns
  vary) through the model's VAE and back, so edges are as soft as the pipeline's; each object's
  crop is labelled with its shape (cross-entropy).
- The model's own: candidate first frames the model draws for training captions (the eval
  prompts left out), each object found by its colour and judged by the world's judge, held
  still; a crop is labelled with the shape asked and whether the judge saw it (a binary
  cross-entropy on the reader's probability of that shape). Rendered crops teach what shapes
  are; these teach where the model's half-formed ones stop being one (a star whose points came
  out uneven reads as a square to the judge).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vidsynth.models.shape_reader import ShapeReader
from vidsynth.training.checkpoint import CheckpointStore
from vidsynth.training.data import world_palette
from vidsynth.world.spec import COLOURS, SHAPES

log = logging.getLogger(__name__)

HELD_OUT_SHARE = 0.1  # of the crops of each kind, never trained on, score the reader


@dataclass
class Crops:
    images: torch.Tensor  # (N, 2, S, S), ``object_crop``'s
    shapes: torch.Tensor  # (N,) the shape asked, an index in SHAPES
    right: torch.Tensor  # (N,) float: 1 where the object has that shape (rendered: always)


def rendered_crops(reader: ShapeReader, vae: Any, frames: int, seed: int, size: int = 64) -> Crops:
    """Crops of the objects of `frames` rendered world frames, each through `vae` and back."""
    from vidsynth.training.scorer import vae_round_trip
    from vidsynth.world.renderer import render
    from vidsynth.world.sampling import sample_scene

    rng = np.random.default_rng([seed, 5])
    images, shapes = [], []
    for start in range(0, frames, 64):
        count = min(64, frames - start)
        scenes = [sample_scene(rng, int(rng.choice([1, 2]))) for _ in range(count)]
        pixels = np.stack([render(s, size, frames=[int(rng.integers(16))])[0] for s in scenes])
        x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
        if vae is not None:
            with torch.no_grad():
                x = (vae_round_trip(vae, x) * 255).round() / 255  # as decoded frames are stored
        for scene, image in zip(scenes, x, strict=True):
            for obj in scene.objects:
                found = reader.crop(image, COLOURS.index(obj.colour))
                if found is not None:
                    images.append(found)
                    shapes.append(SHAPES.index(obj.shape))
    n = len(shapes)
    return Crops(torch.stack(images), torch.tensor(shapes), torch.ones(n))


def own_frames(pipe: Any, prompts: int, seed: int, folder: Path | None = None) -> dict[str, Any]:
    """The candidate first frames `pipe` draws for `prompts` training captions, with each
    object's colour and shape (S = 2 slots, -1 past the objects) and whether the judge sees
    that shape on each frame held still. Saved in `folder` (atomically) once drawn, and read
    back from there by a later call with the same arguments."""
    path = folder / f"own-{prompts}-{seed}.npz" if folder is not None else None
    if path is not None and path.is_file():
        return dict(np.load(path))
    from vidsynth.models.vae import decode_to_uint8
    from vidsynth.sampling.noise import derive_seed
    from vidsynth.training.scorer_tuning import training_captions
    from vidsynth.world.judge import judge
    from vidsynth.world.parse import parse_caption

    params = pipe.check_params(1)
    n = params.candidates
    captions, targets = training_captions(np.random.default_rng([seed, 6]), prompts)
    frames, objects, right = [], [], []
    began = time.perf_counter()
    for i in range(0, prompts, 16):
        if i and i % 256 == 0:  # minutes per hundred captions on a CPU: show it is moving
            spent = time.perf_counter() - began
            log.info(
                "shape reader: first frames drawn for %d of %d captions (%.0f s)", i, prompts, spent
            )
        batch = captions[i : i + 16]
        seeds = [derive_seed(seed, i + k) for k in range(len(batch))]
        with torch.inference_mode():
            latents = pipe.first_frame_candidates(
                batch, [pipe.defaults.negative_prompt] * len(batch), seeds, params
            )
            pixels = decode_to_uint8(pipe.vae, latents[:, :, None])[:, 0].numpy()
        pixels = pixels.reshape(len(batch), n, *pixels.shape[1:])
        for k, candidates in enumerate(pixels):
            target = parse_caption(targets[i + k])
            named = [(COLOURS.index(o.colour), SHAPES.index(o.shape)) for o in target.objects]
            objects.append(named + [(-1, -1)] * (2 - len(named)))
            seen = []
            for frame in candidates:
                shape = judge(np.stack([frame] * 4), target).checks["shape"]  # held still
                seen.append(list(shape) + [False] * (2 - len(shape)))
            right.append(seen)
        frames.append(pixels)
    drawn = {"frames": np.concatenate(frames), "objects": np.array(objects)}
    drawn["right"] = np.array(right)
    if path is not None:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez_compressed(tmp, **drawn)
        os.replace(tmp, path)
    return drawn


def own_crops(reader: ShapeReader, drawn: dict[str, Any]) -> Crops:
    """``own_frames``' objects as crops, labelled with the judge's verdicts."""
    images, shapes, right = [], [], []
    for p, candidates in enumerate(drawn["frames"]):
        for j, frame in enumerate(candidates):
            image = torch.from_numpy(frame).permute(2, 0, 1).float() / 255
            for k, (colour, shape) in enumerate(drawn["objects"][p]):
                if colour < 0:
                    continue
                found = reader.crop(image, int(colour))
                if found is not None:
                    images.append(found)
                    shapes.append(int(shape))
                    right.append(float(drawn["right"][p, j, k]))
    if not images:
        raise ValueError("no object of the drawn frames was found by its colour")
    return Crops(torch.stack(images), torch.tensor(shapes), torch.tensor(right))


def _split(crops: Crops) -> tuple[Crops, Crops]:
    held = max(1, round(len(crops.shapes) * HELD_OUT_SHARE))
    train = Crops(crops.images[:-held], crops.shapes[:-held], crops.right[:-held])
    test = Crops(crops.images[-held:], crops.shapes[-held:], crops.right[-held:])
    return train, test


def _augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random quarter turn of the batch and a mirror of half its crops: a shape's name does
    not change with either."""
    turns = int(torch.randint(4, (1,), generator=generator))
    images = torch.rot90(images, turns, (-2, -1))
    flip = torch.rand(len(images), generator=generator) < 0.5
    images[flip] = images[flip].flip(-1)
    return images


def reader_loss(reader: ShapeReader, rendered: Crops, own: Crops | None) -> torch.Tensor:
    """Cross-entropy on rendered crops; on the model's own, a binary cross-entropy on the
    probability of the shape asked, towards the judge's verdict."""
    loss = F.cross_entropy(reader(rendered.images), rendered.shapes)
    if own is not None:
        logp = reader(own.images).log_softmax(dim=1).gather(1, own.shapes[:, None])[:, 0]
        logp = logp.clamp(max=-1e-6)  # log(1 - p) stays finite
        loss = loss - (own.right * logp + (1 - own.right) * torch.log1p(-logp.exp())).mean()
    return loss


@dataclass
class ReaderReport:
    steps: int
    rendered_crops: int
    own_crops: int
    held_out_accuracy: float  # held-out rendered crops read as their shape
    held_out_own_agreement: float  # held-out own crops where p(shape asked) > 0.5 iff judged so
    train_seconds: float  # drawing, rendering and training, over resumed parts


def train_shape_reader(
    vae: Any,
    pipe: Any | None = None,
    *,
    frames: int = 8000,
    own_prompts: int = 1536,
    steps: int = 1500,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    image_size: int = 64,
    checkpoints: str | Path | None = None,
    checkpoint_every: int = 100,
) -> tuple[ShapeReader, ReaderReport]:
    """A reader trained with AdamW on the crops of `frames` rendered frames (through `vae`)
    and, with `pipe` and `own_prompts` > 0, of the candidate first frames `pipe` draws for that
    many training captions; then scored on the held-out tenth of each.

    With `checkpoints` (a folder), the drawn frames are kept there and the run saves itself
    every `checkpoint_every` steps; a run with the same arguments picks up from the latest
    save (the crops are made again, the same ones: they are a function of the seed)."""
    torch.manual_seed(seed)
    reader = ShapeReader(shapes=list(SHAPES), colours=world_palette())
    store = CheckpointStore(checkpoints) if checkpoints is not None else None
    run = {"frames": frames, "own_prompts": own_prompts, "steps": steps}
    run |= {"batch_size": batch_size, "lr": lr, "seed": seed, "image_size": image_size}
    optim = torch.optim.AdamW(reader.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, lr, total_steps=steps, pct_start=0.05)
    parts = {"reader": reader, "optimizer": optim, "schedule": sched}
    saved = store.resume(run, parts) if store is not None else None
    first, seconds = 0, 0.0
    generator = torch.Generator().manual_seed(seed)
    if saved is not None:
        _, state = saved
        first, seconds = state["step"], state["seconds"]
        generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))
        log.info("shape reader: resumed at step %d from %s", first, store.root)
    start = time.perf_counter() - seconds

    rendered, rendered_test = _split(rendered_crops(reader, vae, frames, seed, image_size))
    own = own_test = None
    if pipe is not None and own_prompts > 0:
        folder = Path(checkpoints) if checkpoints is not None else None
        own, own_test = _split(own_crops(reader, own_frames(pipe, own_prompts, seed, folder)))
    log.info(
        "shape reader: %d rendered crops, %d of the model's own",
        len(rendered.shapes) + len(rendered_test.shapes),
        0 if own is None else len(own.shapes) + len(own_test.shapes),
    )

    def sample(crops: Crops) -> Crops:
        rows = torch.randint(len(crops.shapes), (batch_size,), generator=generator)
        images = _augment(crops.images[rows].clone(), generator)
        return Crops(images, crops.shapes[rows], crops.right[rows])

    reader.train()
    for step in range(first, steps):
        loss = reader_loss(reader, sample(rendered), sample(own) if own is not None else None)
        optim.zero_grad()
        loss.backward()
        optim.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            log.info("shape reader step %d: loss %.4f", step, loss.item())
        done = step + 1
        if store is not None and (done % checkpoint_every == 0 or done == steps):
            tensors = {name: part.state_dict() for name, part in parts.items()}
            state = {"run": run, "generator": generator.get_state().tolist()}
            state["seconds"] = time.perf_counter() - start
            store.save(done, tensors, state)
    reader.eval()
    with torch.no_grad():
        read = reader(rendered_test.images).argmax(dim=1) == rendered_test.shapes
        agree = float("nan")
        if own_test is not None:
            p = reader(own_test.images).softmax(dim=1).gather(1, own_test.shapes[:, None])[:, 0]
            agree = float(((p > 0.5).float() == own_test.right).float().mean())
    report = ReaderReport(
        steps,
        len(rendered.shapes) + len(rendered_test.shapes),
        0 if own is None else len(own.shapes) + len(own_test.shapes),
        float(read.float().mean()),
        agree,
        round(time.perf_counter() - start, 1),
    )
    return reader, report
