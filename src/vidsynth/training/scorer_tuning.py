"""Fine-tuning a model's frame scorer on the model's own first frames, as the world's judge
sees them.

A scorer trained on rendered frames (``training.scorer``) knows shapes as the renderer draws
them. The model draws them softer, and sometimes halfway between two shapes: on val1's
canonical prompts the bundled model's scorer picked a frame of the right shape for 83% of the
prompts where one of the four frames had it for 91% (issue 3's notes). So: draw the model's own
candidate first frames for training captions, let the judge say which show each object of the
caption with its shape and colour (a caption comes from a scene, so the truth is known), and
teach the scorer to rank a caption's candidates as the judge does, with a cross-entropy over
the candidates towards the judged-right ones (a listwise ranking loss). A caption whose
candidates are all right or all wrong teaches no ranking and is left out.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidsynth.errors import InvalidParameter
from vidsynth.models.frame_scorer import FrameScorer
from vidsynth.training.checkpoint import CheckpointStore

log = logging.getLogger(__name__)

CHUNK = 64  # captions per saved chunk of drawn frames
HELD_OUT_SHARE = 0.1  # the last tenth of the captions, never trained on, scores the scorer


@dataclass
class OwnFrames:
    """Candidate first frames the model drew for training captions, with the judge's verdicts."""

    frames: np.ndarray  # (P, N, H, W, 3) uint8, N candidates per caption
    quality: np.ndarray  # (P, N): share of the caption's objects drawn in its shape and colour
    captions: list[str]
    seconds: float = 0.0  # spent drawing and judging them, over resumed parts


def training_captions(rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
    """`n` training captions of random scenes (one object or two, evenly) and each scene's
    canonical caption, which the judge parses. No prompt of any eval set is among them."""
    from vidsynth.evaluation.prompts import SET_SEEDS, eval_prompt_strings, normalise
    from vidsynth.world.captions import canonical_caption, random_caption
    from vidsynth.world.sampling import sample_scene

    held_out = frozenset().union(*(eval_prompt_strings(v) for v in SET_SEEDS))
    captions, targets = [], []
    while len(captions) < n:
        scene = sample_scene(rng, int(rng.choice([1, 2])))
        text = random_caption(scene, rng)
        if normalise(text) not in held_out:
            captions.append(text)
            targets.append(canonical_caption(scene))
    return captions, targets


def judged_quality(frame: np.ndarray, target: str) -> float:
    """The share of `target`'s objects (a canonical caption) that a still first frame (H, W, 3)
    shows in their shape and colour, as the judge finds them."""
    from vidsynth.world.judge import judge
    from vidsynth.world.parse import parse_caption

    verdict = judge(np.stack([frame] * 4), parse_caption(target))  # held still: no motion
    checks = verdict.checks
    right = [s and c for s, c in zip(checks["shape"], checks["colour"], strict=True)]
    return float(np.mean(right))


def draw_own_frames(
    pipe: Any,
    prompts: int,
    *,
    seed: int = 0,
    folder: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> OwnFrames:
    """The candidate first frames `pipe` (a text-to-video pipeline with a frame scorer) draws
    for `prompts` training captions with its sampling defaults, each judged (``judged_quality``).

    With `folder`, each chunk of `CHUNK` captions is saved there as it is done (atomically), and
    a later call with the same arguments reuses the chunks it finds."""
    params = pipe.check_params(1)
    n = params.candidates
    if n < 2:
        raise InvalidParameter(
            "tuning a scorer needs a model that draws several first frames per clip "
            f"(its candidates default is {n})"
        )
    store = Path(folder) if folder is not None else None
    if store is not None:
        store.mkdir(parents=True, exist_ok=True)
    frames, quality, captions, seconds = [], [], [], 0.0
    for start in range(0, prompts, CHUNK):
        path = store / f"frames-{start // CHUNK:05d}.npz" if store is not None else None
        if path is not None and path.is_file():
            saved = np.load(path)
            chunk = (saved["frames"], saved["quality"], [str(c) for c in saved["captions"]])
            spent = float(saved["seconds"])
        else:
            t0 = time.perf_counter()
            chunk = _draw_chunk(pipe, params, seed, start, min(CHUNK, prompts - start))
            spent = time.perf_counter() - t0
            if path is not None:
                tmp = path.with_name(path.stem + ".tmp.npz")
                np.savez_compressed(
                    tmp,
                    frames=chunk[0],
                    quality=chunk[1],
                    captions=np.array(chunk[2]),
                    seconds=spent,
                )
                os.replace(tmp, path)
        frames.append(chunk[0])
        quality.append(chunk[1])
        captions += chunk[2]
        seconds += spent
        if progress is not None:
            progress(len(captions), prompts)
    return OwnFrames(np.concatenate(frames), np.concatenate(quality), captions, seconds)


def _draw_chunk(
    pipe: Any, params: Any, seed: int, start: int, size: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from vidsynth.models.vae import decode_to_uint8
    from vidsynth.sampling.noise import derive_seed

    rng = np.random.default_rng([seed, start])
    captions, targets = training_captions(rng, size)
    n = params.candidates
    frames = []
    for i in range(0, size, 16):
        batch = captions[i : i + 16]
        seeds = [derive_seed(seed, start + i + k) for k in range(len(batch))]
        negs = [pipe.defaults.negative_prompt] * len(batch)
        with torch.inference_mode():
            latents = pipe.first_frame_candidates(batch, negs, seeds, params)
            # as the pipeline's clips are decoded, so the judge sees what users get
            images = decode_to_uint8(pipe.vae, latents[:, :, None])[:, 0]
        frames.append(images.numpy())
    pixels = np.concatenate(frames).reshape(size, n, *frames[0].shape[1:])
    quality = np.array(
        [[judged_quality(pixels[p, j], targets[p]) for j in range(n)] for p in range(size)],
        dtype=np.float32,
    )
    return pixels, quality, captions


@dataclass
class TuningReport:
    steps: int
    prompts: int  # training captions drawn for, the held-out ones included
    held_out: int  # of which kept out
    candidates: int
    # on the held-out captions: the judged quality of the scorer's pick before and after the
    # tuning, of the first candidate (what one frame per clip gives) and of the best candidate
    held_out_before: float
    held_out_after: float
    held_out_first: float
    held_out_best: float
    drawing_seconds: float  # drawing and judging the frames, over resumed parts
    tuning_seconds: float  # the tuning, over resumed parts
    base: dict[str, Any] | None = None  # the tuned scorer's own record (how it was trained)


def ranking_loss(scores: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the softmax over each caption's candidates' scores (B, N) towards
    their judged `quality` (B, N), normalised: all weight on the right ones."""
    target = quality / quality.sum(1, keepdim=True)
    return -(target * scores.log_softmax(1)).sum(1).mean()


def _pick_quality(
    scorer: FrameScorer, images: torch.Tensor, text: torch.Tensor, quality: torch.Tensor
) -> float:
    """Mean judged quality of the candidate the scorer likes best, per caption."""
    scorer.eval()
    with torch.no_grad():
        n = images.shape[1]
        scores = torch.cat(
            [
                scorer(images[i : i + 32].flatten(0, 1), text[i : i + 32].repeat_interleave(n, 0))
                for i in range(0, len(images), 32)
            ]
        ).view(-1, n)
    scorer.train()
    return float(quality.gather(1, scores.argmax(1, keepdim=True)).mean())


def tune_scorer(
    scorer: FrameScorer,
    own: OwnFrames,
    encode: Callable[[list[str]], torch.Tensor],
    *,
    steps: int = 600,
    batch_size: int = 16,
    lr: float = 3e-4,
    seed: int = 0,
    checkpoints: str | Path | None = None,
    checkpoint_every: int = 100,
) -> tuple[FrameScorer, TuningReport]:
    """Fine-tune `scorer` (in place) to rank each caption's candidates as the judge does;
    `encode` gives the token states the pipeline scores with. The last `HELD_OUT_SHARE` of
    the captions are kept out and score the scorer before and after.

    With `checkpoints` (a folder), the run saves itself there every `checkpoint_every` steps
    and a run with the same arguments picks up from the latest save."""
    count, n = own.quality.shape
    held = max(1, round(count * HELD_OUT_SHARE))
    if count - held < 1:
        raise InvalidParameter(f"{count} captions are too few to tune a scorer on; draw more")
    images = torch.from_numpy(own.frames).permute(0, 1, 4, 2, 3).float().div(255)
    quality = torch.from_numpy(own.quality).float()
    with torch.no_grad():
        text = torch.cat([encode(own.captions[i : i + 64]) for i in range(0, count, 64)]).float()
    train = torch.arange(count - held)
    q = quality[train]
    train = train[q.amax(1) > q.amin(1)]  # candidates the judge tells apart
    if len(train) == 0:
        raise InvalidParameter(
            "the judge found all candidates of every caption equally right: nothing to rank"
        )
    test = slice(count - held, count)
    before = _pick_quality(scorer, images[test], text[test], quality[test])

    scorer.train()
    optim = torch.optim.AdamW(scorer.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, lr, total_steps=steps, pct_start=0.05)
    generator = torch.Generator().manual_seed(seed)
    store = CheckpointStore(checkpoints) if checkpoints is not None else None
    run = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "prompts": count}
    first, seconds = 0, 0.0
    parts = {"scorer": scorer, "optimizer": optim, "schedule": sched}
    saved = store.resume(run, parts) if store is not None else None
    if saved is not None:
        tensors, state = saved
        generator.set_state(tensors["generator"])
        first, seconds = state["step"], state["seconds"]
        log.info("scorer tuning: resumed at step %d from %s", first, store.root)
    start = time.perf_counter() - seconds
    for step in range(first, steps):
        rows = train[torch.randint(len(train), (batch_size,), generator=generator)]
        scores = scorer(images[rows].flatten(0, 1), text[rows].repeat_interleave(n, 0))
        loss = ranking_loss(scores.view(-1, n), quality[rows])
        optim.zero_grad()
        loss.backward()
        optim.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            log.info("scorer tuning step %d: loss %.4f", step, loss.item())
        done = step + 1
        if store is not None and (done % checkpoint_every == 0 or done == steps):
            tensors = {"scorer": scorer.state_dict(), "optimizer": optim.state_dict()}
            tensors |= {"schedule": sched.state_dict(), "generator": generator.get_state()}
            state = {"run": run, "seconds": time.perf_counter() - start}
            store.save(done, tensors, state)
    after = _pick_quality(scorer, images[test], text[test], quality[test])
    scorer.eval()
    report = TuningReport(
        steps=steps,
        prompts=count,
        held_out=held,
        candidates=n,
        held_out_before=before,
        held_out_after=after,
        held_out_first=float(quality[test][:, 0].mean()),
        held_out_best=float(quality[test].amax(1).mean()),
        drawing_seconds=round(own.seconds, 1),
        tuning_seconds=round(time.perf_counter() - start, 1),
    )
    return scorer, report
