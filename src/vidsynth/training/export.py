"""Write trained models in diffusers' layout (fp16 safetensors), atomically."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL

from vidsynth.training.config import Config, SRSettings

SAMPLING_SCHEDULER = "DDIMScheduler"


def _replace_dir(tmp: Path, final: Path) -> None:
    """Swap a finished folder into place; the old one is removed only after the new exists."""
    old = final.with_name(final.name + ".old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _fresh_tmp(final: Path) -> Path:
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def export_vae(
    vae: AutoencoderKL,
    folder: Path,
    dtype: torch.dtype = torch.float16,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """A standalone VAE folder: folder/vae/{config.json, diffusion_pytorch_model.safetensors}."""
    tmp = _fresh_tmp(folder)
    vae.to(dtype).save_pretrained(tmp / "vae", safe_serialization=True)
    if provenance is not None:
        (tmp / "training.json").write_text(json.dumps(provenance, indent=2))
    _replace_dir(tmp, folder)
    return folder


def export_t2v(
    unet: torch.nn.Module,
    vae: AutoencoderKL,
    noise_config: dict[str, Any],
    config: Config,
    folder: Path,
    dtype: torch.dtype = torch.float16,
    provenance: dict[str, Any] | None = None,
    parts: dict[str, torch.nn.Module] | None = None,
) -> Path:
    """A complete text-to-video model folder that `vidsynth.load(folder)` reads, with
    `parts` (``PART_ENTRIES``: the motion planner a ``first_frame_motion`` UNet follows, the
    frame scorer that picks its first frames) each in its own subfolder."""
    args = (unet, vae, noise_config, config, folder, dtype, provenance)
    return _export_diffusion_model(*args, "TextToVideoSDPipeline", {}, parts)


# The optional components of a text-to-video model folder, beside the UNet, VAE, scheduler
# and text encoder that every one has
PART_ENTRIES = {
    "planner": ["vidsynth", "MotionPlanner"],
    "scorer": ["vidsynth", "FrameScorer"],
    "shape_reader": ["vidsynth", "ShapeReader"],
    "image_unet": ["diffusers", "UNet2DConditionModel"],
}


def export_image_unet(
    model: torch.nn.Module,
    noise_config: dict[str, Any],
    config: Config,
    folder: Path,
    dtype: torch.dtype = torch.float16,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """An image stage (an `ImageUNet`, or a UNet3D that learned first frames alone):
    folder/image_unet/ in diffusers' layout, the noise schedule it was trained with
    (folder/scheduler/) and its record (training.json), ready for ``vidsynth add-image-stage``
    to put into a text-to-video model folder."""
    tmp = _fresh_tmp(folder)
    _save_part(model, tmp / "image_unet", dtype, None)
    sched = {k: v for k, v in noise_config.items() if not k.startswith("_")}
    (tmp / "scheduler").mkdir()
    sched_json = json.dumps({**sched, "_class_name": SAMPLING_SCHEDULER}, indent=2)
    (tmp / "scheduler" / "scheduler_config.json").write_text(sched_json)
    record = {
        **(provenance or {}),
        "text_encoder_package": config.model.text_encoder_package,
        "text_max_length": config.model.text_max_length,
    }
    (tmp / "training.json").write_text(json.dumps(record, indent=2))
    _replace_dir(tmp, folder)
    return folder


def part_entry(name: str, module: torch.nn.Module) -> list[str]:
    """model_index.json's entry for a part: ``PART_ENTRIES``, but an image stage of the video
    UNet's architecture is named as one."""
    from vidsynth.models.unet3d import UNet3DModel

    if name == "image_unet" and isinstance(module, UNet3DModel):
        return ["diffusers", "UNet3DConditionModel"]
    return PART_ENTRIES[name]


def add_part(
    folder: Path,
    name: str,
    module: torch.nn.Module,
    record: dict[str, Any],
    dtype: torch.dtype = torch.float16,
) -> Path:
    """Put (or replace) `module` in a model folder's `name`/ (a ``PART_ENTRIES`` key), with
    `record` (how it was trained) as its training.json, and list it in model_index.json."""
    final = folder / name
    tmp = _fresh_tmp(final)
    shutil.rmtree(tmp)  # save_pretrained makes it
    _save_part(module, tmp, dtype, record)
    _replace_dir(tmp, final)
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index[name] = part_entry(name, module)
    part = index_path.with_name(index_path.name + ".tmp")
    part.write_text(json.dumps(index, indent=2))
    os.replace(part, index_path)
    return final


def add_image_stage(folder: Path, stage: Path) -> Path:
    """Put the image stage `stage` (an `export_image_unet` folder) into the text-to-video
    model `folder`, which then draws its first frames with it. Refused, naming the mismatch,
    unless the two share their latent space, text encoder and noise schedule."""
    from vidsynth.errors import InvalidParameter, ModelNotFound
    from vidsynth.models.image_unet import load_image_stage
    from vidsynth.training.trainer import latent_space_fingerprint

    if not (stage / "image_unet").is_dir() or not (stage / "training.json").is_file():
        raise ModelNotFound(
            f"{stage} is not an image stage (no image_unet/ and training.json; "
            "`vidsynth train` of a text-to-image config writes one)"
        )
    record = json.loads((stage / "training.json").read_text())
    index = json.loads((folder / "model_index.json").read_text())
    extra = index.get("_vidsynth", {})
    if record.get("latent_space") != latent_space_fingerprint(folder):
        raise InvalidParameter(
            f"{stage} was trained in another latent space than {folder}'s VAE: train it "
            "with model.vae_path set to that model"
        )
    for key in ("text_encoder_package", "text_max_length"):
        if record.get(key) != extra.get(key):
            raise InvalidParameter(
                f"{stage} was trained with {key}={record.get(key)!r}, {folder} uses "
                f"{extra.get(key)!r}"
            )

    def schedule(path: Path) -> dict[str, Any]:
        config = json.loads((path / "scheduler" / "scheduler_config.json").read_text())
        return {k: v for k, v in config.items() if not k.startswith("_")}

    theirs, ours = schedule(stage), schedule(folder)
    differ = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))
    if differ:
        raise InvalidParameter(
            f"{stage} was trained with another noise schedule than {folder}'s "
            f"(they differ in {', '.join(differ)}); the two stages share one sampler"
        )
    return add_part(folder, "image_unet", load_image_stage(stage / "image_unet"), record)


def _save_part(
    module: torch.nn.Module, folder: Path, dtype: torch.dtype, record: dict[str, Any] | None
) -> None:
    from vidsynth.models.unet3d import UNet3DModel

    if isinstance(module, UNet3DModel):
        module.save_pretrained(folder, dtype=dtype)
    else:
        # nn.Module.to: ModelMixin.to warns about a dtype change it has nothing to keep from
        weights = torch.nn.Module.to(copy.deepcopy(module), dtype)
        weights.save_pretrained(folder, safe_serialization=True)
    if record is not None:
        (folder / "training.json").write_text(json.dumps(record, indent=2))


# model_index.json's _class_name per super-resolution task: our pipelines, diffusers has none
SR_PIPELINE_CLASSES = {
    "spatial-sr": "VidsynthSpatialSRPipeline",
    "temporal-sr": "VidsynthTemporalSRPipeline",
}


def export_sr(
    unet: torch.nn.Module,
    vae: AutoencoderKL | None,
    noise_config: dict[str, Any],
    config: Config,
    sr: SRSettings,
    folder: Path,
    dtype: torch.dtype = torch.float16,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """A super-resolution model folder: the text-to-video layout (without vae/ for a
    pixel-space stage), plus what the stage is (``_vidsynth.task``) and how its input is
    conditioned (``_vidsynth.sr``)."""
    extra = {"task": config.task, "sr": sr.to_dict()}
    return _export_diffusion_model(
        unet,
        vae,
        noise_config,
        config,
        folder,
        dtype,
        provenance,
        SR_PIPELINE_CLASSES[config.task],
        extra,
    )


def _export_diffusion_model(
    unet: torch.nn.Module,
    vae: AutoencoderKL | None,
    noise_config: dict[str, Any],
    config: Config,
    folder: Path,
    dtype: torch.dtype,
    provenance: dict[str, Any] | None,
    pipeline_class: str,
    extra: dict[str, Any],
    parts: dict[str, torch.nn.Module] | None = None,
) -> Path:
    import diffusers

    mc = config.model
    tmp = _fresh_tmp(folder)
    unet.save_pretrained(tmp / "unet", dtype=dtype)
    if vae is not None:
        vae_copy = AutoencoderKL.from_config(vae.config)
        vae_copy.load_state_dict(vae.state_dict())
        vae_copy.to(dtype).save_pretrained(tmp / "vae", safe_serialization=True)
    sched = {
        **{k: v for k, v in noise_config.items() if not k.startswith("_")},
        "_class_name": SAMPLING_SCHEDULER,
        "prediction_type": unet.config.prediction_type,
    }
    (tmp / "scheduler").mkdir()
    (tmp / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched, indent=2))
    defaults = {
        "num_frames": config.data.num_frames,
        "height": config.data.size,
        "width": config.data.size,
        "fps": config.data.fps,
        **mc.defaults,
    }
    index = {
        "_class_name": pipeline_class,
        "_diffusers_version": diffusers.__version__,
        "scheduler": ["diffusers", SAMPLING_SCHEDULER],
        "unet": ["diffusers", "UNet3DConditionModel"],
        **({"vae": ["diffusers", "AutoencoderKL"]} if vae is not None else {}),
        "text_encoder": ["transformers", "BertModel"],
        **{name: part_entry(name, module) for name, module in (parts or {}).items()},
        "_vidsynth": {
            **extra,
            "text_encoder_package": mc.text_encoder_package,
            "text_max_length": mc.text_max_length,
            "defaults": defaults,
        },
    }
    (tmp / "model_index.json").write_text(json.dumps(index, indent=2))
    for name, module in (parts or {}).items():
        _save_part(module, tmp / name, dtype, getattr(module, "record", None))
    if provenance is not None:
        (tmp / "training.json").write_text(json.dumps(provenance, indent=2))
    _replace_dir(tmp, folder)
    return folder
