"""Score a whole cascade on the eval prompt set: the judge on its final video, and the time of
each stage.

Models are loaded once and kept (a cascade run by `vidsynth generate` loads and frees each
stage instead; its end-to-end time and peak RSS are what that command prints). The final video
is judged at the world's 8 fps base rate (every second frame of a 16 fps clip) and at its own
resolution, e.g. 256×256.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from vidsynth.evaluation.prompts import KINDS, EvalPrompt
from vidsynth.evaluation.super_resolution import at_base_rate
from vidsynth.evaluation.text_to_video import (
    EvalReport,
    confusions,
    record,
    select_prompts,
)
from vidsynth.pipelines.cascade import Cascade, peak_rss_mib, run_cascade


def cached_loader(device: str | None = None, dtype: str | None = None) -> Callable[..., Any]:
    """A `run_cascade` loader that loads each (model, task) once and keeps it."""
    from vidsynth.pipelines.loading import load

    cache: dict[tuple[str, str], Any] = {}

    def loader(model: str, *, task: str, **kwargs: Any) -> Any:
        key = (model, task)
        if key not in cache:
            cache[key] = load(model, device=device, dtype=dtype, task=task)
        return cache[key]

    return loader


def evaluate_cascade(
    cascade: Cascade,
    *,
    version: str = "v1",
    kinds: tuple[str, ...] = KINDS,
    limit: int | None = None,
    device: str | None = None,
    progress: Callable[[int, int, EvalPrompt], None] | None = None,
) -> EvalReport:
    """Run the cascade on every prompt of the set (fixed seeds) and judge the final videos.

    `settings` of the report records the output geometry and the mean seconds per stage
    (sampling only; the models stay loaded between prompts).
    """
    from vidsynth.world.judge import judge, score
    from vidsynth.world.parse import parse_caption

    prompts = select_prompts(version, kinds, limit)
    loader = cached_loader(device)
    for stage in cascade.stages:  # load up front: the per-stage times are sampling only
        loader(stage.model, task=stage.kind)
    results: dict[str, list] = {k: [] for k in kinds}
    stage_seconds: dict[str, list[float]] = {s.name: [] for s in cascade.stages}
    failures, elapsed, geometry = [], 0.0, None
    for i, item in enumerate(prompts):
        t0 = time.perf_counter()
        out = run_cascade(cascade, item.prompt, seed=item.seed, device=device, loader=loader)
        elapsed += time.perf_counter() - t0
        for report in out.stages:
            stage_seconds[report.name].append(report.seconds)
        clip = out.video
        f, h, w = (int(x) for x in clip.frames.shape[:3])
        geometry = {"frames": f, "height": h, "width": w, "fps": float(clip.fps)}
        verdict = judge(at_base_rate(clip.frames, clip.fps), parse_caption(item.target))
        record(results, failures, item, verdict)
        if progress is not None:
            progress(i + 1, len(prompts), item)
    return EvalReport(
        accuracy={k: score(v) for k, v in results.items() if v},
        counts={k: len(v) for k, v in results.items() if v},
        seconds_per_video=elapsed / max(1, len(prompts)),
        settings={
            "version": version,
            "limit": limit,
            "cascade": cascade.to_dict(),
            "output": geometry,
            "stage_seconds": {k: float(np.mean(v)) for k, v in stage_seconds.items() if v},
            "peak_rss_mib_all_models_loaded": peak_rss_mib(),
            "torch_threads": torch.get_num_threads(),
        },
        failures=failures,
        motion_confusion=confusions(results, "motion"),
        shape_confusion=confusions(results, "shape"),
    )


__all__ = ["cached_loader", "evaluate_cascade"]
