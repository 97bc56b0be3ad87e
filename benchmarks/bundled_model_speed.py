"""How fast the bundled model makes a clip: in-process (model loaded) and `vidsynth generate`
end to end (a fresh process: imports, model load, generation, MP4 encode).

Beside the command it times a fresh interpreter that only imports the libraries the command
cannot do without (torch, diffusers' AutoencoderKL and DPM-Solver++ scheduler, transformers):
the part of the end-to-end figure that vidsynth's own code does not decide.

The clip is timed with the model's defaults and, alternating with it, with each sampling
option of `VARIANTS`: one or four first frames per clip (what the frame scorer's best-of-N
costs), and guidance only above noise level 0.7 or at every step, for the clip and for its
first frames (what skipping the unconditional pass saves), and the clip drawn from pure noise
or from its animated first frame over 0.8 of the steps (`clip_strength`), and the first
frames and the clip both in 15 steps (the defaults until issue #3's stop 35, which draws the
first frames in 25 and the clip in 10), or the clip in 15. A variant that is the model's
default shows the noise of the figures. The bundled model draws 4 more first
frames, guided toward the planned shapes, only when its shape reader is unsure of the first 4,
which it never is for the README's prompt; a two-object prompt times that second round (for
some of its seeds) with the defaults, with 4 first frames (no second round), and with the
second round of stop 32 (8 more frames, unguided: the reader's config changed for the call).
The planner reads a lone object's shape by the shapes' names too (stop 37), which encodes the
names with the caption; a variant times the README's prompt without (the planner's config
changed for the call).

Issue #3's budget on 2 CPU cores: ≤ 2 s per 16-frame 64×64 clip with the model loaded, ≤ 10 s
for the whole command. Run on an otherwise idle machine; the figures are medians of --repeats.

    python benchmarks/bundled_model_speed.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "a red circle moving right on a white background"
TWO_OBJECTS = "a blue star rotating and a yellow square moving up"
# sampling options timed against the model's defaults
VARIANTS = {
    "candidates=1": {"candidates": 1},
    "candidates=4": {"candidates": 4},
    "guidance_interval=0.7": {"guidance_interval": [0.7]},
    "guidance_interval=0": {"guidance_interval": [0.0]},
    "first_frame_guidance_interval=0.7": {"first_frame_guidance_interval": [0.7]},
    "first_frame_guidance_interval=0": {"first_frame_guidance_interval": [0.0]},
    "clip_strength=1": {"clip_strength": 1.0},
    "clip_strength=0.8": {"clip_strength": 0.8},
    "steps=15, first_frame_steps=15": {"num_inference_steps": 15, "first_frame_steps": 15},
    "steps=15": {"num_inference_steps": 15},
    "two objects": {"prompt": TWO_OBJECTS},
    "two objects, steps=15, first_frame_steps=15": {
        "prompt": TWO_OBJECTS,
        "num_inference_steps": 15,
        "first_frame_steps": 15,
    },
    "two objects, candidates=4": {"prompt": TWO_OBJECTS, "candidates": 4},
    "two objects, 8 more unguided": {
        "prompt": TWO_OBJECTS,
        "candidates": 12,
        "reader": {"guidance": None},
    },
    "shapes not read by their names": {"planner": {"name_weight": None}},
}


def in_process(repeats: int, threads: int | None) -> dict[str, float]:
    import torch

    import vidsynth

    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    pipe = vidsynth.load()
    load_s = time.perf_counter() - t0
    # the model's defaults and each variant, alternated so all see the same machine
    settings = {"default": {}, **VARIANTS}
    calls = {}  # name -> (prompt, {part: config changes}, keyword arguments)
    for name, kwargs in settings.items():
        kwargs = dict(kwargs)
        changes = {part: kwargs.pop(part, {}) for part in ("reader", "planner")}
        calls[name] = (kwargs.pop("prompt", PROMPT), changes, kwargs)
    parts = {"reader": pipe.shape_reader, "planner": pipe.planner}
    own = {
        part: {key: module.config[key] for _, c, _ in calls.values() for key in c[part]}
        for part, module in parts.items()
    }

    def call(prompt: str, changes: dict, seed: int, kwargs: dict) -> float:
        for part, module in parts.items():
            module.register_to_config(**changes[part])
        t0 = time.perf_counter()
        pipe(prompt, seed=seed, **kwargs)
        took = time.perf_counter() - t0
        for part, module in parts.items():
            module.register_to_config(**own[part])
        return took

    for prompt, changes, kwargs in calls.values():
        call(prompt, changes, 0, kwargs)  # warm-up: first calls pay for oneDNN kernel selection
    times: dict[str, list[float]] = {name: [] for name in settings}
    for seed in range(repeats):
        for name, (prompt, changes, kwargs) in calls.items():
            times[name].append(call(prompt, changes, seed, kwargs))
    return {
        "load_s": load_s,
        "clip_s_median": statistics.median(times["default"]),
        "clip_s_max": max(times["default"]),
        "defaults": {k: v for k, v in vars(pipe.defaults).items() if k != "extra"},
        "variants_clip_s_median": {name: statistics.median(times[name]) for name in VARIANTS},
        "torch_threads": torch.get_num_threads(),
    }


def end_to_end(repeats: int) -> dict[str, float]:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(repeats):
            out = Path(tmp) / f"clip{seed}.mp4"
            t0 = time.perf_counter()
            cmd = ["vidsynth.cli", "generate", PROMPT, "-o", str(out), "--seed", str(seed)]
            cmd += ["--stages", "base"]  # the base model alone, not the default cascade
            subprocess.run(
                [sys.executable, "-m", *cmd, "--quiet"],
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - t0)
            assert out.stat().st_size > 0
    return {"command_s_median": statistics.median(times), "command_s_max": max(times)}


# What `vidsynth generate` must import before it can load a model: diffusers' package init
# (torch._dynamo through diffusers.utils), its autoencoders package (every autoencoder),
# the DPM-Solver++ module (scipy.stats), and transformers for the text encoder.
LIBRARY_IMPORTS = (
    "import torch, transformers; from diffusers import AutoencoderKL, DPMSolverMultistepScheduler"
)


def library_imports(repeats: int) -> dict[str, float]:
    """Seconds for a fresh interpreter to import the libraries, and to start at all."""
    report = {}
    for name, code in (("python_start_s", "pass"), ("library_imports_s", LIBRARY_IMPORTS)):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        report[name] = statistics.median(times)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    report = {
        "cpus": os.cpu_count(),
        **in_process(args.repeats, args.threads),
        **end_to_end(args.repeats),
        **library_imports(args.repeats),
    }
    r = report
    print(f"model load          {r['load_s']:.2f} s")
    print(f"one clip (loaded)   {r['clip_s_median']:.2f} s median, max {r['clip_s_max']:.2f}")
    for name, seconds in r["variants_clip_s_median"].items():
        ratio = seconds / r["clip_s_median"]
        print(f"  {name:45s} {seconds:.2f} s (ratio to the default {ratio:.2f})")
    print(f"vidsynth generate   {r['command_s_median']:.2f} s median, max {r['command_s_max']:.2f}")
    share = r["library_imports_s"] / r["command_s_median"]
    print(
        f"  of which imports  {r['library_imports_s']:.2f} s ({share:.0%}: torch, diffusers, "
        f"transformers in a fresh interpreter; interpreter start {r['python_start_s']:.2f} s)"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
