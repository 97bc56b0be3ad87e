"""The `vidsynth` command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vidsynth import __version__

FORMATS_HELP = "format by suffix: .mp4 (H.264), .gif, .webp, or a folder name for PNG frames"


def _size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    return value


def _interval(text: str) -> tuple[float, ...]:
    """LO or LO,HI: noise levels, e.g. 0.7 or 0.7,inf."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not LO or LO,HI (numbers): {text!r}") from None


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def _wxh(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT, e.g. 1024x576."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT like 1024x576, got {text!r}"
        ) from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"width and height must be positive, got {text!r}")
    return width, height


INTERVAL_HELP = (
    "apply guidance to the clip only where the noise level sigma is in (LO, HI] (LO or LO,HI; "
    "model default); the other steps skip the unconditional pass"
)
FIRST_FRAME_INTERVAL_HELP = (
    "the same for the first frames, which a model with a first-frame stage draws as images "
    "before the clip (model default; 0 guides every step)"
)
CLIP_STRENGTH_HELP = (
    "a model with a first-frame stage: the share of the steps a clip is drawn over, from its "
    "first frame animated by the planned motion, noised to that level (model default; 1 draws "
    "the clip from pure noise)"
)
FIRST_FRAME_STEPS_HELP = (
    "a model with a first-frame stage: the denoising steps of the first frames, drawn as "
    "images before the clip (model default; absent there: --steps)"
)
CANDIDATES_HELP = (
    "first frames drawn per clip, the model's frame scorer keeping the likest to the prompt "
    "(model default; 1 draws one)"
)


def _add_interval_args(p: argparse.ArgumentParser) -> None:
    """The guidance intervals, the clip's and the first frames', the clip's strength and the
    first frames' steps (generate, eval)."""
    for flag, help_text in (
        ("--guidance-interval", INTERVAL_HELP),
        ("--first-frame-guidance-interval", FIRST_FRAME_INTERVAL_HELP),
    ):
        p.add_argument(flag, type=_interval, default=None, metavar="LO[,HI]", help=help_text)
    p.add_argument("--clip-strength", type=float, default=None, help=CLIP_STRENGTH_HELP)
    p.add_argument("--first-frame-steps", type=_size, default=None, help=FIRST_FRAME_STEPS_HELP)


def _add_sampling_args(p: argparse.ArgumentParser) -> None:
    """Options shared by the commands that run a pipeline (generate, v2v)."""
    p.add_argument(
        "--model",
        default=None,
        help="bundled model name, diffusers-format folder or hub id (default: bundled model)",
    )
    p.add_argument("--negative-prompt", default=None, help="what the video should not show")
    p.add_argument("--seed", type=int, default=None, help="random seed; -1 or absent = random")
    p.add_argument("--steps", type=_size, default=None, help="denoising steps (model default)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    p.add_argument("--fps", type=float, default=None, help="frames per second of the output")
    p.add_argument("--height", type=_size, default=None, help="height in pixels (multiple of 8)")
    p.add_argument("--width", type=_size, default=None, help="width in pixels (multiple of 8)")
    p.add_argument(
        "--scheduler",
        default=None,
        help="ddim, dpm++2m, euler or unipc (default: the model's own)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: GPU if any)")
    p.add_argument(
        "--dtype", default=None, choices=["fp32", "fp16", "bf16"], help="weights precision"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


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
    gen.add_argument("--frames", type=_size, default=None, help="number of frames")
    gen.add_argument("--candidates", type=_size, default=None, help=CANDIDATES_HELP)
    _add_interval_args(gen)
    _add_sampling_args(gen)
    refine = gen.add_argument_group(
        "two-stage refinement (Zeroscope's recipe)",
        "Upscale the generated video and re-render it with a second model (video-to-video), "
        "same prompt and seed; e.g. --model cerspense/zeroscope_v2_576w "
        "--refine-model cerspense/zeroscope_v2_XL --refine-size 1024x576",
    )
    refine.add_argument("--refine-model", default=None, help="the second stage's model")
    refine.add_argument(
        "--refine-size",
        type=_wxh,
        default=None,
        metavar="WxH",
        help="size to upscale to and refine at (default: the refine model's own)",
    )
    refine.add_argument(
        "--refine-strength",
        type=float,
        default=0.6,
        help="how much of the schedule the refiner re-runs, in (0, 1]",
    )
    cascade = gen.add_argument_group(
        "cascade (Imagen Video's chain: base -> temporal SR -> spatial SR)",
        "A cascade file lists stages and their models. Without --model, generate runs the "
        "bundled default cascade (shapes-256: 32 frames 256x256 at 16 fps) once its models are "
        "installed, else the bundled base model alone. --model and --frames/--width/--height/"
        "--steps/--guidance/--scheduler/--fps set the base stage; later stages use their "
        "models' defaults or the file's params. Each stage's time and the peak RSS are "
        "printed.",
    )
    cascade.add_argument(
        "--cascade",
        default=None,
        metavar="FILE",
        help="cascade file (.toml/.json) or bundled cascade name, e.g. shapes-256",
    )
    cascade.add_argument(
        "--stages",
        default=None,
        metavar="LIST",
        help="stages to run, comma-separated (e.g. base or base,tsr) or all [all]",
    )
    gen.set_defaults(func=cmd_generate)

    v2v = sub.add_parser(
        "v2v",
        help="re-render a video with a text prompt (video-to-video)",
        description=(
            "Noise a video part-way (--strength) and denoise it with a text prompt (SDEdit): "
            "restyle a clip, or refine a small model's output at a larger size."
        ),
        epilog='Example: vidsynth v2v in.mp4 -o out.mp4 --prompt "a blue star" --strength 0.6',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    v2v.add_argument("input", help="input video file or folder of frames")
    v2v.add_argument("-o", "--output", required=True, help=f"output file; {FORMATS_HELP}")
    v2v.add_argument("--prompt", required=True, help="what the new video shows")
    v2v.add_argument(
        "--strength",
        type=float,
        default=0.6,
        help="how much to change the input, in (0, 1]: low keeps it, 1 nearly ignores it",
    )
    _add_sampling_args(v2v)
    v2v.set_defaults(func=cmd_v2v)

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

    tp = sub.add_parser(
        "train-planner",
        help="train a text-to-video model's motion planner on the shapes world's captions",
        description=(
            "Train the small network that reads from a caption how its object travels (a "
            "model whose UNet has first_frame_motion follows it) and write it to the model "
            "folder's planner/. It sees captions only, so it takes minutes on a CPU."
        ),
        epilog="Example: vidsynth train-planner runs/my-model/final --steps 400",
    )
    tp.add_argument("model", help="text-to-video model folder to add the planner to")
    tp.add_argument("--steps", type=_size, default=400, help="optimiser steps [400]")
    tp.add_argument("--batch-size", type=_size, default=64, help="captions per step [64]")
    tp.add_argument("--seed", type=int, default=0, help="seed of the captions and weights [0]")
    tp.add_argument(
        "--name-weight",
        type=_non_negative,
        default=None,
        metavar="W",
        help="also read a lone object's shape by how like each shape's name the caption is "
        "(sentence embeddings), W times the cosine beside the planner's log-probabilities "
        "(the bundled model: 150) [off]",
    )
    tp.add_argument(
        "--checkpoints",
        default=None,
        help="folder the run saves itself to every 100 steps; the same command run again "
        "resumes from it [MODEL/planner-checkpoints, removed once the planner is written]",
    )
    tp.set_defaults(func=cmd_train_planner)

    ts = sub.add_parser(
        "train-scorer",
        help="train a text-to-video model's frame scorer on the shapes world's first frames",
        description=(
            "Train the small text-image network that scores how well a first frame matches "
            "its caption, and write it to the model folder's scorer/. The pipeline then draws "
            "--candidates first frames per clip and keeps the one it scores highest."
        ),
        epilog="Example: vidsynth train-scorer runs/my-model/final --steps 1500",
    )
    ts.add_argument("model", help="text-to-video model folder to add the scorer to")
    ts.add_argument("--steps", type=_size, default=1500, help="optimiser steps [1500]")
    ts.add_argument("--batch-size", type=_size, default=48, help="first frames per step [48]")
    ts.add_argument(
        "--candidates", type=_size, default=4, help="first frames per clip it picks from [4]"
    )
    ts.add_argument("--seed", type=int, default=0, help="seed of the scenes and weights [0]")
    ts.add_argument(
        "--checkpoints",
        default=None,
        help="folder the run saves itself to every 100 steps; the same command run again "
        "resumes from it [MODEL/scorer-checkpoints, removed once the scorer is written]",
    )
    ts.set_defaults(func=cmd_train_scorer)

    tr = sub.add_parser(
        "train-shape-reader",
        help="train a text-to-video model's shape reader, which helps its scorer pick first frames",
        description=(
            "Train the small network that reads the shape of each object a caption names on "
            "a drawn first frame (found by its colour), and write it to the model folder's "
            "shape_reader/. It learns from rendered world frames (through the model's VAE) "
            "and from the model's own candidate first frames for training captions as the "
            "world's judge reads them. When picking a first frame, the pipeline adds the "
            "likelihood of the shapes the planner read to the scorer's score; the model's "
            "planner must read shapes (vidsynth train-planner)."
        ),
        epilog="Example: vidsynth train-shape-reader runs/my-model/final --own-prompts 1536",
    )
    tr.add_argument("model", help="text-to-video model folder to add the reader to")
    tr.add_argument("--steps", type=_size, default=1500, help="optimiser steps [1500]")
    tr.add_argument("--frames", type=_size, default=8000, help="rendered frames [8000]")
    tr.add_argument(
        "--own-prompts",
        type=int,
        default=1536,
        help="training captions the model draws its candidate first frames for (0: none) [1536]",
    )
    tr.add_argument(
        "--weight",
        type=float,
        default=10.0,
        help="how much the reader's log-likelihood counts beside the scorer's logit [10]",
    )
    tr.add_argument(
        "--sure",
        type=float,
        default=None,
        metavar="LOGP",
        help="draw the first frames in two rounds: the rest of --candidates only for clips "
        "whose best frame of the first round has a log-likelihood of the planned shapes "
        "below LOGP (the bundled model: -0.2) [off: all at once]",
    )
    tr.add_argument(
        "--first-round",
        type=_size,
        default=4,
        help="first frames per clip in the first round, with --sure [4]",
    )
    tr.add_argument(
        "--guidance",
        type=float,
        default=None,
        metavar="STEP",
        help="guide the frames drawn for want of a sure one (the second round with --sure, "
        "else all) toward the planned shapes: each step of the noise levels 0.3 to 5 moves "
        "the clean estimate STEP (RMS, latent units) up the reader's gradient (the bundled "
        "model: 0.3) [off]",
    )
    tr.add_argument("--seed", type=int, default=0, help="seed of the scenes and weights [0]")
    tr.add_argument(
        "--checkpoints",
        default=None,
        help="folder the run keeps its drawn frames in and saves itself to every 100 steps; "
        "the same command run again resumes from it [MODEL/shape-reader-checkpoints, removed "
        "once the reader is written]",
    )
    tr.set_defaults(func=cmd_train_shape_reader)

    tu = sub.add_parser(
        "tune-scorer",
        help="fine-tune a model's frame scorer on the model's own first frames, judged",
        description=(
            "Draw the model's candidate first frames for training captions of the shapes "
            "world, let the world's judge say which show the caption's shapes and colours, and "
            "fine-tune the model's frame scorer (scorer/) to rank them as the judge does. The "
            "last tenth of the captions is kept out and scores the scorer before and after."
        ),
        epilog="Example: vidsynth tune-scorer runs/my-model/final --prompts 2048",
    )
    tu.add_argument("model", help="text-to-video model folder with a frame scorer")
    tu.add_argument(
        "--prompts", type=_size, default=2048, help="training captions to draw frames for [2048]"
    )
    tu.add_argument("--steps", type=_size, default=600, help="optimiser steps [600]")
    tu.add_argument("--batch-size", type=_size, default=16, help="captions per step [16]")
    tu.add_argument("--lr", type=float, default=3e-4, help="peak learning rate [3e-4]")
    tu.add_argument("--seed", type=int, default=0, help="seed of the captions and frames [0]")
    tu.add_argument(
        "--checkpoints",
        default=None,
        help="folder for the drawn frames and the run's saves; the same command run again "
        "resumes from it [MODEL/scorer-tuning, removed once the scorer is written]",
    )
    tu.set_defaults(func=cmd_tune_scorer)

    ai = sub.add_parser(
        "add-image-stage",
        help="give a text-to-video model a text-to-image UNet of its own for its first frames",
        description=(
            "Copy a trained image stage (the folder `vidsynth train` writes for a "
            "text-to-image config) into a text-to-video model folder's image_unet/. The "
            "model then draws each clip's first frame with it, and the clip around that "
            "frame with its video UNet. The two must share the VAE's latent space, the text "
            "encoder and the noise schedule."
        ),
        epilog=("Example: vidsynth add-image-stage runs/my-model/final runs/shapes-image-64/final"),
    )
    ai.add_argument("model", help="text-to-video model folder to add the image stage to")
    ai.add_argument("stage", help="the image stage: a text-to-image run's final/ folder")
    ai.set_defaults(func=cmd_add_image_stage)

    ev = sub.add_parser(
        "eval",
        help="score a model with the shapes world's judge on the fixed eval prompt set",
        description=(
            "Generate every prompt of the versioned eval set with fixed seeds and print the "
            "judge's accuracy per attribute and kind, and the seconds per video."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ev.add_argument(
        "--mode",
        choices=["t2v", "sr", "cascade", "mean", "direction"],
        default="t2v",
        help="t2v: a text-to-video model on the prompt set; sr: a super-resolution model on "
        "held-out world clips against the true render (PSNR/SSIM vs bicubic, or vs frame "
        "blending/repetition; judge); cascade: a cascade on the prompt set (judge, time per "
        "stage, peak RSS); mean: how far a text-to-video model's estimate at the noisiest "
        "step moves between prompts that differ in one attribute, against how far the mean "
        "of rendered clips moves (share 1: the model reproduces the data's difference; 0: "
        "the attribute is left to the noise); direction: clips from the same seed for "
        "captions that differ only in the direction word (steer 1: the word sets the direction "
        "as in rendered clips; 0: the noise does)",
    )
    ev.add_argument("--model", default=None, help="model (default: bundled model)")
    ev.add_argument("--prompts", default=None, help="eval set version [v1; sr: sr1]")
    ev.add_argument(
        "--kinds", default="canonical,paraphrase,two_objects", help="comma-separated kinds to run"
    )
    ev.add_argument("--limit", type=int, default=None, help="at most N prompts per kind")
    ev.add_argument("--steps", type=int, default=None, help="denoising steps (model default)")
    ev.add_argument("--guidance", type=float, default=None, help="guidance scale (model default)")
    ev.add_argument("--scheduler", default=None, help="scheduler (model default)")
    ev.add_argument("--candidates", type=_size, default=None, help=CANDIDATES_HELP)
    _add_interval_args(ev)
    ev.add_argument(
        "--clips",
        type=int,
        default=None,
        help="sr: held-out clips to score, the first N of the set [32]; mean: rendered clips "
        "per prompt for the data's mean [48]",
    )
    ev.add_argument(
        "--seeds", type=int, default=4, help="direction: seeds per subject and pair of words"
    )
    ev.add_argument(
        "--noise-aug-level", type=float, default=None, help="sr: augmentation level (model's)"
    )
    ev.add_argument(
        "--frames",
        type=int,
        default=None,
        help="sr: frames of the input clips [spatial: 32 at 16 fps; temporal: 16 at 8 fps]",
    )
    ev.add_argument("--size", type=int, default=None, help="sr: side of the input clips [64]")
    ev.add_argument(
        "--cascade", default=None, help="cascade: file or bundled name [the default cascade]"
    )
    ev.add_argument("--device", default=None, help="cpu, cuda, ...")
    ev.add_argument("--json", dest="json_out", default=None, help="also write the report here")
    ev.add_argument(
        "--model-card",
        metavar="TITLE",
        default=None,
        help="write README.md (a model card titled TITLE) into the --model folder, from its "
        "training.json and this report",
    )
    ev.set_defaults(func=cmd_eval)

    sv = sub.add_parser(
        "serve",
        help="run the studio: a web page and a REST API over a durable job queue",
        description=(
            "Serve the studio web page at / and the REST API under /v1 (OpenAPI docs at /docs). "
            "Jobs survive restarts: they are kept in SQLite under --data-dir."
        ),
        epilog="Example: vidsynth serve --port 8000, then open http://127.0.0.1:8000/",
    )
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on [127.0.0.1]")
    sv.add_argument("--port", type=_size, default=8000, help="port to listen on [8000]")
    sv.add_argument(
        "--data-dir",
        default=None,
        help="folder for the job database and videos [~/.local/share/vidsynth/studio]",
    )
    sv.add_argument("--workers", type=_size, default=1, help="jobs run at once, a model each [1]")
    sv.add_argument("--model", default=None, help="model to serve [the bundled model]")
    sv.add_argument("--device", default=None, help="cpu, cuda, cuda:N [a GPU if any]")
    sv.add_argument("--dtype", default=None, choices=["fp32", "fp16", "bf16"], help="precision")
    sv.add_argument("--threads", type=_size, default=None, help="torch CPU threads in all")
    sv.add_argument("--max-queue", type=_size, default=100, help="waiting+running jobs [100]")
    sv.add_argument("--max-frames", type=_size, default=64, help="frames per job at most [64]")
    sv.add_argument("--max-size", type=_size, default=1024, help="width, height at most [1024]")
    sv.add_argument("--max-steps", type=_size, default=200, help="denoising steps at most [200]")
    sv.add_argument(
        "--max-candidates", type=_size, default=16, help="first frames per clip at most [16]"
    )
    sv.set_defaults(func=cmd_serve)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    from vidsynth.errors import InvalidParameter
    from vidsynth.server.serve import serve
    from vidsynth.server.settings import Limits, Settings, default_data_dir

    for name in ("workers", "max_queue", "max_frames", "max_size", "max_steps", "max_candidates"):
        if getattr(args, name) < 1:
            raise InvalidParameter(f"--{name.replace('_', '-')} must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise InvalidParameter("--threads must be at least 1")
    if not 0 <= args.port <= 65535:
        raise InvalidParameter(f"--port must be between 0 and 65535, got {args.port}")
    settings = Settings(
        data_dir=Path(args.data_dir).expanduser() if args.data_dir else default_data_dir(),
        host=args.host,
        port=args.port,
        workers=args.workers,
        model=args.model,
        device=args.device,
        dtype=args.dtype,
        threads=args.threads,
        limits=Limits(
            max_queue=args.max_queue,
            max_frames=args.max_frames,
            max_width=args.max_size,
            max_height=args.max_size,
            max_steps=args.max_steps,
            max_candidates=args.max_candidates,
        ),
    )
    serve(settings)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:

    import vidsynth
    from vidsynth.errors import InvalidParameter
    from vidsynth.evaluation.prompts import KINDS
    from vidsynth.evaluation.text_to_video import evaluate

    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InvalidParameter(f"unknown kind(s) {unknown}; choose from {', '.join(KINDS)}")
    if args.model_card and args.mode not in ("t2v", "sr"):
        raise InvalidParameter("--model-card applies to --mode t2v and --mode sr")
    if args.model_card and not (args.model and (Path(args.model) / "training.json").is_file()):
        raise InvalidParameter("--model-card needs --model FOLDER of an export with training.json")
    if args.mode == "sr":
        return _eval_sr(args)
    if args.mode == "cascade":
        return _eval_cascade(args, kinds)
    if args.mode == "mean":
        return _eval_mean(args)
    if args.mode == "direction":
        return _eval_direction(args)
    pipe = vidsynth.load(args.model, device=args.device, task="text-to-video")
    from vidsynth.training.model_card import write_model_card

    with _eval_progress("eval", "video") as progress:
        report = evaluate(
            pipe,
            version=args.prompts or "v1",
            kinds=kinds,
            limit=args.limit,
            progress=progress,
            **_sampling_overrides(args),
        )
    return _report(args, pipe.name, report, write_model_card)


def _sampling_overrides(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """The sampling options given on the command line (None means the model's default)."""
    given = {
        "num_inference_steps": args.steps,
        "guidance_scale": args.guidance,
        "scheduler": args.scheduler,
        "candidates": getattr(args, "candidates", None),
        "guidance_interval": getattr(args, "guidance_interval", None),
        "first_frame_guidance_interval": getattr(args, "first_frame_guidance_interval", None),
        "clip_strength": getattr(args, "clip_strength", None),
        "first_frame_steps": getattr(args, "first_frame_steps", None),
        **extra,
    }
    return {k: v for k, v in given.items() if v is not None}


@contextmanager
def _eval_progress(desc: str, unit: str) -> Iterator[Callable[..., None]]:
    """A tqdm bar on stderr, as the `progress(done, total, ...)` callback evaluations take."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=unit, file=sys.stderr)

    def progress(done: int, total: int, *item: Any) -> None:
        bar.total = total
        bar.update(1)

    try:
        yield progress
    finally:
        bar.close()


def _report(
    args: argparse.Namespace, model: str, report: Any, card_writer: Callable | None = None
) -> int:
    """Print an eval report, write its --json and, with --model-card, the model's card."""
    report.settings["model"] = model
    print(report.table())
    _write_json(args.json_out, report.to_dict())
    if args.model_card and card_writer is not None:
        card = card_writer(Path(args.model), report.to_dict(), title=args.model_card)
        print(f"model card: {card}", file=sys.stderr)
    return 0


def _write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        import json

        from vidsynth.training.checkpoint import atomic_write_text

        atomic_write_text(Path(path), json.dumps(data, indent=2))


def _eval_sr(args: argparse.Namespace) -> int:
    """`vidsynth eval --mode sr`: a super-resolution model against the true renders."""

    import vidsynth
    from vidsynth.errors import InvalidParameter
    from vidsynth.evaluation.super_resolution import SR_EVAL_VERSION, evaluate_sr
    from vidsynth.pipelines.loading import SR_TASKS

    if args.model is None:
        raise InvalidParameter("--mode sr needs --model (a spatial-sr or temporal-sr model)")
    pipe = vidsynth.load(args.model, device=args.device)
    if getattr(pipe, "task", None) not in SR_TASKS:
        raise InvalidParameter(f"{args.model} is not a super-resolution model")
    from vidsynth.training.model_card import write_sr_model_card

    geometry: dict[str, Any] = {}
    if args.frames is not None:
        geometry["num_frames"] = args.frames
    if args.size is not None:
        geometry["low_size" if pipe.task == "spatial-sr" else "size"] = args.size
    with _eval_progress(f"eval {pipe.task}", "clip") as progress:
        report = evaluate_sr(
            pipe,
            clips=32 if args.clips is None else args.clips,
            version=args.prompts or SR_EVAL_VERSION,
            progress=progress,
            **geometry,
            **_sampling_overrides(args, noise_aug_level=args.noise_aug_level),
        )
    return _report(args, pipe.name, report, write_sr_model_card)


def _eval_mean(args: argparse.Namespace) -> int:
    """`vidsynth eval --mode mean`: the conditional-mean probe of a text-to-video model."""

    import vidsynth
    from vidsynth.evaluation.conditional_mean import probe

    pipe = vidsynth.load(args.model, device=args.device, task="text-to-video")
    clips = 48 if args.clips is None else args.clips
    return _report(args, pipe.name, probe(pipe, clips=clips))


def _eval_direction(args: argparse.Namespace) -> int:
    """`vidsynth eval --mode direction`: does the direction word set a clip's direction?"""

    import vidsynth
    from vidsynth.evaluation.direction import direction_test

    pipe = vidsynth.load(args.model, device=args.device, task="text-to-video")
    report = direction_test(pipe, seeds=args.seeds, **_sampling_overrides(args))
    return _report(args, pipe.name, report)


def _eval_cascade(args: argparse.Namespace, kinds: tuple[str, ...]) -> int:
    """`vidsynth eval --mode cascade`: the judge on a cascade's final videos, time per stage."""

    from vidsynth.evaluation.cascade import evaluate_cascade
    from vidsynth.pipelines.cascade import DEFAULT_CASCADE, resolve_cascade

    cascade = resolve_cascade(args.cascade or DEFAULT_CASCADE)
    if args.model:
        cascade = cascade.with_base(args.model)
    with _eval_progress(f"eval {cascade.name}", "video") as progress:
        report = evaluate_cascade(
            cascade,
            version=args.prompts or "v1",
            kinds=kinds,
            limit=args.limit,
            device=args.device,
            progress=progress,
        )
    print(report.table())
    out = report.settings["output"]
    if out:
        size = f"{out['width']}x{out['height']}"
        print(f"output: {out['frames']} frames {size} at {out['fps']:g} fps")
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in report.settings["stage_seconds"].items())
    print(f"seconds per stage (models loaded): {stages}")
    _write_json(args.json_out, report.to_dict())
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


def _model_folder(model: str) -> Path:
    """A model folder to add a part to; anything else is refused by name."""
    from vidsynth.errors import ModelNotFound

    folder = Path(model)
    if not (folder / "model_index.json").is_file():
        raise ModelNotFound(f"{folder} is not a model folder (no model_index.json)")
    return folder


def _add_trained_part(
    folder: Path, name: str, module: Any, report: Any, command: str, start: float, summary: str
) -> int:
    """Write a freshly trained planner or scorer into `folder`/`name`, with its record (the
    command, the code's commit, the training time and the run's report); say `summary` on
    stderr and the part's folder on stdout."""
    from dataclasses import asdict

    from vidsynth.training.export import add_part
    from vidsynth.training.trainer import _git_commit

    record = {
        "command": command,
        "git_commit": _git_commit(),
        "train_seconds": round(time.perf_counter() - start, 1),
        **asdict(report),
    }
    add_part(folder, name, module, record)
    print(f"{name}: {summary}", file=sys.stderr)
    print(os.fspath(folder / name))
    return 0


def cmd_train_planner(args: argparse.Namespace) -> int:
    import logging
    import shutil

    from vidsynth.pipelines.loading import load_text_encoder, read_model_index
    from vidsynth.training.planner import train_planner

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folder = _model_folder(args.model)
    text_encoder = load_text_encoder(folder, read_model_index(folder))
    start = time.perf_counter()
    checkpoints = Path(args.checkpoints or folder / "planner-checkpoints")
    planner, report = train_planner(
        text_encoder,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        checkpoints=checkpoints,
        name_weight=args.name_weight,
    )
    command = (
        f"vidsynth train-planner {args.model} --steps {args.steps} "
        f"--batch-size {args.batch_size} --seed {args.seed}"
    )
    if args.name_weight is not None:
        command += f" --name-weight {args.name_weight:g}"
    summary = (
        f"{report.steps} steps, held-out caption accuracy {100 * report.held_out_accuracy:.1f}%"
    )
    code = _add_trained_part(folder, "planner", planner, report, command, start, summary)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the planner is written: nothing to resume
    return code


def cmd_train_scorer(args: argparse.Namespace) -> int:
    import logging
    import shutil

    import torch
    from diffusers import AutoencoderKL

    from vidsynth.pipelines.loading import load_text_encoder, read_model_index
    from vidsynth.training.scorer import train_scorer

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folder = _model_folder(args.model)
    index = read_model_index(folder)
    text_encoder = load_text_encoder(folder, index)
    vae = None
    if (folder / "vae").is_dir():
        vae = AutoencoderKL.from_pretrained(folder / "vae", torch_dtype=torch.float32).eval()
    size = index.get("_vidsynth", {}).get("defaults", {}).get("height", 64)
    checkpoints = Path(args.checkpoints or folder / "scorer-checkpoints")
    start = time.perf_counter()
    scorer, report = train_scorer(
        text_encoder,
        vae,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        image_size=int(size),
        checkpoints=checkpoints,
    )
    scorer.register_to_config(candidates=args.candidates)
    command = (
        f"vidsynth train-scorer {args.model} --steps {args.steps} --batch-size "
        f"{args.batch_size} --candidates {args.candidates} --seed {args.seed}"
    )
    summary = (
        f"{report.steps} steps, own caption above its near misses for "
        f"{100 * report.held_out_accuracy:.1f}% of held-out frames"
    )
    code = _add_trained_part(folder, "scorer", scorer, report, command, start, summary)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the scorer is written: nothing to resume
    return code


def cmd_train_shape_reader(args: argparse.Namespace) -> int:
    import logging
    import shutil

    import vidsynth
    from vidsynth.errors import InvalidParameter
    from vidsynth.training.shape_reader import train_shape_reader

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folder = _model_folder(args.model)
    if args.own_prompts < 0:
        raise InvalidParameter(f"--own-prompts must be 0 or more, got {args.own_prompts}")
    if not args.weight > 0:
        raise InvalidParameter(f"--weight must be positive, got {args.weight}")
    if args.sure is not None and not args.sure <= 0:
        raise InvalidParameter(f"--sure is a log-likelihood, 0 or below; got {args.sure}")
    if args.guidance is not None and not args.guidance > 0:
        raise InvalidParameter(f"--guidance is a step above 0, got {args.guidance}")
    pipe = vidsynth.load(folder)
    if pipe.vae is None or pipe.scorer is None:
        raise InvalidParameter(f"{folder} has no frame scorer (scorer/) for a reader to help")
    if pipe.planner is None or not pipe.planner.config.shapes:
        raise InvalidParameter(
            f"{folder}'s planner reads no shapes; train one with vidsynth train-planner first"
        )
    checkpoints = Path(args.checkpoints or folder / "shape-reader-checkpoints")
    start = time.perf_counter()
    reader, report = train_shape_reader(
        pipe.vae,
        pipe,
        frames=args.frames,
        own_prompts=args.own_prompts,
        steps=args.steps,
        seed=args.seed,
        image_size=int(pipe.defaults.height),
        checkpoints=checkpoints,
    )
    reader.register_to_config(
        weight=args.weight, sure=args.sure, first_round=args.first_round, guidance=args.guidance
    )
    rounds = "" if args.sure is None else f" --sure {args.sure:g} --first-round {args.first_round}"
    if args.guidance is not None:
        rounds += f" --guidance {args.guidance:g}"
    command = (
        f"vidsynth train-shape-reader {args.model} --steps {args.steps} --frames {args.frames} "
        f"--own-prompts {args.own_prompts} --weight {args.weight:g}{rounds} --seed {args.seed}"
    )
    summary = (
        f"{report.steps} steps, held-out rendered crops read right "
        f"{100 * report.held_out_accuracy:.1f}%, held-out own crops as the judge "
        f"{100 * report.held_out_own_agreement:.1f}%"
    )
    code = _add_trained_part(folder, "shape_reader", reader, report, command, start, summary)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the reader is written: nothing to resume
    return code


def cmd_tune_scorer(args: argparse.Namespace) -> int:
    import logging
    import shutil

    from tqdm import tqdm

    import vidsynth
    from vidsynth.errors import InvalidParameter
    from vidsynth.training.scorer_tuning import draw_own_frames, tune_scorer

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folder = _model_folder(args.model)
    pipe = vidsynth.load(folder, device="cpu")
    if pipe.scorer is None:
        raise InvalidParameter(
            f"{folder} has no frame scorer to tune; train one first: vidsynth train-scorer "
            f"{args.model}"
        )
    checkpoints = Path(args.checkpoints or folder / "scorer-tuning")
    start = time.perf_counter()
    with tqdm(total=args.prompts, desc="own first frames", unit="caption") as bar:
        own = draw_own_frames(
            pipe,
            args.prompts,
            seed=args.seed,
            folder=checkpoints / "frames",
            progress=lambda done, total: bar.update(done - bar.n),
        )
    scorer, report = tune_scorer(
        pipe.scorer,
        own,
        lambda texts: pipe.encode_prompts(texts),
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        checkpoints=checkpoints / "tuning",
    )
    command = (
        f"vidsynth tune-scorer {args.model} --prompts {args.prompts} --steps {args.steps} "
        f"--batch-size {args.batch_size} --lr {args.lr} --seed {args.seed}"
    )
    summary = (
        f"on {report.held_out} held-out captions, the pick's judged quality "
        f"{100 * report.held_out_before:.1f}% before, {100 * report.held_out_after:.1f}% after "
        f"(first frame {100 * report.held_out_first:.1f}%, best of "
        f"{report.candidates} {100 * report.held_out_best:.1f}%)"
    )
    report.base = pipe.scorer.record  # how the scorer was trained before (load_scorer's)
    code = _add_trained_part(folder, "scorer", scorer, report, command, start, summary)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the scorer is written: nothing to resume
    return code


def cmd_add_image_stage(args: argparse.Namespace) -> int:
    from vidsynth.training.export import add_image_stage

    part = add_image_stage(_model_folder(args.model), Path(args.stage))
    print(f"image stage: {args.stage} -> {part}", file=sys.stderr)
    print(os.fspath(part))
    return 0


@contextmanager
def _progress_bar(quiet: bool, prefix: str = "") -> Iterator[Callable[[str, int, int], None]]:
    """A pipeline `progress(stage, step, total)` hook drawing one tqdm bar per stage."""
    from tqdm import tqdm

    bar = None

    def progress(stage: str, step: int, total: int) -> None:
        nonlocal bar
        if quiet:
            return
        desc = prefix + stage
        if bar is None or bar.desc != desc:
            if bar is not None:
                bar.close()
            bar = tqdm(
                total=total,
                desc=desc,
                unit="step" if stage == "denoise" else "",
                file=sys.stderr,
                leave=False,
            )
        bar.n = step
        bar.refresh()

    try:
        yield progress
    finally:
        if bar is not None:
            bar.close()


def _load(model: str | None, args: argparse.Namespace, task: str = "text-to-video") -> Any:
    import vidsynth

    pipe = vidsynth.load(model, device=args.device, dtype=args.dtype, task=task)
    print(
        f"model: {pipe.name} on {pipe.device} ({str(pipe.dtype).removeprefix('torch.')})",
        file=sys.stderr,
    )
    return pipe


def _save(result: Any, output: str, t0: float) -> int:
    """Write the clip, then a summary on stderr and its path last on stdout (for scripts)."""
    path = result.save(output)
    elapsed = time.perf_counter() - t0
    print(
        f"{result.num_frames} frames {result.frames.shape[2]}x{result.frames.shape[1]} "
        f"at {result.fps:g} fps, seed {result.seed}, {elapsed:.1f} s",
        file=sys.stderr,
    )
    print(os.fspath(path))
    return 0


def _check_refine(args: argparse.Namespace) -> None:
    """Refinement options fail before the base stage runs, not after minutes of it."""
    from vidsynth.errors import InvalidParameter

    if args.refine_model is None:
        if args.refine_size is not None:
            raise InvalidParameter("--refine-size needs --refine-model")
        return
    from vidsynth.pipelines.loading import resolve_model_path, vae_spatial_factor
    from vidsynth.pipelines.params import check_size, check_strength

    try:
        check_strength(args.refine_strength)
    except InvalidParameter as err:
        raise InvalidParameter(f"--refine-{err}") from None
    path = resolve_model_path(args.refine_model)  # a missing model fails now; fetches a hub id
    if args.refine_size is not None:
        width, height = args.refine_size
        try:
            check_size(height, width, vae_spatial_factor(path))
        except InvalidParameter as err:
            raise InvalidParameter(f"--refine-size: {err}") from None


def _refine(args: argparse.Namespace, base: Any) -> Any:
    """Zeroscope's second stage: upscale `base` and re-render it with the refine model."""
    import gc

    import torch

    # The base model is gone by now (the caller dropped it): collect it, so the two models
    # never sit in memory together.
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    pipe = _load(args.refine_model, args, task="video-to-video")
    width, height = args.refine_size or (pipe.defaults.width, pipe.defaults.height)
    print(
        f"refine: {base.frames.shape[2]}x{base.frames.shape[1]} -> {width}x{height}, "
        f"strength {args.refine_strength:g}",
        file=sys.stderr,
    )
    with _progress_bar(args.quiet, "refine ") as progress:
        return pipe(
            base.frames,
            args.prompt,
            args.negative_prompt,
            strength=args.refine_strength,
            seed=base.seed,
            width=width,
            height=height,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            fps=base.fps,
            scheduler=args.scheduler,
            progress=progress,
        )


def _pick_cascade(args: argparse.Namespace) -> Any:
    """The cascade `generate` runs, or None for a single model (the base model alone).

    An explicit --cascade wins; without --model or --refine-model, the bundled default cascade
    runs once all its models are installed. --stages picks stages of either.
    """
    from vidsynth.errors import InvalidParameter
    from vidsynth.pipelines.cascade import default_cascade, resolve_cascade

    if args.cascade is not None:
        cascade = resolve_cascade(args.cascade)
    elif args.model is None and args.refine_model is None:
        cascade = default_cascade()
    else:
        cascade = None
    if cascade is None:
        if args.stages not in (None, "base", "all"):
            raise InvalidParameter(
                "--stages needs a cascade, and the bundled one's super-resolution models are "
                "not installed; pass --cascade FILE"
            )
        return None
    if args.refine_model is not None:
        raise InvalidParameter(
            "--refine-model does not combine with a cascade; add a video-to-video stage to the "
            "cascade file instead"
        )
    if args.stages is not None:
        cascade = cascade.select(args.stages)
    return cascade.with_base(
        args.model,
        num_frames=args.frames,
        height=args.height,
        width=args.width,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        fps=args.fps,
        candidates=args.candidates,
        guidance_interval=args.guidance_interval,
        first_frame_guidance_interval=args.first_frame_guidance_interval,
        clip_strength=args.clip_strength,
        first_frame_steps=args.first_frame_steps,
        scheduler=args.scheduler,
    )


def _generate_cascade(args: argparse.Namespace, cascade: Any) -> int:
    """Run the stages one after another, reporting each stage's time and memory."""
    from tqdm import tqdm

    from vidsynth.pipelines.cascade import run_cascade
    from vidsynth.sampling.noise import resolve_seed

    seed = resolve_seed(args.seed)
    names = " -> ".join(f"{s.name} ({s.model})" for s in cascade.stages)
    print(f"cascade {cascade.name or '(unnamed)'}: {names}", file=sys.stderr)
    print(f"seed: {seed}", file=sys.stderr)
    t0 = time.perf_counter()
    with _progress_bar(args.quiet) as progress:
        out = run_cascade(
            cascade,
            args.prompt,
            args.negative_prompt,
            seed=seed,
            device=args.device,
            dtype=args.dtype,
            progress=progress,
            on_stage=lambda report: tqdm.write(f"stage {report.line()}", file=sys.stderr),
        )
    code = _save(out.video, args.output, t0)
    print(f"peak RSS: {out.peak_rss_mib:.0f} MiB", file=sys.stderr)
    return code


def cmd_generate(args: argparse.Namespace) -> int:
    from vidsynth.io.video import output_format
    from vidsynth.sampling.noise import resolve_seed

    output_format(args.output)  # an unsupported suffix fails now, not after minutes of work
    _check_refine(args)
    cascade = _pick_cascade(args)
    if cascade is not None:
        return _generate_cascade(args, cascade)
    seed = resolve_seed(args.seed)
    t0 = time.perf_counter()
    pipe = _load(args.model, args)
    print(f"seed: {seed}", file=sys.stderr)
    with _progress_bar(args.quiet) as progress:
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
            candidates=args.candidates,
            guidance_interval=args.guidance_interval,
            first_frame_guidance_interval=args.first_frame_guidance_interval,
            clip_strength=args.clip_strength,
            first_frame_steps=args.first_frame_steps,
            scheduler=args.scheduler,
            progress=progress,
        )
    if args.refine_model is not None:
        del pipe  # the stages run one after another: free the base model first
        result = _refine(args, result)
    return _save(result, args.output, t0)


def cmd_v2v(args: argparse.Namespace) -> int:
    from vidsynth.io.video import output_format
    from vidsynth.pipelines.video_to_video import load_frames
    from vidsynth.sampling.noise import resolve_seed

    output_format(args.output)
    frames, fps = load_frames(args.input)  # an unreadable input fails before the model loads
    seed = resolve_seed(args.seed)
    t0 = time.perf_counter()
    pipe = _load(args.model, args, task="video-to-video")
    print(f"seed: {seed}", file=sys.stderr)
    with _progress_bar(args.quiet) as progress:
        result = pipe(
            frames,
            args.prompt,
            args.negative_prompt,
            strength=args.strength,
            seed=seed,
            height=args.height,
            width=args.width,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            fps=args.fps if args.fps is not None else fps,
            scheduler=args.scheduler,
            progress=progress,
        )
    return _save(result, args.output, t0)


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
