"""Score a text-to-video model on the eval prompt set with the world's judge."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from vidsynth.evaluation.prompts import KINDS, EvalPrompt, prompt_set

ATTRIBUTES = ("colour", "shape", "motion", "background")


@dataclass
class EvalReport:
    """Accuracy per kind and attribute, plus generation time per video."""

    accuracy: dict[str, dict[str, float]]
    counts: dict[str, int]
    seconds_per_video: float
    settings: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    # per kind, "target→detected" motion counts ("-": no object found): which motions a model
    # gets and what it makes of the others, which one accuracy figure hides
    motion_confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    # the same for shape: which shapes a model draws that the judge reads as another
    shape_confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    # a model with a motion planner, per kind of prompts: the share whose planned motions are
    # the target's (each object's, by colour), and the judged motion accuracy where the plan
    # was right and where it was wrong, which tells the planner's misses from the UNet's
    plan: dict[str, dict[str, float | None]] = field(default_factory=dict)
    # the same for the shapes a planner reads (``shape_plan_is_right``) and the judged shape
    # accuracy: a shape the planner misread is one the shape reader steers the frames from
    shape_plan: dict[str, dict[str, float | None]] = field(default_factory=dict)
    # per kind and attribute, the 95% interval of the accuracy (`accuracy_interval`): how far
    # a figure of 48 or 96 prompts may sit from the model's true rate, e.g. against a target
    intervals: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    def table(self) -> str:
        head = f"{'kind':<12} {'n':>4} " + " ".join(f"{a:>10}" for a in ATTRIBUTES)
        head += f" {'all':>8}"
        rows = [head, "-" * len(head)]
        for kind, acc in self.accuracy.items():
            cells = " ".join(f"{100 * acc.get(a, float('nan')):>9.1f}%" for a in ATTRIBUTES)
            rows.append(
                f"{kind:<12} {self.counts[kind]:>4} {cells} {100 * acc['all_correct']:>7.1f}%"
            )
            if kind in self.intervals:
                spans = self.intervals[kind]
                cells = " ".join(f"{_span(spans.get(a)):>10}" for a in ATTRIBUTES)
                rows.append(f"{'  95% range':<17} {cells} {_span(spans.get('all_correct')):>8}")
        for attribute, table in (
            ("motion", self.motion_confusion),
            ("shape", self.shape_confusion),
        ):
            for kind, counts in table.items():
                cells = ", ".join(f"{pair} {n}" for pair, n in sorted(counts.items()))
                rows.append(f"{attribute}, {kind} (target→detected): {cells}")
        for attribute, plan in (("motion", self.plan), ("shape", self.shape_plan)):
            for kind, p in plan.items():
                rows.append(
                    f"{attribute} plan, {kind}: right {_percent(p['right'])} of {p['n']:.0f}; "
                    f"judged {attribute} right {_percent(p[f'{attribute}_if_right'])} where "
                    f"the plan was right, {_percent(p[f'{attribute}_if_wrong'])} where it was "
                    "wrong"
                )
        rows.append(f"seconds per video: {self.seconds_per_video:.2f}")
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "counts": self.counts,
            "seconds_per_video": self.seconds_per_video,
            "settings": self.settings,
            "failures": self.failures,
            "motion_confusion": self.motion_confusion,
            "shape_confusion": self.shape_confusion,
            "plan": self.plan,
            "shape_plan": self.shape_plan,
            "intervals": self.intervals,
        }


def _percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _span(interval: tuple[float, float] | None) -> str:
    return "-" if interval is None else f"{100 * interval[0]:.0f}-{100 * interval[1]:.0f}"


def accuracy_interval(passed: int, total: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a rate of `passed` in `total` verdicts (Wilson 1927): it
    stays inside [0, 1] and keeps its coverage near 0% and 100%, where the normal
    approximation does not. Verdicts count as independent; a clip's two objects are not
    quite, so for two-object attributes the true range is somewhat wider."""
    from scipy.stats import binomtest

    ci = binomtest(passed, total).proportion_ci(confidence_level=level, method="wilson")
    return (float(ci.low), float(ci.high))


def select_prompts(version: str, kinds: tuple[str, ...], limit: int | None) -> list[EvalPrompt]:
    """The set's prompts of `kinds`; with `limit`, the first `limit` of each kind."""
    prompts = [p for p in prompt_set(version) if p.kind in kinds]
    if limit is not None:
        prompts = [p for k in kinds for p in [q for q in prompts if q.kind == k][:limit]]
    return prompts


def record(
    results: dict[str, list], failures: list[dict[str, Any]], item: EvalPrompt, verdict: Any
) -> None:
    """File a judge verdict under its kind, and the prompt among the failures if it failed."""
    results[item.kind].append(verdict)
    if not verdict.all_correct:
        failures.append(
            {
                "kind": item.kind,
                "prompt": item.prompt,
                "seed": item.seed,
                "accuracy": verdict.accuracy,
            }
        )


def confusions(results: dict[str, list], attribute: str) -> dict[str, dict[str, int]]:
    """Per kind, "target→detected" counts of the judge's verdicts on `attribute`."""
    from vidsynth.world.judge import confusion

    return {
        kind: {f"{want}→{got}": n for (want, got), n in confusion(verdicts, attribute).items()}
        for kind, verdicts in results.items()
        if verdicts
    }


# a planned object: its colour's name (None where the planner reads no colour) and its motion
PlannedObject = tuple[str | None, str]


def _prompt_states(pipe, prompts: list[EvalPrompt]) -> Iterator[torch.Tensor]:
    """The prompts' token states (float32), 32 prompts at a time."""
    for i in range(0, len(prompts), 32):
        with torch.inference_mode():
            yield pipe.encode_prompts([p.prompt for p in prompts[i : i + 32]]).float()


def planned_objects(pipe, prompts: list[EvalPrompt]) -> list[list[PlannedObject]] | None:
    """The objects a pipeline's motion planner reads in each prompt, in the order named: the
    colour and the world motion (a name, which the frame rate does not change); None without
    a planner."""
    from vidsynth.training.planner import motion_name
    from vidsynth.world.spec import COLOURS

    if getattr(pipe, "planner", None) is None or not pipe.unet.config.first_frame_motion:
        return None
    out: list[list[PlannedObject]] = []
    for context in _prompt_states(pipe, prompts):
        motion, colours = pipe.planner.objects(context)
        for rows, names in zip(motion.tolist(), colours.tolist(), strict=True):
            named = [k for k, c in enumerate(names) if c >= 0] or [0]  # a colourless planner
            out.append(
                [
                    (COLOURS[names[k]] if names[k] >= 0 else None, motion_name(rows[k]))
                    for k in named
                ]
            )
    return out


def plan_is_right(planned: list[PlannedObject], target) -> bool:
    """Whether a plan gives the target scene's motions: one object's motion; two objects',
    each that of the object of its colour."""
    if len(target.objects) == 1:
        return len(planned) == 1 and planned[0][1] == target.objects[0].motion
    want = [(o.colour, o.motion) for o in target.objects]
    return sorted(planned, key=str) == sorted(want, key=str)


def planned_shapes(pipe, prompts: list[EvalPrompt]) -> list[dict[str, str]] | None:
    """Per prompt, the shape a pipeline's planner reads for each object, keyed by the colour
    it reads for that object (``TextToVideoPipeline.planned_shapes``); None where the planner
    reads no shapes."""
    from vidsynth.world.spec import COLOURS, SHAPES

    planner = getattr(pipe, "planner", None)
    if planner is None or not planner.config.shapes:
        return None
    out: list[dict[str, str]] = []
    for context in _prompt_states(pipe, prompts):
        colours, shapes = pipe.planned_shapes(context)
        for names, kinds in zip(colours.tolist(), shapes.tolist(), strict=True):
            out.append({COLOURS[c]: SHAPES[k] for c, k in zip(names, kinds, strict=True) if c >= 0})
    return out


def shape_plan_is_right(planned: dict[str, str], target) -> bool:
    """Whether the planner read each object of the target scene, and no other, with its
    shape (objects told apart by colour, as the pipeline finds them)."""
    return planned == {o.colour: o.shape for o in target.objects}


def plan_report(
    prompts: list[EvalPrompt],
    planned: list[Any],
    results: dict[str, list],
    is_right: Callable[[Any, Any], bool] = plan_is_right,
    attribute: str = "motion",
) -> dict[str, dict[str, float | None]]:
    """Per kind of prompts, how often the plan is right (`is_right` of the plan and the target
    scene: ``plan_is_right`` for motion) and how often the judge found `attribute` right
    where it was right and where wrong (``EvalReport.plan``)."""
    from vidsynth.world.parse import parse_caption

    verdicts = {k: iter(v) for k, v in results.items()}
    rows: dict[str, list[tuple[bool, bool]]] = {}
    for item, plan in zip(prompts, planned, strict=True):
        verdict = next(verdicts[item.kind])
        right = is_right(plan, parse_caption(item.target))
        rows.setdefault(item.kind, []).append((right, all(verdict.checks[attribute])))

    def share(xs: list[bool]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    return {
        kind: {
            "n": float(len(r)),
            "right": share([a for a, _ in r]),
            f"{attribute}_if_right": share([m for a, m in r if a]),
            f"{attribute}_if_wrong": share([m for a, m in r if not a]),
        }
        for kind, r in rows.items()
    }


def evaluate(
    pipe,
    *,
    version: str = "v1",
    kinds: tuple[str, ...] = KINDS,
    limit: int | None = None,
    progress: Callable[[int, int, EvalPrompt], None] | None = None,
    **generate_kwargs: Any,
) -> EvalReport:
    """Generate every prompt of the set (model defaults unless overridden) and judge it."""
    from vidsynth.world.judge import judge, tally
    from vidsynth.world.parse import parse_caption

    prompts = select_prompts(version, kinds, limit)
    results: dict[str, list] = {k: [] for k in kinds}
    failures = []
    elapsed = 0.0
    for i, item in enumerate(prompts):
        t0 = time.perf_counter()
        clip = pipe(item.prompt, seed=item.seed, **generate_kwargs)
        elapsed += time.perf_counter() - t0
        record(results, failures, item, judge(clip.frames, parse_caption(item.target)))
        if progress is not None:
            progress(i + 1, len(prompts), item)
    counted = {k: tally(v) for k, v in results.items() if v}
    accuracy = {k: {a: p / n for a, (p, n) in c.items()} for k, c in counted.items()}
    intervals = {
        k: {a: accuracy_interval(p, n) for a, (p, n) in c.items()} for k, c in counted.items()
    }
    planned = planned_objects(pipe, prompts)
    shapes = planned_shapes(pipe, prompts)
    return EvalReport(
        accuracy=accuracy,
        counts={k: len(v) for k, v in results.items() if v},
        seconds_per_video=elapsed / max(1, len(prompts)),
        settings={
            "version": version,
            "limit": limit,
            "torch_threads": torch.get_num_threads(),
            **generate_kwargs,
        },
        failures=failures,
        motion_confusion=confusions(results, "motion"),
        shape_confusion=confusions(results, "shape"),
        plan={} if planned is None else plan_report(prompts, planned, results),
        shape_plan={}
        if shapes is None
        else plan_report(prompts, shapes, results, shape_plan_is_right, "shape"),
        intervals=intervals,
    )
