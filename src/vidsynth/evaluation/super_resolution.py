"""Score super-resolution stages on held-out shapes-world clips against the true render.

The world draws any clip at any size and frame rate, so every stage has an exact target:

- spatial SR: render at the low size and at factor × it, super-resolve the low render and
  compare with the high one: PSNR and SSIM, ours vs bicubic upscaling; and the judge's accuracy
  on our output vs on the low-resolution input (SR must not lose what the judge sees).
- temporal SR: render F frames at r fps and F·k frames at k·r fps (the same seconds), fill in
  the frames between: PSNR, ours vs frame blending vs frame repetition, over all frames and
  over the new frames alone; the judge's accuracy on the new frames alone (every k-th frame
  from 1, a clip at the input's rate made only of generated pixels).

Scenes come from fixed seeds disjoint from the training stream, so runs are comparable: set
"sr1" is the one reported, "srval1" is for choosing sampling settings (steps, augmentation
level) without looking at it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vidsynth.evaluation.metrics import psnr, ssim

# The method name of a temporal SR stage's output with a zero residual: part of "ours", not a
# baseline to beat.
BASE_ONLY = "ours, base only"

# Held-out scene seeds per set; training draws its scenes from [train.seed, rank, index].
SR_SETS = {"sr1": 20261203, "srval1": 20261204}
SR_EVAL_VERSION = "sr1"


def eval_scenes(clips: int, version: str = SR_EVAL_VERSION) -> list:
    """The first `clips` scenes of a held-out set; levels 1 and 2 alternate."""
    from vidsynth.errors import InvalidParameter
    from vidsynth.world.sampling import sample_scene

    if version not in SR_SETS:
        raise InvalidParameter(f"unknown SR eval set {version!r}; known: {', '.join(SR_SETS)}")
    if isinstance(clips, bool) or not isinstance(clips, int) or clips < 1:
        raise InvalidParameter(f"clips must be a positive integer, got {clips!r}")
    seed = SR_SETS[version]
    return [sample_scene(np.random.default_rng([seed, i]), 1 + i % 2) for i in range(clips)]


def at_base_rate(frames: np.ndarray, fps: float) -> np.ndarray:
    """Every n-th frame of a clip at n × 8 fps: the world's judge measures motion per frame at
    the 8 fps base rate (its speed thresholds would misread a 16 fps clip)."""
    from vidsynth.world.spec import BASE_FPS

    step = fps / BASE_FPS
    if step > 1 and abs(step - round(step)) < 1e-6:
        return frames[:: round(step)]
    return frames


# -- baselines -------------------------------------------------------------------------------


def bicubic_upscale(frames: np.ndarray, factor: int) -> np.ndarray:
    """uint8 (F, h, w, 3) → (F, h·factor, w·factor, 3), bicubic (PyTorch's, a = -0.75)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    h, w = frames.shape[1:3]
    y = F.interpolate(x, size=(h * factor, w * factor), mode="bicubic", align_corners=False)
    return y.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def repeat_frames(frames: np.ndarray, factor: int) -> np.ndarray:
    """Each frame shown `factor` times: (F, ...) → (F·factor, ...)."""
    return np.repeat(frames, factor, axis=0)


def blend_frames(frames: np.ndarray, factor: int) -> np.ndarray:
    """Linear cross-fade between neighbouring frames; after the last frame it is held."""
    x = frames.astype(np.float64)
    nxt = np.concatenate([x[1:], x[-1:]])
    out = np.empty((len(x) * factor, *x.shape[1:]))
    for j in range(factor):
        w = j / factor
        out[j::factor] = (1 - w) * x + w * nxt
    return np.rint(out).astype(np.uint8)


# -- the report ------------------------------------------------------------------------------


@dataclass
class SREvalReport:
    """Mean per-clip metrics per method, judge accuracies, and the time per clip."""

    task: str
    metrics: dict[str, dict[str, float]]  # method -> metric -> mean over clips
    judge: dict[str, dict[str, float]]  # what was judged -> attribute -> accuracy
    seconds_per_clip: float
    settings: dict[str, Any] = field(default_factory=dict)
    clips: list[dict[str, Any]] = field(default_factory=list)

    def table(self) -> str:
        names = sorted({m for v in self.metrics.values() for m in v})
        rows = [f"{'method':<16} " + " ".join(f"{n:>12}" for n in names)]
        for method, values in self.metrics.items():
            cells = []
            for name in names:
                v = values.get(name)
                cells.append(f"{'—':>12}" if v is None else f"{v:>12.4f}")
            rows.append(f"{method:<16} " + " ".join(cells))
        if self.judge:
            attrs = ("colour", "shape", "motion", "background", "all_correct")
            rows.append("judge      " + " ".join(f"{a:>11}" for a in attrs))
            for what, acc in self.judge.items():
                cells = " ".join(f"{100 * acc.get(a, float('nan')):>10.1f}%" for a in attrs)
                rows.append(f"{what:<10} {cells}")
        rows.append(f"seconds per clip: {self.seconds_per_clip:.2f}")
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "metrics": self.metrics,
            "judge": self.judge,
            "seconds_per_clip": self.seconds_per_clip,
            "settings": self.settings,
            "clips": self.clips,
        }


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return float(np.mean([r[key] for r in rows]))


def _save(folder: Path | None, name: str, frames: np.ndarray, fps: float) -> None:
    if folder is not None:
        from vidsynth.io.video import write_video

        folder.mkdir(parents=True, exist_ok=True)
        write_video(folder / f"{name}.mp4", frames, fps)


def evaluate_spatial_sr(
    pipe,
    *,
    clips: int = 32,
    low_size: int = 64,
    num_frames: int = 32,
    fps: float = 16.0,
    version: str = SR_EVAL_VERSION,
    save_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    **call_kwargs: Any,
) -> SREvalReport:
    """Super-resolve `clips` held-out renders at `low_size` (default: the cascade's input, 32
    frames at 16 fps) and compare with the renders at `low_size × factor`."""
    from vidsynth.world.captions import canonical_caption
    from vidsynth.world.judge import judge, score
    from vidsynth.world.renderer import render
    from vidsynth.world.target import SceneTarget

    k = pipe.factor
    rows, verdicts = [], {"input": [], "bicubic": [], "ours": []}
    elapsed = 0.0
    for i, scene in enumerate(eval_scenes(clips, version)):
        low = render(scene, low_size, num_frames, fps)
        truth = render(scene, low_size * k, num_frames, fps)
        t0 = time.perf_counter()
        ours = pipe(low, canonical_caption(scene), seed=i, fps=fps, **call_kwargs).frames
        elapsed += time.perf_counter() - t0
        bicubic = bicubic_upscale(low, k)
        rows.append(
            {
                "clip": i,
                "caption": canonical_caption(scene),
                "psnr_ours": psnr(ours, truth),
                "psnr_bicubic": psnr(bicubic, truth),
                "ssim_ours": ssim(ours, truth),
                "ssim_bicubic": ssim(bicubic, truth),
            }
        )
        target = SceneTarget.from_scene(scene)
        for what, frames in (("input", low), ("bicubic", bicubic), ("ours", ours)):
            verdicts[what].append(judge(at_base_rate(frames, fps), target))
        rows[-1]["judge_ours_all_correct"] = verdicts["ours"][-1].all_correct
        if i < 4:
            _save(save_dir, f"{i:02d}-ours", ours, fps)
            _save(save_dir, f"{i:02d}-truth", truth, fps)
        if progress is not None:
            progress(i + 1, clips)
    return SREvalReport(
        task="spatial-sr",
        metrics={
            "ours": {"psnr": _mean(rows, "psnr_ours"), "ssim": _mean(rows, "ssim_ours")},
            "bicubic": {"psnr": _mean(rows, "psnr_bicubic"), "ssim": _mean(rows, "ssim_bicubic")},
        },
        judge={what: score(v) for what, v in verdicts.items()},
        seconds_per_clip=elapsed / max(1, clips),
        settings={
            "version": version,
            "clips": clips,
            "input": f"{num_frames}x{low_size}x{low_size} at {fps:g} fps",
            "output": f"{num_frames}x{low_size * k}x{low_size * k}",
            "torch_threads": torch.get_num_threads(),
            **call_kwargs,
        },
        clips=rows,
    )


def evaluate_temporal_sr(
    pipe,
    *,
    clips: int = 32,
    size: int = 64,
    num_frames: int = 16,
    fps: float = 8.0,
    version: str = SR_EVAL_VERSION,
    save_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    **call_kwargs: Any,
) -> SREvalReport:
    """Raise `clips` held-out renders of `num_frames` at `fps` (default: the base model's 16
    frames at 8 fps) to factor × the frames and compare with the render at factor × fps."""
    from vidsynth.world.captions import canonical_caption
    from vidsynth.world.judge import judge, score
    from vidsynth.world.renderer import render
    from vidsynth.world.target import SceneTarget

    k = pipe.factor
    rows = []
    verdicts: dict[str, list] = {"truth": [], "blend": [], "ours": []}
    elapsed = 0.0
    for i, scene in enumerate(eval_scenes(clips, version)):
        low = render(scene, size, num_frames, fps)
        truth = render(scene, size, num_frames * k, fps * k)
        t0 = time.perf_counter()
        ours = pipe(low, canonical_caption(scene), seed=i, fps=fps * k, **call_kwargs).frames
        elapsed += time.perf_counter() - t0
        methods = {"ours": ours, "blend": blend_frames(low, k), "repeat": repeat_frames(low, k)}
        if getattr(pipe, "motion_compensation", False):  # how much of it the model adds
            methods[BASE_ONLY] = pipe.without_model(low)
        new = np.ones(len(truth), dtype=bool)
        new[::k] = False  # the frames the input does not have
        row: dict[str, Any] = {"clip": i, "caption": canonical_caption(scene)}
        for name, frames in methods.items():
            row[f"psnr_{name}"] = psnr(frames, truth)
            row[f"psnr_new_{name}"] = psnr(frames[new], truth[new])
            row[f"ssim_{name}"] = ssim(frames, truth)
        rows.append(row)
        target = SceneTarget.from_scene(scene)
        for what, frames in (("truth", truth), ("blend", methods["blend"]), ("ours", ours)):
            verdicts[what].append(judge(frames[1::k], target))  # new frames only, at fps
        if i < 4:
            _save(save_dir, f"{i:02d}-ours", ours, fps * k)
            _save(save_dir, f"{i:02d}-truth", truth, fps * k)
        if progress is not None:
            progress(i + 1, clips)
    return SREvalReport(
        task="temporal-sr",
        metrics={
            name: {
                "psnr": _mean(rows, f"psnr_{name}"),
                "psnr_new": _mean(rows, f"psnr_new_{name}"),
                "ssim": _mean(rows, f"ssim_{name}"),
            }
            for name in methods
        },
        judge={f"new frames, {what}": score(v) for what, v in verdicts.items()},
        seconds_per_clip=elapsed / max(1, clips),
        settings={
            "version": version,
            "clips": clips,
            "input": f"{num_frames}x{size}x{size} at {fps:g} fps",
            "output": f"{num_frames * k}x{size}x{size} at {fps * k:g} fps",
            "torch_threads": torch.get_num_threads(),
            **call_kwargs,
        },
        clips=rows,
    )


def evaluate_sr(pipe, **kwargs: Any) -> SREvalReport:
    """`evaluate_spatial_sr` or `evaluate_temporal_sr`, by the pipeline's task."""
    if pipe.task == "spatial-sr":
        return evaluate_spatial_sr(pipe, **kwargs)
    if pipe.task == "temporal-sr":
        return evaluate_temporal_sr(pipe, **kwargs)
    raise ValueError(f"not a super-resolution pipeline: task {pipe.task!r}")


__all__ = [
    "SREvalReport",
    "at_base_rate",
    "bicubic_upscale",
    "blend_frames",
    "eval_scenes",
    "evaluate_spatial_sr",
    "evaluate_sr",
    "evaluate_temporal_sr",
    "repeat_frames",
]
