"""The training loop shared by the VAE and the text-to-video UNet.

Runs single-process on a CPU (what CI tests) and unchanged under `accelerate launch` on
several GPUs. Checkpoints are atomic; a run started again with the same config resumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import itertools
import json
import logging
import math
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from diffusers import AutoencoderKL, DDPMScheduler
from diffusers.training_utils import EMAModel
from torch.utils.data import DataLoader

from vidsynth.errors import InvalidParameter
from vidsynth.models.first_frame import (
    MotionGuide,
    colour_masks,
    first_frame_concat,
    motion_guide,
)
from vidsynth.models.frame_scorer import FrameScorer, load_scorer
from vidsynth.models.motion_planner import MotionPlanner, load_planner
from vidsynth.training.checkpoint import CheckpointStore, atomic_write_text
from vidsynth.training.config import (
    SR_TASKS,
    Config,
    TrainConfig,
    sr_settings,
    without_new_defaults,
)
from vidsynth.training.crops import crop_corners, take_crops
from vidsynth.training.data import FolderClips, WorldClips, make_dataset, world_palette
from vidsynth.training.objectives import diffusion_loss, vae_loss

log = logging.getLogger(__name__)


def clip_guides(batch: dict, video: torch.Tensor, frames: int) -> list[MotionGuide]:
    """The motion guides of a batch of world clips (``data.object_guides``), one per object
    row, their masks found by colour on the first frames of `video` (B, 3, F, H, W) in [-1, 1]:
    what ``first_frame.warp_scene`` animates the first frame with. A batch without motion
    (clips from files) gets one guide that stays in place."""
    motion = batch.get("motion")
    if motion is None:
        return [motion_guide(None, len(video), frames)]
    image = (video[:, :, 0].float().cpu() + 1) / 2
    masks = colour_masks(image, torch.tensor(world_palette()), batch["colour"])
    b = len(motion)
    return [
        dataclasses.replace(
            motion_guide(motion[:, i], b, frames, batch["centre"][:, i]), mask=masks[:, i]
        )
        for i in range(motion.shape[1])
    ]


@dataclass
class TrainResult:
    step: int
    output_dir: Path
    exported: Path | None
    stopped_early: bool


class _StopFlag:
    """SIGTERM/SIGINT ask the loop to save and stop at the next step boundary."""

    def __init__(self) -> None:
        self.set = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # only the main thread may set handlers
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.set:  # a second signal: stop now
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def lr_factor(step: int, tc: TrainConfig) -> float:
    """The learning rate at `step` as a share of train.lr: linear warmup, constant, then (with
    train.lr_decay_steps) a linear decay to train.lr_final over the run's last steps."""
    factor = min(1.0, (step + 1) / max(1, tc.warmup))
    start = tc.steps - tc.lr_decay_steps
    if tc.lr_decay_steps and step >= start:
        done = min(1.0, (step - start + 1) / tc.lr_decay_steps)
        factor *= 1.0 - done * (1.0 - tc.lr_final)
    return factor


def _mixed_precision(choice: str) -> str:
    if choice != "auto":
        return choice
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"  # CPUs without AMX gain nothing from bf16 autocast


def _init_record(config: Config) -> dict[str, Any] | None:
    """The training record (training.json) of the model folder `model.init_from` names."""
    record = Path(config.model.init_from) / "training.json"
    if config.model.init_from and record.is_file():
        return json.loads(record.read_text())
    return None


def _git_commit() -> str | None:
    """The commit of the code doing the training, for the model card."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _fresh_vae(kwargs: dict[str, Any]) -> AutoencoderKL:
    """A new VAE whose posterior starts narrow (std ≈ e^-3).

    With the default init, log-variance ≈ 0: the sampled latent is mostly noise, the decoder
    can only learn the average image, and training stalls for thousands of steps.
    """
    vae = AutoencoderKL(**kwargs)
    c = vae.config.latent_channels
    if vae.quant_conv is not None:
        with torch.no_grad():
            vae.quant_conv.bias[c:] = -6.0
    return vae


def _vae_folder(path: str | Path) -> Path:
    """A VAE's folder: `path` itself, or a model folder's vae/."""
    path = Path(path)
    return path / "vae" if (path / "vae").is_dir() else path


def latent_space_fingerprint(vae_folder: str | Path) -> str | None:
    """A hash of what defines a VAE's latent space: its encoder, quant_conv and scaling factor.

    Two VAE folders with the same fingerprint give the same latents, whatever their decoders.
    None when the folder holds no readable VAE.
    """
    import hashlib

    from safetensors.torch import load_file

    folder = _vae_folder(vae_folder)
    try:
        config = json.loads((folder / "config.json").read_text())
        weights = sorted(folder.glob("diffusion_pytorch_model*.safetensors"))
        tensors = {k: v for w in weights for k, v in load_file(w).items()}
    except (OSError, ValueError):
        return None
    digest = hashlib.sha256(repr(config.get("scaling_factor")).encode())
    for name in sorted(tensors):
        if name.startswith(("encoder.", "quant_conv.")):
            digest.update(name.encode())
            digest.update(tensors[name].float().numpy().tobytes())
    return digest.hexdigest() if weights else None


def _same_model(saved: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether a checkpoint's [model] config is the current one.

    Two keys may change: `defaults` (sampling settings written into exports; training never
    reads them), and `vae_path`, to another VAE with the same latent space (a decoder-only
    fine-tune of the VAE the UNet was trained on): only the decoder differs, which the UNet
    never sees. Fields added to the config since the checkpoint was made count as unchanged
    while they keep their defaults.
    """
    current = without_new_defaults(saved, current)
    if saved == current:
        return True
    rest = lambda m: {k: v for k, v in m.items() if k not in ("vae_path", "defaults")}
    if rest(saved) != rest(current):
        return False
    if saved.get("vae_path") == current.get("vae_path"):
        return True
    old, new = (latent_space_fingerprint(m.get("vae_path", "")) for m in (saved, current))
    return old is not None and old == new


def _check_sr_unet(task: str, unet: Any, latent_channels: int) -> None:
    """A super-resolution UNet needs the conditioning channels and the level embedding."""
    from vidsynth.models.sr_conditioning import condition_channels, sample_channels

    extra = condition_channels(task, latent_channels)
    sample = sample_channels(task, latent_channels)
    what = "latent" if task == "spatial-sr" else "RGB"
    if unet.in_channels != sample + extra:
        raise InvalidParameter(
            f"task {task} needs model.unet.in_channels = {sample + extra} "
            f"({sample} {what} + {extra} conditioning channels), got {unet.in_channels}"
        )
    if unet.out_channels != sample:
        raise InvalidParameter(
            f"task {task} needs model.unet.out_channels = {sample} ({what} channels), got "
            f"{unet.out_channels}"
        )
    if not unet.time_cond_proj_dim:
        raise InvalidParameter(
            f"task {task} needs model.unet.time_cond_proj_dim (e.g. 32): the UNet is told the "
            "noise augmentation level of its input through it"
        )


def _batches(
    config: Config,
    seed: int,
    rank: int,
    start_sample: int,
    *,
    images: bool = False,
    image_frame: str = "random",
) -> Iterator[dict]:
    """Endless batches; for the world source, resumable at an exact sample index.

    With `images`, the batches of joint image–video training: `train.image_batch_size` single
    frames, each from its own clip (for the world, a stream of scenes of its own), at a random
    time or, with `image_frame` "first", the clips' first frames.
    """
    low_size = None
    if config.task == "spatial-sr":  # the model's input: the clip at 1/factor the side
        low_size = config.data.size // sr_settings(config).factor
    bs = config.train.image_batch_size if images else config.train.batch_size
    # a text-to-image model's batches are single frames, drawn as the image batches are
    single = images or config.task == "text-to-image"
    if config.data.source == "folder":
        ds = FolderClips(
            config.data,
            seed=seed + rank + images,
            low_size=low_size,
            single_frame=single,
            image_frame=image_frame,
        )
        epoch = 0
        while True:
            gen = torch.Generator().manual_seed(seed * 1000 + rank * 100 + epoch + images * 7)
            loader = DataLoader(ds, batch_size=bs, shuffle=True, generator=gen, drop_last=True)
            if len(ds) < bs:
                loader = DataLoader(ds, batch_size=len(ds), shuffle=True, generator=gen)
            yield from loader
            epoch += 1
    else:
        ds = WorldClips(
            config.data,
            seed=seed,
            rank=rank,
            start=start_sample,
            low_size=low_size,
            single_frame=single,
            image_frame=image_frame,
            stream=int(images),
        )
        # A loader draws its base seed from the global RNG unless given its own generator;
        # that draw would shift the dropout stream of a resumed run.
        gen = torch.Generator().manual_seed(seed + images)
        # Sample i is clips[i]: with the sequential sampler, workers render ahead in
        # parallel and the batches come in the same order as without them (exact resume).
        workers = config.train.num_workers
        yield from DataLoader(
            ds,
            batch_size=bs,
            sampler=itertools.count(start_sample),
            num_workers=workers,
            generator=gen,
            persistent_workers=workers > 0,
        )


def freeze_parameters(model: torch.nn.Module, patterns: list[str]) -> int:
    """Stop training the parameters whose names match any of `patterns` (fnmatch); a pattern
    that matches none is refused by name (a typo would otherwise freeze nothing, silently).
    Returns how many parameters were frozen."""
    frozen = 0
    names = [n for n, _ in model.named_parameters()]
    for pattern in patterns:
        matched = [p for n, p in model.named_parameters() if fnmatch.fnmatchcase(n, pattern)]
        if not matched:
            raise InvalidParameter(
                f"train.freeze pattern {pattern!r} matches no parameter of the model (its "
                f"names look like {names[0]!r} and {names[len(names) // 2]!r})"
            )
        for parameter in matched:
            frozen += int(parameter.requires_grad)
            parameter.requires_grad_(False)
    return frozen


def _match_parameter_order(model: torch.nn.Module, tensors: dict[str, Any]) -> None:
    """Reorder a checkpoint's optimizer and EMA states, which are lists in parameter order,
    to `model`'s order, matching them by the parameter names in its saved weights.

    The order depends on how the model was built: a module added to a trained UNet when
    fine-tuning (a frame embedding, say) comes after all others, while the same UNet loaded
    from an export that has it registers it in its place. Resuming such a run from a model
    folder that already has the module must still pair each state with its own parameter.
    """
    names = [n for n, _ in model.named_parameters()]
    known = set(names)
    saved = [k for k in tensors["model"] if k in known]  # state_dict keeps the saving order
    if saved == names or sorted(saved) != sorted(names):
        return  # same order, or not the same parameters (load_state_dict has said so)
    where = {name: i for i, name in enumerate(saved)}
    ema = tensors["ema"]
    ema["shadow_params"] = [ema["shadow_params"][where[n]] for n in names]
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    optimizer = tensors["optimizer"]
    groups = optimizer["param_groups"]
    if len(groups) != 1 or len(groups[0]["params"]) != len(trained):
        raise InvalidParameter("cannot match this checkpoint's optimizer state to the model")
    trainable = set(trained)
    saved_trained = [n for n in saved if n in trainable]
    index = {name: i for i, name in enumerate(saved_trained)}
    old = optimizer["state"]
    optimizer["state"] = {i: old[index[n]] for i, n in enumerate(trained) if index[n] in old}


class Trainer:
    """Builds the model for `config.task`, then trains, checkpoints, samples and exports."""

    def __init__(self, config: Config):
        self.config = config
        self.out = Path(config.output_dir)
        tc = config.train
        self.accelerator = Accelerator(
            mixed_precision=_mixed_precision(tc.mixed_precision),
            gradient_accumulation_steps=tc.grad_accum,
        )
        self.device = self.accelerator.device
        torch.manual_seed(tc.seed + self.accelerator.process_index)
        self.store = CheckpointStore(self.out / "checkpoints", keep=tc.keep_checkpoints)
        self.planner: MotionPlanner | None = None  # a fine-tuned model's, set by _build_model
        self.scorer: FrameScorer | None = None  # the same
        self.image_unet: torch.nn.Module | None = None  # the same
        self.shape_reader: torch.nn.Module | None = None  # the same
        self.model = self._build_model()
        if tc.gradient_checkpointing and hasattr(self.model, "enable_gradient_checkpointing"):
            self.model.enable_gradient_checkpointing()
        if tc.freeze_encoder:
            if self.config.task != "vae":
                raise InvalidParameter("train.freeze_encoder applies to task 'vae' only")
            for part in (self.model.encoder, self.model.quant_conv):
                if part is not None:
                    part.requires_grad_(False)
        if tc.freeze:
            frozen = freeze_parameters(self.model, tc.freeze)
            log.info("train.freeze: %d parameter tensors left as they are", frozen)
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=tc.lr,
            weight_decay=tc.weight_decay,
        )
        self.lr_schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, tc)
        )
        self.ema = EMAModel(
            self.model.parameters(), decay=tc.ema_decay, use_ema_warmup=True, power=2 / 3
        )
        self.model, self.optimizer, self.lr_schedule = self.accelerator.prepare(
            self.model, self.optimizer, self.lr_schedule
        )
        self.ema.to(self.device)
        self.step = 0
        self.samples_seen = 0
        self.images_seen = 0  # single frames of joint image–video training
        self.image_batches: Iterator[dict] | None = None
        self.train_seconds = 0.0  # wall time spent in steps, summed over resumed runs
        self.train_threads: int | None = None  # torch CPU threads of the training run
        # The record of the model this run started from, read now: the init_from folder may
        # be replaced later (by this run's own export, when it becomes the bundled model),
        # and checkpoints carry it so that a resumed run's export still names the right one.
        self.init_record = _init_record(config)

    # -- models ---------------------------------------------------------------------------
    def _build_model(self) -> torch.nn.Module:
        mc = self.config.model
        if self.config.task == "vae":
            if mc.init_from:
                return AutoencoderKL.from_pretrained(
                    Path(mc.init_from) / "vae", torch_dtype=torch.float32
                )
            return _fresh_vae(mc.vae)
        from vidsynth.models.text_encoder import TextEncoder, packaged_encoder_path
        from vidsynth.models.unet3d import UNet3DConfig, UNet3DModel

        if self.config.task == "text-to-image":
            from vidsynth.models.image_unet import ImageUNet, load_image_stage

            if mc.init_from:
                base = Path(mc.init_from)
                # its image stage goes on learning; a model without one lends its video UNet,
                # whose copy then learns first frames alone
                own = base / "image_unet"
                unet = load_image_stage(own if own.is_dir() else base / "unet")
                vae_folder = base / "vae"
                self.noise_config = json.loads(
                    (base / "scheduler" / "scheduler_config.json").read_text()
                )
            else:
                unet = ImageUNet.from_config(mc.unet)
                vae_folder = _vae_folder(mc.vae_path)
                # v-prediction unless the config says otherwise, as the video UNets default to
                self.noise_config = {"prediction_type": "v_prediction", **mc.scheduler}
        elif mc.init_from:  # fine-tuning a whole model folder
            base = Path(mc.init_from)
            # fp32 master weights: exported models are stored in fp16
            unet = UNet3DModel.from_pretrained(base / "unet", dtype=torch.float32)
            # Embeddings the config asks for and the model lacks are added zero-initialised,
            # so the fine-tune starts as the model it was (but for the temporal position
            # embedding, which has no weights to start at zero).
            if mc.unet.get("frame_embedding") and not unet.config.frame_embedding:
                unet.add_frame_embedding(text=bool(mc.unet.get("frame_embedding_text")))
            if mc.unet.get("position_embedding") and not unet.config.position_embedding:
                unet.add_position_embedding()
            wants_tpe = mc.unet.get("temporal_position_embedding")
            if wants_tpe and not unet.config.temporal_position_embedding:
                unet.add_temporal_position_embedding()
            if mc.unet.get("first_frame") and not unet.config.first_frame:
                unet.add_first_frame_input(warm_start=mc.first_frame_warm_start)
            if (base / "planner").is_dir():  # the motion planner goes on with the model
                self.planner = load_planner(base / "planner")
            if (base / "image_unet").is_dir():  # and the first frames' own UNet
                from vidsynth.models.image_unet import load_image_stage

                self.image_unet = load_image_stage(base / "image_unet")
            if (base / "shape_reader").is_dir():  # and the reader that helps the scorer
                from vidsynth.models.shape_reader import load_shape_reader

                self.shape_reader = load_shape_reader(base / "shape_reader")
            if (base / "scorer").is_dir():  # and so does the frame scorer
                self.scorer = load_scorer(base / "scorer")
                # with the number of first frames the base model draws for it
                index = json.loads((base / "model_index.json").read_text())
                n = index.get("_vidsynth", {}).get("defaults", {}).get("candidates")
                if n:
                    self.scorer.register_to_config(candidates=int(n))
            if mc.unet.get("first_frame_motion") and not unet.config.first_frame_motion:
                # no weights: the first-frame input starts to move with the caption's motion
                unet.config.first_frame_motion = True
                unet.config.__post_init__()
            vae_folder = base / "vae"
            self.noise_config = json.loads(
                (base / "scheduler" / "scheduler_config.json").read_text()
            )
        else:
            unet = UNet3DModel(UNet3DConfig.from_dict(mc.unet))
            vae_folder = _vae_folder(mc.vae_path)
            self.noise_config = dict(mc.scheduler)
        self.vae: AutoencoderKL | None = None
        if self.config.task != "temporal-sr":  # pixel space: no VAE
            self.vae = AutoencoderKL.from_pretrained(vae_folder).to(self.device).eval()
            self.vae.requires_grad_(False)
        self.text_encoder = TextEncoder.from_pretrained(
            packaged_encoder_path(mc.text_encoder_package), max_length=mc.text_max_length
        ).to(self.device)
        prediction = getattr(unet.config, "prediction_type", None)
        self.noise_scheduler = DDPMScheduler.from_config(
            {**self.noise_config, **({"prediction_type": prediction} if prediction else {})}
        )
        if self.config.task in SR_TASKS:
            self.sr = sr_settings(self.config)
            latent = int(self.vae.config.latent_channels) if self.vae is not None else 4
            _check_sr_unet(self.config.task, unet.config, latent)
            self.crop_align = self._crop_align(unet.config)
        return unet

    def _crop_align(self, unet: Any) -> int:
        """The grid a training crop's corners snap to; checks that train.crop_size fits it.

        Corners must land on the latent grid and the low-resolution input's pixels, and the
        side must survive the UNet's downsampling.
        """
        vae_factor = 1
        if self.vae is not None:
            vae_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        unet_factor = 2 ** (len(unet.block_out_channels) - 1)
        align = math.lcm(vae_factor, self.sr.factor) if self.config.task == "spatial-sr" else 1
        multiple = math.lcm(align, vae_factor * unet_factor)
        crop = self.config.train.crop_size
        if crop and crop % multiple:
            raise InvalidParameter(
                f"train.crop_size={crop} must be a multiple of {multiple} for this model "
                f"(VAE ×{vae_factor}, UNet ×{unet_factor}, SR factor {self.sr.factor})"
            )
        return align

    @property
    def unwrapped(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)

    # -- checkpoints ------------------------------------------------------------------------
    def save_checkpoint(self) -> Path | None:
        if not self.accelerator.is_main_process:
            return None
        tensors = {
            "model": self.unwrapped.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_schedule": self.lr_schedule.state_dict(),
            # dropout draws from the global generators: restore them for an exact resume
            "rng": {
                "cpu": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
        }
        state = {
            "samples_seen": self.samples_seen,
            "images_seen": self.images_seen,
            "train_seconds": self.train_seconds,
            "device": str(self.device),
            "torch_threads": self.train_threads or torch.get_num_threads(),
            "num_processes": self.accelerator.num_processes,
            "config": self.config.to_dict(),
        }
        if self.init_record is not None:
            state["init_record"] = self.init_record
        path = self.store.save(self.step, tensors, state)
        log.info("saved checkpoint %s", path)
        return path

    def resume(self) -> bool:
        self.store.clean_partial()
        if self.store.latest() is None:
            return False
        tensors, state = self.store.load(map_location="cpu")
        saved_model = state.get("config", {}).get("model")
        if saved_model is not None and not _same_model(saved_model, self.config.to_dict()["model"]):
            raise InvalidParameter(
                f"the checkpoints in {self.store.root} were made with a different [model] "
                "config; restore that config, or use a new output_dir to start over"
            )
        frozen = state.get("config", {}).get("train", {}).get("freeze", [])
        if frozen != self.config.train.freeze:
            # the optimizer's state belongs to the parameters that were trained
            raise InvalidParameter(
                f"the checkpoints in {self.store.root} were made with train.freeze = {frozen}, "
                f"not {self.config.train.freeze}; restore it, or use a new output_dir to start "
                "over"
            )
        self.unwrapped.load_state_dict(tensors["model"])
        _match_parameter_order(self.unwrapped, tensors)
        self.optimizer.load_state_dict(tensors["optimizer"])
        self.lr_schedule.load_state_dict(tensors["lr_schedule"])
        # The saved optimizer holds the lr of the old schedule; a schedule changed since (a
        # decay added to a running config) applies from the next step on.
        schedule = getattr(self.lr_schedule, "scheduler", self.lr_schedule)
        for group, base in zip(self.optimizer.param_groups, schedule.base_lrs, strict=True):
            group["lr"] = base * lr_factor(schedule.last_epoch, self.config.train)
        self.ema.load_state_dict(tensors["ema"])
        self.ema.to(self.device)
        if "rng" in tensors:
            torch.set_rng_state(tensors["rng"]["cpu"])
            if tensors["rng"]["cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(tensors["rng"]["cuda"])
        self.step = int(state["step"])
        self.samples_seen = int(state["samples_seen"])
        self.images_seen = int(state.get("images_seen", 0))
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.train_threads = state.get("torch_threads")
        # Checkpoints from before the record was kept: the init_from folder as it is now.
        self.init_record = state.get("init_record", self.init_record)
        log.info("resumed from step %d", self.step)
        return True

    # -- one step -----------------------------------------------------------------------------
    def _drop_captions(self, captions: list[str], generator: torch.Generator) -> list[str]:
        """Blank a `train.cfg_dropout` share of the captions (classifier-free guidance)."""
        drop = torch.rand(len(captions), generator=generator, device=generator.device)
        drop = drop < self.config.train.cfg_dropout
        return ["" if d else c for c, d in zip(captions, drop.tolist(), strict=True)]

    def loss(self, batch: dict, generator: torch.Generator | None) -> tuple[torch.Tensor, dict]:
        if self.config.task == "vae":
            # frames are independent images for the VAE
            images = batch["video"].to(self.device).permute(0, 2, 1, 3, 4).flatten(0, 1)
            return vae_loss(self.model, images, self.config.train.kl_weight, generator)
        if self.config.task in SR_TASKS:
            return self.sr_loss(batch, batch["video"].to(self.device), generator)
        if self.config.task == "text-to-image":
            return self.denoising_loss(batch, generator, images=True)
        loss, logs = self.denoising_loss(batch, generator)
        if self.image_batches is not None:
            images = next(self.image_batches)
            image_loss, image_logs = self.denoising_loss(images, generator, images=True)
            self.images_seen += len(images["caption"])
            loss = loss + self.config.train.image_weight * image_loss
            logs = {**logs, "image_mse": image_logs["mse"]}
        return loss, logs

    def denoising_loss(
        self, batch: dict, generator: torch.Generator, *, images: bool = False
    ) -> tuple[torch.Tensor, dict]:
        """The text-to-video denoising loss on a batch of clips or, with `images`, of single
        frames (B, 3, 1, H, W) of independent scenes, the UNet's temporal layers bypassed."""
        from vidsynth.models.vae import encode_video

        captions = self._drop_captions(batch["caption"], generator)
        with torch.no_grad():
            video = batch["video"].to(self.device)
            latents = encode_video(self.vae, video, sample=True, generator=generator)
            context = self.text_encoder(captions)
        concat = None
        if getattr(self.unwrapped.config, "first_frame", False):
            concat = self._first_frame_input(
                latents,
                generator,
                images=images,
                video=video,
                batch=batch,
            )
        return diffusion_loss(
            self.model,
            self.noise_scheduler,
            latents,
            context,
            generator=generator,
            **self._timestep_options(),
            concat=concat,
            independent_frames=images,
            frame_index=self._frame_index(batch) if images else None,
            prediction_type=self.noise_scheduler.config.prediction_type,
        )

    def _first_frame_input(
        self,
        latents: torch.Tensor,
        generator: torch.Generator,
        *,
        images: bool,
        video: torch.Tensor,
        batch: dict,
    ) -> torch.Tensor:
        """The first-frame input of a UNet with one: each clip's own first frame, dropped for
        a `train.first_frame_dropout` share of them; single images never get one (it would be
        the answer). A UNet with ``first_frame_motion`` gets it animated by the clip's true
        motion (``object_guides``: each object by its own, found on the `video`'s first frame
        by its colour, ``first_frame.colour_masks``); clips without one stay in place."""
        if images:
            return first_frame_concat(None, latents)
        keep = torch.rand(len(latents), generator=generator, device=generator.device)
        keep = keep >= self.config.train.first_frame_dropout
        guide = None
        if self.unwrapped.config.first_frame_motion:
            guide = clip_guides(batch, video, latents.shape[2])
        return first_frame_concat(latents[:, :, 0], latents, keep.to(latents.device), guide)

    def _timestep_options(self) -> dict[str, float]:
        """How `diffusion_loss` draws and weights timesteps, the same for every task."""
        return {
            "snr_gamma": self.config.train.snr_gamma,
            "timestep_shift": self.config.train.timestep_shift,
        }

    def image_frame(self) -> str:
        """train.image_frame, "auto" resolved: the first frames for a UNet with a first-frame
        input, whose image stage draws a clip's first frame (and so must learn where clips
        start), else frames at random times."""
        if self.config.train.image_frame != "auto":
            return self.config.train.image_frame
        if self.config.task == "text-to-image":  # it draws a video model's first frames
            return "first"
        return "first" if getattr(self.unwrapped.config, "first_frame", False) else "random"

    def _frame_index(self, batch: dict) -> torch.Tensor | None:
        """Single frames' times in their clips (B, 1), for a UNet with a frame embedding."""
        if not getattr(self.unwrapped.config, "frame_embedding", False):
            return None
        return torch.as_tensor(batch["frame"], device=self.device).reshape(-1, 1)

    def sr_loss(
        self, batch: dict, video: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, dict]:
        """The denoising loss of a super-resolution stage, its input noise-augmented.

        Spatial (latent space): the input is the clip rendered at 1/factor the side
        (batch["low"]), the target the clip's latents. Temporal (pixel space): the input is
        the clip's frames 0, factor, 2·factor, ...; the target is RESIDUAL_SCALE × (each other
        frame − the blend of its neighbours, or their motion-compensated interpolation).
        """
        from vidsynth.models.sr_conditioning import (
            RESIDUAL_SCALE,
            SPATIAL_RESIDUAL_SCALE,
            augment,
            interpolation,
            level_features,
            neighbours,
            new_frame_positions,
            spatial_condition,
            upscale_pixels,
        )
        from vidsynth.models.vae import encode_video

        device = self.device
        captions = self._drop_captions(batch["caption"], generator)
        b = video.shape[0]
        with torch.no_grad():
            context = self.text_encoder(captions)
            level = torch.rand(b, generator=generator, device=device) * self.sr.aug_max_level
            if self.config.task == "spatial-sr":
                low = batch["low"].to(device)
                crop = self.config.train.crop_size
                # The bicubic upscale of the whole frame: where the detail is, and the base of
                # a residual model (its latents, as residual_base has them), cropped like the
                # truth so that crops change nothing inside the window.
                up = None
                if crop or self.sr.latent_residual:
                    up = upscale_pixels(low, tuple(video.shape[-2:]))
                if crop:
                    corners = self._crop_corners((video - up).abs(), generator)
                    video, up = take_crops(video, corners, crop), take_crops(up, corners, crop)
                    low = take_crops(low, corners, crop, scale=self.sr.factor)
                target = encode_video(self.vae, video, sample=True, generator=generator)
                if self.sr.latent_residual:
                    target = (target - encode_video(self.vae, up)) * SPATIAL_RESIDUAL_SCALE
                cond = spatial_condition(low, tuple(target.shape[-2:]))
                noise = torch.randn(cond.shape, generator=generator, device=device)
                cond = augment(cond, level, noise)
            else:
                k = self.sr.factor
                known = video[:, :, ::k]
                inter = interpolation(known, k, self.sr.motion_compensation)
                new = video[:, :, new_frame_positions(known.shape[2], k)]
                target = (new - inter.base) * RESIDUAL_SCALE
                noise = torch.randn(known.shape, generator=generator, device=device)
                cond = inter.condition(*neighbours(augment(known, level, noise), k))
                if self.config.train.crop_size:  # pixel space: crop what the UNet sees
                    corners = self._crop_corners(target.abs(), generator)
                    size = self.config.train.crop_size
                    target = take_crops(target, corners, size)
                    cond = take_crops(cond, corners, size)
            unet_config = self.unwrapped.config
            features = level_features(level, unet_config.time_cond_proj_dim, target)
        loss, logs = diffusion_loss(
            self.model,
            self.noise_scheduler,
            target,
            context,
            generator=generator,
            **self._timestep_options(),
            concat=cond,
            timestep_cond=features,
        )
        return loss, {**logs, "aug_level": float(level.mean())}

    def _crop_corners(self, detail: torch.Tensor, generator: torch.Generator) -> list:
        """Training crop corners for a batch, `detail` (B, C, F, H, W) ≥ 0 saying where the
        stage has work to do (summed over channels and frames)."""
        return crop_corners(
            detail.sum(dim=(1, 2)),
            self.config.train.crop_size,
            align=self.crop_align,
            focus=self.config.train.crop_focus,
            generator=generator,
        )

    # -- the loop ------------------------------------------------------------------------------
    def train(
        self, *, max_steps: int | None = None, max_minutes: float | None = None
    ) -> TrainResult:
        tc = self.config.train
        acc = self.accelerator
        self.resume()
        self.train_threads = torch.get_num_threads()
        target = tc.steps if max_steps is None else min(tc.steps, self.step + max_steps)
        rank, frame = acc.process_index, self.image_frame()
        batches = _batches(self.config, tc.seed, rank, self.samples_seen, image_frame=frame)
        if tc.image_batch_size:
            self.image_batches = _batches(
                self.config,
                tc.seed,
                acc.process_index,
                self.images_seen,
                images=True,
                image_frame=self.image_frame(),
            )
        gen = torch.Generator(device=self.device)
        t_start = last_save = time.monotonic()
        log_path = self.out / "train_log.jsonl"
        self.out.mkdir(parents=True, exist_ok=True)
        from tqdm import tqdm

        bar = tqdm(
            total=tc.steps,
            initial=self.step,
            desc=self.config.task,
            disable=not acc.is_main_process,
            dynamic_ncols=True,
        )
        stopped = False
        running = None
        with _StopFlag() as stop:
            while self.step < target:
                t0 = time.monotonic()
                for _ in range(tc.grad_accum):
                    batch = next(batches)
                    # the noise of step s is a function of (seed, rank, s): resumable exactly
                    gen.manual_seed(tc.seed * 1_000_003 + acc.process_index * 7919 + self.step)
                    with acc.accumulate(self.model):
                        loss, logs = self.loss(batch, gen)
                        acc.backward(loss)
                        if acc.sync_gradients and tc.max_grad_norm > 0:
                            acc.clip_grad_norm_(self.model.parameters(), tc.max_grad_norm)
                        self.optimizer.step()
                        self.lr_schedule.step()
                        self.optimizer.zero_grad(set_to_none=True)
                    self.samples_seen += len(batch["caption"])
                self.ema.step(self.unwrapped.parameters())
                self.step += 1
                value = loss.item()
                if not math.isfinite(value):
                    raise FloatingPointError(f"loss became {value} at step {self.step}")
                running = value if running is None else 0.98 * running + 0.02 * value
                dt = time.monotonic() - t0
                self.train_seconds += dt
                clips = tc.batch_size * tc.grad_accum * acc.num_processes
                bar.update(1)
                bar.set_postfix(loss=f"{running:.4f}", clips_s=f"{clips / dt:.1f}")
                if acc.is_main_process and self.step % tc.log_every == 0:
                    with open(log_path, "a") as fh:
                        fh.write(
                            json.dumps(
                                {
                                    "step": self.step,
                                    "loss": value,
                                    "avg": running,
                                    "lr": self.lr_schedule.get_last_lr()[0],
                                    "sec_per_step": dt,
                                    **logs,
                                }
                            )
                            + "\n"
                        )
                now = time.monotonic()
                due = self.step % tc.save_every == 0 or now - last_save > tc.save_minutes * 60
                if due or self.step == target or stop.set:
                    acc.wait_for_everyone()
                    self.save_checkpoint()
                    last_save = now
                if tc.sample_every and self.step % tc.sample_every == 0 and acc.is_main_process:
                    self.write_samples()
                if stop.set or (max_minutes and (now - t_start) > max_minutes * 60):
                    stopped = self.step < tc.steps
                    if self.step % tc.save_every and not due:
                        self.save_checkpoint()
                    break
        bar.close()
        exported = None
        if self.step >= tc.steps and acc.is_main_process:
            exported = self.export(self.out / "final")
        return TrainResult(self.step, self.out, exported, stopped)

    # -- outputs ---------------------------------------------------------------------------------
    def ema_model(self) -> torch.nn.Module:
        """A copy of the model holding the EMA weights (what gets sampled and exported)."""
        import copy

        model = copy.deepcopy(self.unwrapped).eval()
        self.ema.copy_to(model.parameters())
        return model

    def export(self, folder: Path) -> Path:
        from vidsynth.training.export import export_image_unet, export_sr, export_t2v, export_vae

        provenance = {
            "step": self.step,
            "samples_seen": self.samples_seen,
            "images_seen": self.images_seen,
            "train_seconds": round(self.train_seconds, 1),
            "device": str(self.device),
            "torch_threads": self.train_threads,
            "num_processes": self.accelerator.num_processes,
            "config_file": self.config.source_file,
            "overrides": self.config.overrides,
            "git_commit": _git_commit(),
            "config": self.config.to_dict(),
        }
        if self.config.train.image_batch_size or self.config.task == "text-to-image":
            provenance["image_frame"] = self.image_frame()
        if self.init_record is not None:
            provenance["init"] = self.init_record  # the run it continued
        if self.config.task == "text-to-image":
            # its latents must be those of the model it joins: `add-image-stage` checks
            mc = self.config.model
            provenance["latent_space"] = latent_space_fingerprint(mc.init_from or mc.vae_path)
        elif self.config.task != "vae":
            vae_record = Path(self.config.model.vae_path) / "training.json"
            if self.config.model.init_from:  # the VAE came with the model it continued
                if "vae" in provenance.get("init", {}):
                    provenance["vae"] = provenance["init"]["vae"]
            elif self.config.model.vae_path and vae_record.is_file():
                provenance["vae"] = json.loads(vae_record.read_text())
        if self.config.task == "vae":
            vae = self.ema_model()
            if self.config.train.freeze_encoder:
                # same encoder, same latents: keep the scale the UNet was trained with
                scale = float(self.unwrapped.config.scaling_factor)
            else:
                scale = self.latent_scaling_factor(vae)
            vae.register_to_config(scaling_factor=scale)
            log.info("latent scaling factor: %.4f", scale)
            return export_vae(vae, folder, provenance=provenance)
        if self.config.task == "text-to-image":
            return export_image_unet(
                self.ema_model(), self.noise_config, self.config, folder, provenance=provenance
            )
        if self.config.task in SR_TASKS:
            return export_sr(
                self.ema_model(),
                self.vae,
                self.noise_config,
                self.config,
                self.sr,
                folder,
                provenance=provenance,
            )
        return export_t2v(
            self.ema_model(),
            self.vae,
            self.noise_config,
            self.config,
            folder,
            provenance=provenance,
            parts={
                name: part
                for name, part in (
                    ("planner", self.planner),
                    ("scorer", self.scorer),
                    ("image_unet", self.image_unet),
                    ("shape_reader", self.shape_reader),
                )
                if part is not None
            },
        )

    @torch.no_grad()
    def latent_scaling_factor(self, vae: AutoencoderKL, clips: int = 64) -> float:
        """1 / std of the posterior means over held-out clips, so diffusion sees unit-variance
        latents (Rombach et al. 2022, sec. 4.3.2; SD's 0.18215 came from the same rule)."""
        ds = make_dataset(self.config.data, seed=self.config.train.seed + 10_000)
        n = clips if isinstance(ds, WorldClips) else min(clips, len(ds))  # the world is endless
        batch = next(iter(DataLoader(ds, batch_size=clips, sampler=range(n))))
        images = batch["video"].to(self.device).permute(0, 2, 1, 3, 4).flatten(0, 1)
        z = vae.encode(images).latent_dist.mode()
        return float(1.0 / z.float().std())

    def write_samples(self) -> None:
        folder = self.out / "samples" / f"step-{self.step:07d}"
        if self.config.task in SR_TASKS:  # held-out world clips, scored against the truth
            from vidsynth.training.samples import write_sr_samples

            write_sr_samples(self, folder)
            return
        if self.config.task in ("vae", "text-to-image") or not self.config.train.sample_prompts:
            return
        from vidsynth.training.samples import write_samples

        write_samples(self, folder)


def train(
    config: Config, *, max_steps: int | None = None, max_minutes: float | None = None
) -> TrainResult:
    """Train (or resume) the run that `config` describes."""
    result = Trainer(config).train(max_steps=max_steps, max_minutes=max_minutes)
    atomic_write_text(
        Path(config.output_dir) / "status.json",
        json.dumps({"step": result.step, "done": result.exported is not None}, indent=2),
    )
    return result
