"""Compare our UNet3DModel with diffusers' UNet3DConditionModel: latency, peak memory, agreement.

Both models get the same random weights (a diffusers model is built from a fixed seed, every
parameter is perturbed so zero-initialised layers matter, and its state dict is loaded into ours).

* Latency: one process holds both models, runs one warm-up forward each,
  then alternates ours / diffusers for ``--repeats`` rounds and reports the medians, so machine
  noise hits both equally. The max abs difference of the outputs is reported too.
* Peak memory: one fresh subprocess per model. After a warm-up forward it resets the kernel's
  peak-RSS counter (``/proc/self/clear_refs``) and reports peak RSS minus RSS just before the
  forward, i.e. the activation memory of one forward (weights excluded); glibc's malloc
  thresholds are pinned so that RSS follows live tensors. On CUDA it uses
  ``torch.cuda.max_memory_allocated`` the same way.

Everything runs under ``torch.inference_mode()``.

Example::

    python benchmarks/unet_vs_diffusers.py --config small
    python benchmarks/unet_vs_diffusers.py --config modelscope --size 256 --frames 16 \
        --dtype fp32 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import torch

CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {
        "block_out_channels": [32, 64],
        "down_block_types": ["CrossAttnDownBlock3D", "DownBlock3D"],
        "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D"],
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "cross_attention_dim": 64,
        "attention_head_dim": 8,
    },
    # ModelScope's layout at 2/5 width (~230M parameters).
    "small": {
        "block_out_channels": [128, 256, 512, 512],
        "cross_attention_dim": 512,
        "attention_head_dim": 64,
    },
    # The real ModelScope T2V 1.7B UNet (1.41B parameters); diffusers' defaults.
    "modelscope": {
        "block_out_channels": [320, 640, 1280, 1280],
        "cross_attention_dim": 1024,
        "attention_head_dim": 64,
    },
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
TEXT_TOKENS = 77


def _build(args: argparse.Namespace, impls: list[str]) -> dict[str, torch.nn.Module]:
    """Models named in ``impls`` with identical weights (ours shares the reference's tensors)."""
    from diffusers import UNet3DConditionModel

    from vidsynth.models import UNet3DConfig, UNet3DModel

    torch.manual_seed(0)
    ref = UNet3DConditionModel(**CONFIGS[args.config])
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.01)
    ref = ref.to(args.device, DTYPES[args.dtype]).eval()
    models: dict[str, torch.nn.Module] = {}
    if "ours" in impls:
        config = UNet3DConfig.from_dict(dict(ref.config))
        with torch.device("meta"):
            ours = UNet3DModel(config)
        ours.load_state_dict(ref.state_dict(), strict=True, assign=True)
        models["ours"] = ours.eval()
    if "diffusers" in impls:
        models["diffusers"] = ref
    return models


def _inputs(args: argparse.Namespace, model: torch.nn.Module) -> tuple[torch.Tensor, ...]:
    cfg = CONFIGS[args.config]
    gen = torch.Generator().manual_seed(1)
    latent = args.size // 8
    sample = torch.randn(1, 4, args.frames, latent, latent, generator=gen)
    context = torch.randn(1, TEXT_TOKENS, cfg["cross_attention_dim"], generator=gen)
    dtype = DTYPES[args.dtype]
    return (
        sample.to(args.device, dtype),
        torch.tensor([500], device=args.device),
        context.to(args.device, dtype),
    )


def _forward(name: str, model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    out = model(*inputs)
    return out.sample if name == "diffusers" else out


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def worker_time(args: argparse.Namespace) -> dict[str, Any]:
    models = _build(args, ["ours", "diffusers"])
    inputs = _inputs(args, models["ours"])
    times: dict[str, list[float]] = {name: [] for name in models}
    outputs = {}
    with torch.inference_mode():
        for name, model in models.items():  # warm-up (allocator, kernels, lazy init)
            outputs[name] = _forward(name, model, inputs).float().cpu()
        for r in range(args.repeats):
            order = list(models) if r % 2 == 0 else list(models)[::-1]
            for name in order:
                _sync(args.device)
                start = time.perf_counter()
                _forward(name, models[name], inputs)
                _sync(args.device)
                times[name].append(time.perf_counter() - start)
    diff = (outputs["ours"] - outputs["diffusers"]).abs().max().item()
    return {
        "ms": {name: statistics.median(t) * 1000 for name, t in times.items()},
        "max_abs_diff": diff,
        "max_abs_ref": outputs["diffusers"].abs().max().item(),
        "params": sum(p.numel() for p in models["ours"].parameters()),
    }


def worker_mem(args: argparse.Namespace) -> dict[str, Any]:
    name = args.worker_impl
    model = _build(args, [name])[name]
    inputs = _inputs(args, model)
    with torch.inference_mode():
        _forward(name, model, inputs)  # warm-up so one-off allocations are not counted
        _sync(args.device)
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            out = _forward(name, model, inputs)
            _sync(args.device)
            peak = torch.cuda.max_memory_allocated() - base
        else:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # reset VmHWM (peak RSS) to the current RSS
            base = _rss_kb("VmRSS") * 1024
            out = _forward(name, model, inputs)
            peak = _rss_kb("VmHWM") * 1024 - base
        del out
    return {"peak_bytes": peak}


def _run_worker(args: argparse.Namespace, task: str, impl: str = "") -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", task, "--worker-impl", impl or "none"]
    for key in ("config", "frames", "size", "dtype", "device", "repeats"):
        cmd += [f"--{key}", str(getattr(args, key))]
    env = dict(os.environ)
    if task == "mem":
        # Fixed glibc thresholds: every large buffer is mmap'ed and returned to the OS when
        # freed, so RSS tracks live tensors. With the default adaptive thresholds the measured
        # peak depends on allocation history and varies by +-50% from run to run.
        env.update(MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"worker {task} {impl} failed with exit code {result.returncode}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="small")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=256, help="pixel size; latent is size/8")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", choices=["time", "mem"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-impl", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        result = worker_time(args) if args.worker == "time" else worker_mem(args)
        print(json.dumps(result))
        return

    timing = _run_worker(args, "time")
    mem = {
        impl: _run_worker(args, "mem", impl)["peak_bytes"] / 2**20 for impl in ("ours", "diffusers")
    }
    ms = timing["ms"]

    def row(label: str, ours: float, ref: float) -> str:
        return f"{label:12}{ours:12.1f}{ref:12.1f}{ours / ref:12.3f}"

    print(
        f"config={args.config} ({timing['params'] / 1e6:.1f}M params) frames={args.frames} "
        f"size={args.size} (latent {args.size // 8}) dtype={args.dtype} device={args.device} "
        f"repeats={args.repeats} threads={torch.get_num_threads()}"
    )
    print(f"{'':12}{'ours':>12}{'diffusers':>12}{'ours/diff':>12}")
    print(row("forward ms", ms["ours"], ms["diffusers"]))
    print(row("peak MB", mem["ours"], mem["diffusers"]))
    print(f"max abs diff {timing['max_abs_diff']:.3g} (max |output| {timing['max_abs_ref']:.3g})")


if __name__ == "__main__":
    main()
