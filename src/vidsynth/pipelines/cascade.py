"""A cascade of diffusion models described as data: base → temporal SR → spatial SR (Imagen
Video's chain), or any chain a user writes down.

A cascade file (TOML or JSON) lists stages; each names its kind, its model and the keyword
arguments of its pipeline call:

    name = "shapes-256"
    [[stages]]
    name = "base"                 # shown in the progress display and the timing report
    kind = "text-to-video"        # the first stage makes the video from the prompt
    model = "shapes-t2v-64"       # bundled name, model folder or hub id
    params = { num_inference_steps = 15 }
    [[stages]]
    name = "tsr"
    kind = "temporal-sr"          # or "spatial-sr", "video-to-video" (SDEdit re-rendering)
    model = "shapes-tsr-32"

Stages run one after another; each loads its model, turns the previous stage's frames into
new ones, and is freed (garbage-collected, CUDA cache emptied) before the next one loads, so
peak memory is that of the largest stage, not of the sum. Stage 0 draws its noise from the
clip's seed, stage i from `derive_seed(seed, i)`: the video depends only on (prompt, seed).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

from vidsynth.errors import InvalidParameter
from vidsynth.pipelines.result import VideoResult
from vidsynth.pipelines.text_to_video import ProgressFn
from vidsynth.sampling.noise import derive_seed, resolve_seed

DEFAULT_CASCADE = "shapes-256"
"""Name of the bundled cascade `vidsynth generate` runs once its models are installed."""

# The keyword arguments a stage's `params` may set, per kind (the rest comes from the
# previous stage: its frames, and its fps where the stage keeps the frame rate).
STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "text-to-video": (
        "num_frames",
        "height",
        "width",
        "num_inference_steps",
        "guidance_scale",
        "fps",
        "candidates",
        "guidance_interval",
        "first_frame_guidance_interval",
        "clip_strength",
        "first_frame_steps",
        "scheduler",
        "decode_chunk_size",
    ),
    "video-to-video": (
        "strength",
        "height",
        "width",
        "num_inference_steps",
        "guidance_scale",
        "scheduler",
        "decode_chunk_size",
    ),
    "temporal-sr": (
        "num_inference_steps",
        "guidance_scale",
        "noise_aug_level",
        "scheduler",
        "decode_chunk_size",
    ),
    "spatial-sr": (
        "num_inference_steps",
        "guidance_scale",
        "noise_aug_level",
        "scheduler",
        "decode_chunk_size",
    ),
}
STAGE_KINDS = tuple(STAGE_PARAMS)


@dataclass(frozen=True)
class Stage:
    """One model of a cascade and the keyword arguments of its call."""

    name: str
    kind: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], index: int) -> Stage:
        if not isinstance(data, dict):
            raise InvalidParameter(f"cascade stage {index} must be a table, got {data!r}")
        unknown = sorted(set(data) - {"name", "kind", "model", "params"})
        if unknown:
            raise InvalidParameter(f"cascade stage {index}: unknown key(s) {', '.join(unknown)}")
        kind = data.get("kind")
        if kind not in STAGE_PARAMS:
            raise InvalidParameter(
                f"cascade stage {index}: kind must be one of {', '.join(STAGE_KINDS)}, got {kind!r}"
            )
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidParameter(f"cascade stage {index} ({kind}) needs a model")
        name = data.get("name", kind)
        if not isinstance(name, str) or not name or "," in name:
            raise InvalidParameter(f"cascade stage {index}: bad name {name!r} (no commas)")
        params = data.get("params", {})
        if not isinstance(params, dict):
            raise InvalidParameter(f"cascade stage {name!r}: params must be a table")
        bad = sorted(set(params) - set(STAGE_PARAMS[kind]))
        if bad:
            raise InvalidParameter(
                f"cascade stage {name!r}: {kind} does not take {', '.join(bad)} "
                f"(it takes: {', '.join(STAGE_PARAMS[kind])})"
            )
        return cls(name=name, kind=kind, model=model, params=dict(params))


@dataclass(frozen=True)
class Cascade:
    """An ordered chain of stages; the first makes the video, each next one transforms it."""

    stages: tuple[Stage, ...]
    name: str = ""

    def __post_init__(self) -> None:
        if not self.stages:
            raise InvalidParameter("a cascade needs at least one stage")
        if self.stages[0].kind != "text-to-video":
            raise InvalidParameter(
                f"a cascade starts with a text-to-video stage, not {self.stages[0].kind!r}"
            )
        for stage in self.stages[1:]:
            if stage.kind == "text-to-video":
                raise InvalidParameter(
                    f"cascade stage {stage.name!r}: only the first stage is text-to-video"
                )
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise InvalidParameter(f"cascade stage names must be unique, got {names}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: Path | None = None) -> Cascade:
        """From parsed TOML/JSON; model paths starting with "." are relative to `base_dir`."""
        if not isinstance(data, dict):
            raise InvalidParameter("a cascade must be a table with a `stages` list")
        unknown = sorted(set(data) - {"name", "stages", "description"})
        if unknown:
            raise InvalidParameter(f"unknown cascade key(s): {', '.join(unknown)}")
        raw = data.get("stages")
        if not isinstance(raw, list):
            raise InvalidParameter("a cascade needs a `stages` list ([[stages]] in TOML)")
        stages = []
        for i, item in enumerate(raw):
            stage = Stage.from_dict(item, i)
            if base_dir is not None and stage.model.startswith("."):
                stage = Stage(stage.name, stage.kind, str(base_dir / stage.model), stage.params)
            stages.append(stage)
        return cls(tuple(stages), str(data.get("name", "")))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Cascade:
        """Read a cascade from a .toml or .json file."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as err:
            raise InvalidParameter(f"cannot read cascade file {path}: {err}") from err
        try:
            data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
            raise InvalidParameter(f"{path} is not a valid cascade file: {err}") from err
        cascade = cls.from_dict(data, path.parent)
        return cascade if cascade.name else cls(cascade.stages, path.stem)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "stages": [asdict(s) for s in self.stages]}

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def select(self, names: str | Sequence[str]) -> Cascade:
        """The stages named (comma-separated or a list, "all" for every one), in cascade
        order; the first stage, which makes the video, must be among them."""
        if isinstance(names, str):
            if names.strip() == "all":
                return self
            names = [n.strip() for n in names.split(",") if n.strip()]
        wanted = list(names)
        unknown = [n for n in wanted if n not in self.stage_names]
        if unknown or not wanted:
            raise InvalidParameter(
                f"unknown stage(s) {unknown or wanted}; this cascade has "
                f"{', '.join(self.stage_names)} (or 'all')"
            )
        if self.stages[0].name not in wanted:
            raise InvalidParameter(
                f"the stages must include {self.stages[0].name!r}, which makes the video"
            )
        return Cascade(tuple(s for s in self.stages if s.name in wanted), self.name)

    def with_base(self, model: str | None = None, **params: Any) -> Cascade:
        """The same cascade with the first stage's model and/or some of its params replaced
        (what `vidsynth generate --model/--steps/...` do); None values are ignored."""
        base = self.stages[0]
        given = {k: v for k, v in params.items() if v is not None}
        bad = sorted(set(given) - set(STAGE_PARAMS[base.kind]))
        if bad:
            raise InvalidParameter(f"the base stage does not take {', '.join(bad)}")
        new = Stage(base.name, base.kind, model or base.model, {**base.params, **given})
        return Cascade((new, *self.stages[1:]), self.name)


# -- finding cascades --------------------------------------------------------------------------


def bundled_cascades_dir() -> Path:
    return Path(str(importlib_resources.files("vidsynth"))) / "assets" / "cascades"


def resolve_cascade(name_or_path: str | os.PathLike[str]) -> Cascade:
    """A cascade file, or the name of a bundled one (e.g. "shapes-256")."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return Cascade.from_file(path)
    for suffix in (".toml", ".json"):
        bundled = bundled_cascades_dir() / f"{name_or_path}{suffix}"
        if bundled.is_file():
            return Cascade.from_file(bundled)
    names = sorted(p.stem for p in bundled_cascades_dir().glob("*.toml"))
    raise InvalidParameter(
        f"no cascade file at {os.fspath(name_or_path)!r}, and no bundled cascade of that name "
        f"(bundled: {', '.join(names) or 'none'})"
    )


def default_cascade() -> Cascade | None:
    """The bundled default cascade if every model it names is installed, else None (then
    `vidsynth generate` runs the bundled base model alone)."""
    from vidsynth.pipelines.loading import bundled_model_names

    try:
        cascade = resolve_cascade(DEFAULT_CASCADE)
    except InvalidParameter:
        return None
    installed = set(bundled_model_names())
    return cascade if all(s.model in installed for s in cascade.stages) else None


# -- running -------------------------------------------------------------------------------------


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


@dataclass
class StageReport:
    """What one stage made and what it cost."""

    name: str
    kind: str
    model: str
    seconds: float  # load + run, the stage's share of the end-to-end time
    load_seconds: float
    frames: tuple[int, int, int]  # (F, H, W) of its output
    fps: float
    peak_rss_mib: float  # of the process, up to the end of this stage

    def line(self) -> str:
        f, h, w = self.frames
        return (
            f"{self.name} ({self.kind}, {self.model}): {f} frames {w}x{h} at {self.fps:g} fps, "
            f"{self.seconds:.1f} s (load {self.load_seconds:.1f} s), "
            f"peak RSS {self.peak_rss_mib:.0f} MiB"
        )


@dataclass
class CascadeResult:
    """The last stage's video and a report per stage."""

    video: VideoResult
    stages: list[StageReport]

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def peak_rss_mib(self) -> float:
        return max(s.peak_rss_mib for s in self.stages)


Loader = Callable[..., Any]


def _free() -> None:
    """Collect what the finished stage left (its pipeline has been dropped by now)."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def stage_seed(seed: int, index: int) -> int:
    """The noise seed of stage `index` of a clip with seed `seed`."""
    return seed if index == 0 else derive_seed(seed, index)


def run_cascade(
    cascade: Cascade,
    prompt: str,
    negative_prompt: str | None = None,
    *,
    seed: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    progress: ProgressFn | None = None,
    on_stage: Callable[[StageReport], None] | None = None,
    loader: Loader | None = None,
) -> CascadeResult:
    """Run the stages in order on one prompt; progress stages are named "<stage> <step>".

    `on_stage` is called with each stage's report as soon as it is done; `loader(model,
    device=, dtype=, task=)` loads a stage's pipeline (default `vidsynth.load`).
    """
    if not isinstance(prompt, str):
        raise InvalidParameter(f"prompt must be a string, got {type(prompt).__name__}")
    if loader is None:
        from vidsynth.pipelines.loading import load as loader
    from vidsynth.pipelines.loading import resolve_model_path

    for stage in cascade.stages:  # a missing model fails now, not after the base stage
        resolve_model_path(stage.model)
    seed = resolve_seed(seed)
    reports: list[StageReport] = []
    result: VideoResult | None = None
    for i, stage in enumerate(cascade.stages):
        t0 = time.perf_counter()
        pipe = loader(stage.model, device=device, dtype=dtype, task=stage.kind)
        loaded = time.perf_counter()
        hook = None
        if progress is not None:
            hook = lambda step, n, total, name=stage.name: progress(f"{name} {step}", n, total)
        call = {**stage.params, "seed": stage_seed(seed, i), "progress": hook}
        if stage.kind == "text-to-video":
            out = pipe(prompt, negative_prompt, **call)
        else:
            assert result is not None
            if stage.kind == "video-to-video":
                call.setdefault("fps", result.fps)
            elif stage.kind == "spatial-sr":
                call["fps"] = result.fps
            else:  # temporal-sr: the output rate follows from the input's
                call["fps"] = result.fps * pipe.factor
            out = pipe(result.frames, prompt, negative_prompt, **call)
        del pipe  # the stage is done: free its model before the next one loads
        result = out
        _free()
        report = StageReport(
            name=stage.name,
            kind=stage.kind,
            model=stage.model,
            seconds=time.perf_counter() - t0,
            load_seconds=loaded - t0,
            frames=tuple(int(x) for x in result.frames.shape[:3]),
            fps=float(result.fps),
            peak_rss_mib=peak_rss_mib(),
        )
        reports.append(report)
        if on_stage is not None:
            on_stage(report)
    assert result is not None
    result.seed = seed
    result.info = {
        **result.info,
        "cascade": cascade.name,
        "stages": [asdict(r) for r in reports],
    }
    return CascadeResult(result, reports)


__all__ = [
    "DEFAULT_CASCADE",
    "STAGE_KINDS",
    "Cascade",
    "CascadeResult",
    "Stage",
    "StageReport",
    "bundled_cascades_dir",
    "default_cascade",
    "peak_rss_mib",
    "resolve_cascade",
    "run_cascade",
    "stage_seed",
]
