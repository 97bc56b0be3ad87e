"""The `vidsynth` command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from vidsynth import __version__

FORMATS_HELP = "format by suffix: .mp4 (H.264), .gif, .webp, or a folder name for PNG frames"


def _size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidsynth",
        description="vidsynth: text-to-video by latent video diffusion.",
        epilog='Start with: vidsynth generate "a red circle moving right" -o clip.mp4',
    )
    parser.add_argument("--version", action="version", version=f"vidsynth {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    gen = sub.add_parser(
        "generate",
        help="generate a video from a text prompt",
        description="Generate a video from a text prompt and write it to a file.",
        epilog='Example: vidsynth generate "a blue star rotating" -o star.mp4 --seed 7',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    gen.add_argument("prompt", help='what the video shows ("" for unconditional)')
    gen.add_argument("-o", "--output", required=True, help=f"output file; {FORMATS_HELP}")
    gen.add_argument(
        "--model",
        default=None,
        help="bundled model name, diffusers-format folder or hub id (default: bundled model)",
    )
    gen.add_argument("--negative-prompt", default=None, help="what the video should not show")
    gen.add_argument("--seed", type=int, default=None, help="random seed; -1 or absent = random")
    gen.add_argument("--steps", type=_size, default=None, help="denoising steps (model default)")
    gen.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    gen.add_argument("--frames", type=_size, default=None, help="number of frames")
    gen.add_argument("--fps", type=float, default=None, help="frames per second of the output")
    gen.add_argument("--height", type=_size, default=None, help="height in pixels (multiple of 8)")
    gen.add_argument("--width", type=_size, default=None, help="width in pixels (multiple of 8)")
    gen.add_argument(
        "--scheduler",
        default=None,
        help="ddim, dpm++2m, euler or unipc (default: the model's own)",
    )
    gen.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: GPU if any)")
    gen.add_argument(
        "--dtype", default=None, choices=["fp32", "fp16", "bf16"], help="weights precision"
    )
    gen.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    gen.set_defaults(func=cmd_generate)

    tr = sub.add_parser(
        "train",
        help="train or fine-tune a model from a TOML config (resumes automatically)",
        description=(
            "Train the model a config describes. Run the same command again to resume from "
            "the latest checkpoint; under `accelerate launch` it trains on several GPUs."
        ),
        epilog="Example: vidsynth train configs/shapes-vae.toml --max-minutes 30",
    )
    tr.add_argument("config", help="TOML config file (see configs/)")
    tr.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.steps=500 (repeatable)",
    )
    tr.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    tr.add_argument("--max-minutes", type=float, default=None, help="save and stop after this")
    tr.add_argument(
        "--export",
        metavar="FOLDER",
        default=None,
        help="do not train: export the latest checkpoint's EMA weights to FOLDER",
    )
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser(
        "eval",
        help="score a model with the shapes world's judge on the fixed eval prompt set",
        description=(
            "Generate every prompt of the versioned eval set with fixed seeds and print the "
            "judge's accuracy per attribute and kind, and the seconds per video."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ev.add_argument("--model", default=None, help="model (default: bundled model)")
    ev.add_argument("--prompts", default="v1", help="eval prompt set version")
    ev.add_argument(
        "--kinds", default="canonical,paraphrase,two_objects", help="comma-separated kinds to run"
    )
    ev.add_argument("--limit", type=int, default=None, help="at most N prompts per kind")
    ev.add_argument("--steps", type=int, default=None, help="denoising steps (model default)")
    ev.add_argument("--guidance", type=float, default=None, help="guidance scale (model default)")
    ev.add_argument("--scheduler", default=None, help="scheduler (model default)")
    ev.add_argument("--device", default=None, help="cpu, cuda, ...")
    ev.add_argument("--json", dest="json_out", default=None, help="also write the report here")
    ev.set_defaults(func=cmd_eval)
    return parser


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from tqdm import tqdm

    import vidsynth
    from vidsynth.errors import InvalidParameter
    from vidsynth.evaluation.prompts import KINDS
    from vidsynth.evaluation.text_to_video import evaluate

    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InvalidParameter(f"unknown kind(s) {unknown}; choose from {', '.join(KINDS)}")
    pipe = vidsynth.load(args.model, device=args.device)
    overrides = {
        k: v
        for k, v in (
            ("num_inference_steps", args.steps),
            ("guidance_scale", args.guidance),
            ("scheduler", args.scheduler),
        )
        if v is not None
    }
    bar = tqdm(desc="eval", unit="video", file=sys.stderr)

    def progress(done: int, total: int, item) -> None:
        bar.total = total
        bar.update(1)

    report = evaluate(
        pipe, version=args.prompts, kinds=kinds, limit=args.limit, progress=progress, **overrides
    )
    bar.close()
    report.settings["model"] = pipe.name
    print(report.table())
    if args.json_out:
        from vidsynth.training.checkpoint import atomic_write_text

        atomic_write_text(Path(args.json_out), json.dumps(report.to_dict(), indent=2))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import logging

    from vidsynth.errors import InvalidParameter
    from vidsynth.training.config import load_config
    from vidsynth.training.trainer import train

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = load_config(args.config, args.overrides)
    if args.export:
        from vidsynth.training.trainer import Trainer

        trainer = Trainer(config)
        if not trainer.resume():
            raise InvalidParameter(f"no checkpoint to export under {config.output_dir}")
        path = trainer.export(Path(args.export))
        print(f"exported step {trainer.step}", file=sys.stderr)
        print(os.fspath(path))
        return 0
    result = train(config, max_steps=args.max_steps, max_minutes=args.max_minutes)
    state = "finished" if result.exported else "stopped (run again to resume)"
    print(f"step {result.step}/{config.train.steps}: {state}", file=sys.stderr)
    print(os.fspath(result.exported or result.output_dir))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    import vidsynth
    from vidsynth.io.video import output_format
    from vidsynth.sampling.noise import resolve_seed

    output_format(args.output)  # an unsupported suffix fails now, not after minutes of work
    seed = resolve_seed(args.seed)
    t0 = time.perf_counter()
    pipe = vidsynth.load(args.model, device=args.device, dtype=args.dtype)
    print(
        f"model: {pipe.name} on {pipe.device} ({str(pipe.dtype).removeprefix('torch.')})",
        file=sys.stderr,
    )
    print(f"seed: {seed}", file=sys.stderr)
    bar = None

    def progress(stage: str, step: int, total: int) -> None:
        nonlocal bar
        if args.quiet:
            return
        if bar is None or bar.desc != stage:
            if bar is not None:
                bar.close()
            bar = tqdm(
                total=total,
                desc=stage,
                unit="step" if stage == "denoise" else "",
                file=sys.stderr,
                leave=False,
            )
        bar.n = step
        bar.refresh()

    try:
        result = pipe(
            args.prompt,
            args.negative_prompt,
            num_frames=args.frames,
            height=args.height,
            width=args.width,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            seed=seed,
            fps=args.fps,
            scheduler=args.scheduler,
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    path = result.save(args.output)
    elapsed = time.perf_counter() - t0
    print(
        f"{result.num_frames} frames {result.frames.shape[2]}x{result.frames.shape[1]} "
        f"at {result.fps:g} fps, seed {seed}, {elapsed:.1f} s",
        file=sys.stderr,
    )
    print(os.fspath(path))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from vidsynth.errors import VidsynthError

    try:
        return args.func(args)
    except VidsynthError as err:
        print(f"vidsynth: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vidsynth: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
