"""Find and load a model: the bundled default, a local diffusers-format folder, or a hub id."""

from __future__ import annotations

import json
import logging
import os
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from vidsynth.devices import resolve_device, resolve_dtype
from vidsynth.errors import InvalidParameter, ModelNotFound

log = logging.getLogger(__name__)

DEFAULT_MODEL = "shapes-t2v-64"
"""Name of the bundled default text-to-video model (under vidsynth/assets/models/)."""

# Files worth fetching from a hub repo: configs, tokenizers and safetensors weights, not the
# duplicate .bin / .ckpt copies many repos carry.
HUB_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors"]


def bundled_models_dir() -> Path:
    return Path(str(resources.files("vidsynth"))) / "assets" / "models"


def bundled_model_names() -> list[str]:
    root = bundled_models_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "model_index.json").is_file())


def resolve_model_path(model: str | os.PathLike | None) -> Path:
    """Turn the user's `model` argument into a local folder with a model_index.json."""
    if model is None:
        model = DEFAULT_MODEL
    text = str(model)
    path = Path(text).expanduser()
    if path.exists():
        if not (path / "model_index.json").is_file():
            raise ModelNotFound(
                f"{path} is not a diffusers-format model folder: it has no model_index.json "
                "(expected model_index.json with unet/, vae/, text_encoder/, tokenizer/, "
                "scheduler/ beside it)"
            )
        return path
    bundled = bundled_models_dir() / text
    if (bundled / "model_index.json").is_file():
        return bundled
    if text == DEFAULT_MODEL:
        raise ModelNotFound(
            f"the bundled default model {DEFAULT_MODEL!r} is not installed in this copy of "
            "vidsynth; pass --model with a diffusers-format folder or a hub id "
            "(e.g. damo-vilab/text-to-video-ms-1.7b)"
        )
    if text.count("/") == 1 and not text.startswith((".", "/")):
        return _download(text)
    names = ", ".join(bundled_model_names()) or "none installed"
    raise ModelNotFound(
        f"no model folder at {text!r}, and it is neither a bundled model ({names}) "
        "nor a hub id like 'org/name'"
    )


def _download(repo_id: str) -> Path:
    """Fetch a hub repo (users with a network only; nothing in vidsynth's tests does this)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS))
    except Exception as err:  # the hub client raises many types; the user needs one message
        raise ModelNotFound(
            f"could not get {repo_id!r} from the Hugging Face hub ({type(err).__name__}: {err}). "
            "Without network access, download it elsewhere and pass the local folder."
        ) from err


def vae_spatial_factor(path: Path) -> int:
    """How much a model folder's VAE downsamples (8 for ModelScope/Zeroscope), from its config
    alone: sizes can be checked before the weights are loaded."""
    try:
        config = json.loads((path / "vae" / "config.json").read_text())
        return 2 ** (len(config["block_out_channels"]) - 1)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelNotFound(f"{path / 'vae' / 'config.json'} is missing or invalid: {err}") from err


def read_model_index(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / "model_index.json").read_text())
    except json.JSONDecodeError as err:
        raise ModelNotFound(f"{path / 'model_index.json'} is not valid JSON: {err}") from err


def _weights_variant(folder: Path, stem: str) -> str | None:
    """diffusers/transformers look for `stem.safetensors`; repos that ship only the fp16 copy
    name it `stem.fp16.safetensors`, which needs `variant="fp16"`."""
    if any(folder.glob(f"{stem}.safetensors*")) or any(folder.glob(f"{stem}.bin*")):
        return None
    if any(folder.glob(f"{stem}.fp16.*")):
        return "fp16"
    return None


SR_TASKS = ("spatial-sr", "temporal-sr")
TASKS = ("text-to-video", "video-to-video", *SR_TASKS)
# What a model folder can run, by the task its model_index.json names (none: text-to-video).
RUNS = {"text-to-video": ("text-to-video", "video-to-video")}


def model_task(index: dict[str, Any]) -> str:
    """The task a model folder was made for, from its model_index.json."""
    return str(index.get("_vidsynth", {}).get("task", "text-to-video"))


def load(
    model: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    task: str | None = None,
):
    """Load a pipeline for `task` (see TASKS). `model=None` is the bundled default model.

    `task=None` is the model's own (text-to-video unless its model_index.json names a
    super-resolution task). Every text-to-video checkpoint also does video-to-video: same
    weights, another sampler. A super-resolution model does its own task only.
    """
    if task is not None and task not in TASKS:
        raise InvalidParameter(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    from diffusers import AutoencoderKL
    from transformers.utils import logging as hf_logging

    from vidsynth.models.unet3d import UNet3DModel
    from vidsynth.pipelines.text_to_video import Defaults, TextToVideoPipeline

    hf_logging.disable_progress_bar()
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    path = resolve_model_path(model)
    index = read_model_index(path)
    extra = index.get("_vidsynth", {})
    made_for = model_task(index)
    if made_for not in TASKS:
        raise ModelNotFound(f"{path / 'model_index.json'} names an unknown task {made_for!r}")
    task = made_for if task is None else task
    runs = RUNS.get(made_for, (made_for,))
    if task not in runs:
        raise InvalidParameter(
            f"{path} is a {made_for} model; it cannot run {task} (it runs: {', '.join(runs)})"
        )
    # a pixel-space model (temporal SR) has no VAE
    parts = ("unet", "scheduler") if made_for == "temporal-sr" else ("unet", "vae", "scheduler")
    for part in parts:
        if not (path / part).is_dir():
            raise ModelNotFound(f"{path} has no {part}/ folder")

    unet = UNet3DModel.from_pretrained(path / "unet", dtype=dt)
    vae = None
    if "vae" in parts:
        vae = AutoencoderKL.from_pretrained(
            path / "vae",
            torch_dtype=dt,
            variant=_weights_variant(path / "vae", "diffusion_pytorch_model"),
        )
    text_encoder = load_text_encoder(path, index, dt)
    scheduler_config = _read_scheduler_config(path / "scheduler")

    scale = 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1
    sample = int(unet.config.sample_size) * scale
    defaults = Defaults(height=sample, width=sample)
    for key, value in extra.get("defaults", {}).items():
        if not hasattr(defaults, key):
            log.warning("ignoring unknown default %r in %s", key, path / "model_index.json")
            continue
        setattr(defaults, key, value)
    if made_for in SR_TASKS:
        from vidsynth.pipelines.super_resolution import SR_PIPELINES

        sr = extra.get("sr", {})
        if "factor" not in sr:
            raise ModelNotFound(f"{path / 'model_index.json'} names no _vidsynth.sr.factor")
        return SR_PIPELINES[made_for](
            unet,
            text_encoder,
            scheduler_config,
            vae=vae,
            factor=int(sr["factor"]),
            noise_aug_level=sr.get("noise_aug_level", 0.1),
            latent_residual=bool(sr.get("latent_residual", False)),
            motion_compensation=bool(sr.get("motion_compensation", False)),
            defaults=defaults,
            name=str(model),
        ).to(dev)
    planner = None
    if unet.config.first_frame_motion:  # it follows the motion a planner reads from the text
        from vidsynth.models.motion_planner import load_planner

        if not (path / "planner").is_dir():
            raise ModelNotFound(f"{path} has no planner/ folder (its UNet follows planned motion)")
        planner = load_planner(path / "planner")
    scorer = None
    if (path / "scorer").is_dir():  # it picks among drawn first frames
        from vidsynth.models.frame_scorer import load_scorer

        scorer = load_scorer(path / "scorer")
    shape_reader = None
    if (path / "shape_reader").is_dir():  # it checks the drawn first frames' shapes too
        from vidsynth.models.shape_reader import load_shape_reader

        shape_reader = load_shape_reader(path / "shape_reader")
    image_unet = None
    if (path / "image_unet").is_dir():  # its first frames have a UNet of their own
        from vidsynth.models.image_unet import load_image_stage

        image_unet = load_image_stage(path / "image_unet", dtype=dt)
    pipe = TextToVideoPipeline(
        unet,
        vae,
        text_encoder,
        scheduler_config,
        defaults=defaults,
        name=str(model or DEFAULT_MODEL),
        planner=planner,
        scorer=scorer,
        image_unet=image_unet,
        shape_reader=shape_reader,
    )
    pipe.to(dev)
    if task == "video-to-video":
        from vidsynth.pipelines.video_to_video import VideoToVideoPipeline

        return VideoToVideoPipeline.from_pipeline(pipe)
    return pipe


def load_text_encoder(path: Path, index: dict[str, Any], dtype: torch.dtype | None = None):
    """The text encoder a model folder names: its own text_encoder/ (and tokenizer/), or the
    packaged one its model_index.json names."""
    from vidsynth.models.text_encoder import TextEncoder, packaged_encoder_path

    extra = index.get("_vidsynth", {})
    if (path / "text_encoder").is_dir():
        te_path, tok_path = path / "text_encoder", path / "tokenizer"
    elif "text_encoder_package" in extra:
        te_path = tok_path = packaged_encoder_path(extra["text_encoder_package"])
    else:
        raise ModelNotFound(f"{path} has no text_encoder/ folder")
    kind = "clip" if "CLIP" in str(index.get("text_encoder", "")) else None
    return TextEncoder.from_pretrained(
        te_path,
        tok_path,
        kind=kind,
        max_length=extra.get("text_max_length"),
        dtype=dtype,
        variant=_weights_variant(te_path, "model"),
    )


def _read_scheduler_config(folder: Path) -> dict[str, Any]:
    for name in ("scheduler_config.json", "config.json"):
        if (folder / name).is_file():
            return json.loads((folder / name).read_text())
    raise ModelNotFound(f"{folder} has no scheduler_config.json")
