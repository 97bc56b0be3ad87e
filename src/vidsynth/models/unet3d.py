"""Text-to-video UNet, weight-compatible with diffusers' ``UNet3DConditionModel``.

This is the ModelScope T2V / Zeroscope denoiser. A diffusers ``unet/`` folder (``config.json`` +
``diffusion_pytorch_model[.fp16].safetensors``, possibly sharded) loads directly: our
``state_dict()`` keys and shapes are exactly diffusers' for the same config, and
``save_pretrained`` writes a folder diffusers can load back.

On top of the reference behaviour, ``forward`` has keyword-only extension points (channel
concatenation, extra cross-attention tokens, ControlNet-style residuals, an additive embedding)
and the config records the prediction parameterisation.

Data flow: the video ``(B, C, F, H, W)`` is folded to ``(B*F, C, H, W)`` so that every 2D layer
processes frames independently; temporal layers unfold the frame axis internally.

Inference speed-ups over the reference, all numerically equivalent (fp32 outputs agree to ~1e-5)
and invisible in the state dict: channels-last activations (faster oneDNN convolutions; the
temporal conv and the transformers' token views need no transposes), conv kernels re-laid out
channels-last once, q/k/v of self-attention fused into one matmul, the temporal conv run as a
Conv2d, the feed-forward chunked over tokens, in-place residuals/activations where autograd is
off, and cross-attention that folds frames into the query sequence instead of repeating the
text context per frame. Attention masks are not supported (the reference UNet3D pipelines
never pass one).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vidsynth.models.embeddings import (
    FrameEmbedding,
    PositionEmbedding,
    TimestepMLP,
    timestep_features,
)
from vidsynth.models.first_frame import first_frame_channels
from vidsynth.models.transformers import TemporalTransformer
from vidsynth.models.unet_blocks import (
    DOWN_BLOCK_TYPES,
    UP_BLOCK_TYPES,
    DownBlock3D,
    MidBlock3D,
    UpBlock3D,
)

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
WEIGHTS_INDEX_NAME = "diffusion_pytorch_model.safetensors.index.json"
PREDICTION_TYPES = ("epsilon", "v_prediction")


@dataclass
class UNet3DConfig:
    """Architecture hyper-parameters, with the key names of diffusers' ``config.json``.

    Defaults are the ModelScope 1.7B text-to-video UNet. ``attention_head_dim`` (or, if set,
    ``num_attention_heads``, which diffusers itself refuses) is, despite diffusers' parameter
    names, the *size* of each attention head in the down/mid/up stages: a stage with C channels
    gets ``C // n`` heads. The temporal transformer after ``conv_in`` uses 8 heads of
    ``attention_head_dim`` channels. ``prediction_type`` is ours ("epsilon" or "v_prediction");
    diffusers ignores it, and so it does ``frame_embedding`` (ours: each frame's position in the
    clip is embedded and added to its timestep embedding; ModelScope has no such input),
    ``frame_embedding_text`` (that embedding also sees the mean of the prompt's token states)
    ``position_embedding`` (each latent pixel's place in the frame is embedded and added to
    the features after ``conv_in``), ``temporal_position_embedding`` (every temporal
    transformer adds its frames' sinusoidal positions to its tokens) and ``first_frame`` (the
    last ``latents + 1`` input channels are a first frame to start the clip from,
    ``vidsynth.models.first_frame``) and ``first_frame_motion`` (that first frame comes animated
    by the motion a planner reads from the caption, ``first_frame.warp_frames``: it changes
    what the UNet is given, not the network).
    """

    sample_size: int | None = None
    in_channels: int = 4
    out_channels: int = 4
    down_block_types: tuple[str, ...] = (
        "CrossAttnDownBlock3D",
        "CrossAttnDownBlock3D",
        "CrossAttnDownBlock3D",
        "DownBlock3D",
    )
    up_block_types: tuple[str, ...] = (
        "UpBlock3D",
        "CrossAttnUpBlock3D",
        "CrossAttnUpBlock3D",
        "CrossAttnUpBlock3D",
    )
    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    layers_per_block: int = 2
    downsample_padding: int = 1
    mid_block_scale_factor: float = 1.0
    act_fn: str = "silu"
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    cross_attention_dim: int = 1024
    attention_head_dim: int = 64
    num_attention_heads: int | tuple[int, ...] | None = None
    time_cond_proj_dim: int | None = None
    prediction_type: str = "epsilon"
    frame_embedding: bool = False
    frame_embedding_text: bool = False
    position_embedding: bool = False
    temporal_position_embedding: bool = False
    first_frame: bool = False
    first_frame_motion: bool = False

    _TUPLE_FIELDS: ClassVar[tuple[str, ...]] = (
        "down_block_types",
        "up_block_types",
        "block_out_channels",
        "num_attention_heads",
    )

    def __post_init__(self) -> None:
        for name in self._TUPLE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, list):
                setattr(self, name, tuple(value))
        n = len(self.block_out_channels)
        if not (len(self.down_block_types) == len(self.up_block_types) == n):
            raise ValueError(
                "down_block_types, up_block_types and block_out_channels must have the same "
                f"length, got {len(self.down_block_types)}, {len(self.up_block_types)}, {n}"
            )
        for kind, known in (("down", DOWN_BLOCK_TYPES), ("up", UP_BLOCK_TYPES)):
            for name in getattr(self, f"{kind}_block_types"):
                if name not in known:
                    raise ValueError(
                        f"unsupported {kind} block type {name!r}; known: {list(known)}"
                    )
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}"
            )
        if not isinstance(self.norm_num_groups, int):
            raise ValueError("norm_num_groups must be an int (the UNet3D always normalises)")
        if not isinstance(self.attention_head_dim, int):
            raise ValueError(
                "attention_head_dim must be an int: it also sizes the heads of transformer_in "
                "(per-stage values go in num_attention_heads)"
            )
        if self.frame_embedding_text and not self.frame_embedding:
            raise ValueError("frame_embedding_text needs frame_embedding")
        if self.first_frame and self.in_channels != self.out_channels + first_frame_channels(
            self.out_channels
        ):
            raise ValueError(
                f"first_frame needs in_channels = {self.out_channels} latent + "
                f"{first_frame_channels(self.out_channels)} first-frame channels, got "
                f"{self.in_channels}"
            )
        if self.first_frame_motion and not self.first_frame:
            raise ValueError("first_frame_motion needs first_frame")
        if self.layers_per_block < 1:
            raise ValueError(f"layers_per_block must be >= 1, got {self.layers_per_block}")
        self.stage_head_dims()  # validates num_attention_heads

    def stage_head_dims(self) -> tuple[int, ...]:
        """Per down-stage head size (see the class docstring for why it is not a head count)."""
        value = self.num_attention_heads or self.attention_head_dim
        if isinstance(value, int):
            return (value,) * len(self.block_out_channels)
        if len(value) != len(self.block_out_channels):
            raise ValueError(
                f"num_attention_heads needs one entry per block, got {value} for "
                f"{len(self.block_out_channels)} blocks"
            )
        return tuple(value)

    @property
    def time_embed_dim(self) -> int:
        """Width of the timestep embedding (and of ``added_emb``)."""
        return self.block_out_channels[0] * 4

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UNet3DConfig:
        """From a diffusers ``config.json`` dict; unknown and ``_private`` keys are ignored."""
        known = {f.name for f in fields(cls)}
        ignored = sorted(k for k in data if k not in known and not k.startswith("_"))
        if ignored:
            logger.debug("UNet3DConfig: ignoring config keys %s", ignored)
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict that diffusers' ``UNet3DConditionModel.from_config`` accepts."""
        out: dict[str, Any] = {
            "_class_name": "UNet3DConditionModel",
            "_diffusers_version": "0.42.1",
        }
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


class UNet3DModel(nn.Module):
    """ModelScope-style text-to-video UNet (see the module docstring)."""

    def __init__(self, config: UNet3DConfig) -> None:
        super().__init__()
        self.config = config
        ch = config.block_out_channels
        groups, eps, act = config.norm_num_groups, config.norm_eps, config.act_fn
        temb = config.time_embed_dim
        head_dims = config.stage_head_dims()
        n_blocks = len(ch)

        self.conv_in = nn.Conv2d(config.in_channels, ch[0], 3, padding=1)
        self.time_embedding = TimestepMLP(ch[0], temb, act, cond_dim=config.time_cond_proj_dim)
        # Temporal attention is blind to frame order and temporal convs see one neighbour on
        # each side, so without this a frame cannot tell where in the clip it is: a prompt's
        # direction of travel has nothing to act on at high noise, where the trajectory is
        # laid out. Zero-initialised, so adding it to a trained model changes nothing at first.
        self.frame_embedding = (
            FrameEmbedding(ch[0], temb, act, text_dim=self._frame_text_dim())
            if config.frame_embedding
            else None
        )
        self.position_embedding = PositionEmbedding(ch[0]) if config.position_embedding else None
        self.transformer_in = TemporalTransformer(
            ch[0], 8, config.attention_head_dim, groups=groups
        )

        common = dict(
            groups=groups, eps=eps, act_fn=act, cross_attention_dim=config.cross_attention_dim
        )
        self.down_blocks = nn.ModuleList()
        for i, kind in enumerate(config.down_block_types):
            self.down_blocks.append(
                DownBlock3D(
                    ch[max(i - 1, 0)],
                    ch[i],
                    temb,
                    num_layers=config.layers_per_block,
                    head_dim=head_dims[i] if DOWN_BLOCK_TYPES[kind] else None,
                    add_downsample=i < n_blocks - 1,
                    downsample_padding=config.downsample_padding,
                    **common,
                )
            )
        self.mid_block = MidBlock3D(
            ch[-1],
            temb,
            head_dim=head_dims[-1],
            output_scale_factor=config.mid_block_scale_factor,
            **common,
        )
        rev_ch, rev_heads = ch[::-1], head_dims[::-1]
        self.up_blocks = nn.ModuleList()
        for i, kind in enumerate(config.up_block_types):
            self.up_blocks.append(
                UpBlock3D(
                    rev_ch[min(i + 1, n_blocks - 1)],
                    rev_ch[max(i - 1, 0)],
                    rev_ch[i],
                    temb,
                    num_layers=config.layers_per_block + 1,
                    head_dim=rev_heads[i] if UP_BLOCK_TYPES[kind] else None,
                    add_upsample=i < n_blocks - 1,
                    **common,
                )
            )
        self.conv_norm_out = nn.GroupNorm(groups, ch[0], eps=eps)
        self.conv_act = nn.SiLU()  # SiLU regardless of act_fn, as in the reference
        self.conv_out = nn.Conv2d(ch[0], config.out_channels, 3, padding=1)
        self._set_temporal_positions()

    # ------------------------------------------------------------------ utilities

    def _set_temporal_positions(self) -> None:
        # Fixed features at full strength from the first step, unlike the zero-initialised
        # frame embedding: the temporal attention can order frames before any of it trains.
        for module in self.modules():
            if isinstance(module, TemporalTransformer):
                module.frame_positions = self.config.temporal_position_embedding

    def add_temporal_position_embedding(self) -> None:
        """Switch on ``config.temporal_position_embedding`` in a UNet trained without it.

        It has no weights, so unlike the other ``add_*`` methods it changes the outputs at
        once: the fine-tune that follows has to adapt the temporal layers to it.
        """
        if self.config.temporal_position_embedding:
            raise ValueError("this UNet already has a temporal position embedding")
        self.config.temporal_position_embedding = True
        self._set_temporal_positions()

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        """Total number of parameter elements."""
        return sum(p.numel() for p in self.parameters())

    def _frame_text_dim(self) -> int | None:
        return self.config.cross_attention_dim if self.config.frame_embedding_text else None

    def add_frame_embedding(self, *, text: bool = False) -> None:
        """Give a UNet without one a frame embedding (``config.frame_embedding``, and with
        `text` ``frame_embedding_text``) to fine-tune.

        Its last layer starts at zero, so the model's outputs are unchanged until it trains.
        """
        if self.frame_embedding is not None:
            raise ValueError("this UNet already has a frame embedding")
        self.config.frame_embedding, self.config.frame_embedding_text = True, text
        ch = self.config.block_out_channels[0]
        embedding = FrameEmbedding(
            ch, self.config.time_embed_dim, self.config.act_fn, text_dim=self._frame_text_dim()
        )
        self.frame_embedding = embedding.to(device=self.device, dtype=self.dtype)

    def add_position_embedding(self) -> None:
        """Give a UNet without one a position embedding (``config.position_embedding``) to
        fine-tune; it starts at zero, so the model's outputs are unchanged until it trains."""
        if self.position_embedding is not None:
            raise ValueError("this UNet already has a position embedding")
        self.config.position_embedding = True
        embedding = PositionEmbedding(self.config.block_out_channels[0])
        self.position_embedding = embedding.to(device=self.device, dtype=self.dtype)

    def add_first_frame_input(self, warm_start: float = 0.0) -> None:
        """Give a UNet without one the first-frame input (``config.first_frame``) to fine-tune:
        ``conv_in`` gains ``out_channels + 1`` input channels.

        With ``warm_start`` 0 their weights start at zero and the model is what it was until it
        trains. That path learns slowly: in a 600-step CPU fine-tune the new weights stayed ~30×
        smaller than the old ones. ``warm_start`` = c starts the first frame's channels at c ×
        the latent channels' weights, so the UNet at once sees the first frame as a faint copy
        of the clean clip in every frame (at c = 0.5 it copies frame 0 at t = T); training then
        only has to move it.
        """
        if self.config.first_frame:
            raise ValueError("this UNet already has a first-frame input")
        old = self.conv_in
        latent = self.config.out_channels
        extra = first_frame_channels(latent)
        conv = nn.Conv2d(old.in_channels + extra, old.out_channels, 3, padding=1)
        conv = conv.to(device=old.weight.device, dtype=old.weight.dtype)
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight[:, : old.in_channels] = old.weight
            conv.weight[:, old.in_channels : old.in_channels + latent] = (
                warm_start * old.weight[:, :latent]
            )
            conv.bias.copy_(old.bias)
        self.conv_in = conv
        self.config.in_channels += extra
        self.config.first_frame = True

    def enable_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each resnet/transformer layer in backward instead of storing activations.

        Only takes effect in training mode with autograd on.
        """
        for block in [*self.down_blocks, self.mid_block, *self.up_blocks]:
            block.gradient_checkpointing = enabled

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        *,
        concat: torch.Tensor | None = None,
        extra_context: torch.Tensor | None = None,
        down_residuals: Sequence[torch.Tensor] | None = None,
        mid_residual: torch.Tensor | None = None,
        added_emb: torch.Tensor | None = None,
        timestep_cond: torch.Tensor | None = None,
        independent_frames: bool = False,
        frame_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the model output (noise or v, per ``config.prediction_type``).

        Args:
            sample: noisy latents (B, C, F, H, W).
            timestep: int/float, 0-d tensor, or (B,) tensor of per-sample timesteps.
            encoder_hidden_states: text tokens (B, L, cross_attention_dim).
            concat: extra input channels (B, Cc, F, H, W) concatenated after the latent channels
                (image / low-res conditioning); needs ``in_channels == C + Cc``.
            extra_context: tokens (B, K, cross_attention_dim) appended to the text tokens for
                every cross-attention (e.g. image or anchor-frame tokens).
            down_residuals: one tensor per skip connection (``len == 1 + sum of skips per down
                block``), added to the skips as diffusers' ``down_block_additional_residuals``;
                each either frame-folded (B*F, C, h, w) like diffusers or (B, C, F, h, w).
            mid_residual: added to the mid-block output, as diffusers'
                ``mid_block_additional_residual``; (B*F, C, h, w) or (B, C, F, h, w).
            added_emb: (B, time_embed_dim) added to the timestep embedding (fps, motion or
                noise-augmentation conditioning).
            timestep_cond: (B, time_cond_proj_dim) for configs with ``time_cond_proj_dim``.
            independent_frames: the frames are unrelated images, not a video: every temporal
                layer (temporal convs and transformers) is bypassed, so no frame sees another.
                This is how image–text pairs join video training (Ho et al. 2022, "Video
                Diffusion Models" §3.1; Imagen Video): the spatial layers learn from far more
                distinct scenes per step, and the temporal layers only from real videos.
            frame_index: (B, F) or (F,) position of each frame in its clip, for configs with
                ``frame_embedding`` (default 0, 1, ..., F-1); single frames of joint image–video
                training pass the time they were taken at.

        Returns:
            (B, out_channels, F, H, W).
        """
        if sample.ndim != 5:
            raise ValueError(f"sample must be (B, C, F, H, W), got shape {tuple(sample.shape)}")
        if concat is not None:
            if concat.ndim != 5 or concat.shape[:1] + concat.shape[2:] != (
                sample.shape[:1] + sample.shape[2:]
            ):
                raise ValueError(
                    f"concat must be (B, Cc, F, H, W) matching sample {tuple(sample.shape)}, "
                    f"got {tuple(concat.shape)}"
                )
            sample = torch.cat([sample, concat.to(sample.dtype)], dim=1)
        b, c, f, h, w = sample.shape
        if c != self.config.in_channels:
            extra = (
                f" ({c - concat.shape[1]} latent + {concat.shape[1]} concat)"
                if concat is not None
                else ""
            )
            raise ValueError(
                f"the model expects in_channels={self.config.in_channels} input channels, got "
                f"{c}{extra}"
            )
        dtype = self.dtype
        if not torch.is_grad_enabled():
            self._store_conv_weights_channels_last()

        emb = self._time_embedding(timestep, b, sample.device, dtype, timestep_cond)
        if added_emb is not None:
            emb = emb + added_emb.to(dtype)
        emb = emb.repeat_interleave(f, dim=0)  # per folded frame, (B*F, T)
        if self.frame_embedding is not None:
            text = None
            if self.config.frame_embedding_text:
                text = _pooled_text(encoder_hidden_states).to(dtype).repeat_interleave(f, dim=0)
            positions = _frame_positions(frame_index, b, f, sample.device)
            emb = emb + self.frame_embedding(positions, text)
        elif frame_index is not None:
            raise ValueError("frame_index given but the config has no frame_embedding")

        context = encoder_hidden_states
        if extra_context is not None:
            context = torch.cat([context, extra_context.to(context.dtype)], dim=1)
        context = context.to(dtype)
        if context.shape[0] != b:
            raise ValueError(f"encoder_hidden_states batch {context.shape[0]} != sample batch {b}")

        # Channels-last activations throughout: oneDNN convolutions are faster on NHWC, and
        # the pixel-token views of the transformers and temporal layers become free.
        x = sample.transpose(1, 2).reshape(b * f, c, h, w)
        x = x.to(dtype=dtype, memory_format=torch.channels_last)
        x = self.conv_in(x)
        if self.position_embedding is not None:
            x = (x + self.position_embedding(h, w)).contiguous(memory_format=torch.channels_last)
        tf = None if independent_frames else f  # what the temporal layers are told
        x = self.transformer_in(x, tf)

        skips = [x]
        for block in self.down_blocks:
            x, block_skips = block(x, emb, context, tf)
            skips.extend(block_skips)

        if down_residuals is not None:
            if len(down_residuals) != len(skips):
                raise ValueError(
                    f"down_residuals needs {len(skips)} tensors (one per skip), got "
                    f"{len(down_residuals)}"
                )
            skips = [s + _fold_frames(r, f) for s, r in zip(skips, down_residuals, strict=True)]

        x = self.mid_block(x, emb, context, tf)
        if mid_residual is not None:
            x = x + _fold_frames(mid_residual, f)

        for block in self.up_blocks:
            n = len(block.resnets)
            # Upsample to the next skip's size, which also covers odd H/W (e.g. 5x7 latents).
            size = tuple(skips[-n - 1].shape[-2:]) if block.upsamplers is not None else None
            x = block(x, skips, emb, context, tf, upsample_size=size)

        x = self.conv_out(self.conv_act(self.conv_norm_out(x)))
        return x.permute(0, 2, 3, 1).reshape(b, f, h, w, -1).permute(0, 4, 1, 2, 3).contiguous()

    def _store_conv_weights_channels_last(self) -> None:
        """Re-lay conv kernels out channels-last to match the activations (inference only).

        Otherwise every oneDNN convolution copies its kernel to that layout on each call, which
        costs 10-30% of conv time at low resolution. Values, shapes, parameter objects and
        state-dict keys are unchanged; only strides differ. Skipped under autograd so that
        training wrappers that manage parameter storage (FSDP) are never surprised.
        """
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d)):
                weight = module.weight
                fmt = torch.channels_last if weight.ndim == 4 else torch.channels_last_3d
                if not weight.is_contiguous(memory_format=fmt):
                    # Outside inference mode, or the parameter would become inference-only.
                    with torch.inference_mode(False), torch.no_grad():
                        weight.data = weight.data.contiguous(memory_format=fmt)

    def _time_embedding(
        self,
        timestep: torch.Tensor | float | int,
        batch: int,
        device: torch.device,
        dtype: torch.dtype,
        cond: torch.Tensor | None,
    ) -> torch.Tensor:
        t = torch.as_tensor(timestep, device=device)
        if t.ndim == 0:
            t = t[None]
        if t.ndim != 1 or t.shape[0] not in (1, batch):
            raise ValueError(f"timestep must be a scalar or shape ({batch},), got {tuple(t.shape)}")
        features = timestep_features(t.expand(batch), self.config.block_out_channels[0])
        return self.time_embedding(features.to(dtype), None if cond is None else cond.to(dtype))

    # ------------------------------------------------------------------ checkpoints

    @classmethod
    def from_pretrained(
        cls,
        folder: str | os.PathLike[str],
        *,
        dtype: torch.dtype | None = None,
        device: str | torch.device = "cpu",
        variant: str | None = None,
    ) -> UNet3DModel:
        """Load a diffusers ``unet/`` folder (no conversion), in eval mode.

        Weights are looked up as ``diffusion_pytorch_model[.{variant}].safetensors`` or the
        sharded ``...safetensors.index[.{variant}].json``; without ``variant`` the plain files are
        tried first, then the ``fp16`` variant. ``dtype=None`` keeps the stored dtype.
        Raises ``ValueError`` listing missing / unexpected / mis-shaped keys.
        """
        folder = Path(folder)
        config = UNet3DConfig.from_dict(json.loads((folder / CONFIG_NAME).read_text()))
        state = _read_weights(folder, variant)
        with torch.device("meta"):
            model = cls(config)  # no memory, no random init: every tensor is replaced below
        _check_keys(model.state_dict(), state, folder)
        for key, tensor in state.items():
            target_dtype = dtype if dtype is not None and tensor.is_floating_point() else None
            state[key] = tensor.to(device=device, dtype=target_dtype)
        model.load_state_dict(state, strict=True, assign=True)
        return model.eval()

    def save_pretrained(
        self,
        folder: str | os.PathLike[str],
        dtype: torch.dtype | None = None,
        *,
        variant: str | None = None,
        max_shard_size: int | str | None = None,
    ) -> None:
        """Write ``config.json`` + safetensors weights in diffusers' layout.

        ``dtype`` casts floating tensors on the way out; ``max_shard_size`` (bytes, or e.g.
        ``"5GB"``) splits into shards with an index like diffusers. Every file is written to a
        temporary name and moved into place, so readers never see a partial file.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {}
        for key, tensor in self.state_dict().items():
            tensor = tensor.detach()
            if dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(dtype)
            tensor = tensor.to("cpu").contiguous()
            if tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size():
                # A view into a larger buffer (fused q/k/v weights): safetensors refuses shared
                # storage, so write a copy of just this tensor.
                tensor = tensor.clone()
            state[key] = tensor
        _write_weights(folder, state, variant, max_shard_size)
        text = json.dumps(self.config.to_dict(), indent=2, sort_keys=True) + "\n"
        _atomic_write(folder / CONFIG_NAME, lambda tmp: tmp.write_text(text))


# ---------------------------------------------------------------------- helpers


def _pooled_text(states: torch.Tensor) -> torch.Tensor:
    """Mean of the token states (B, L, D) → (B, D), over the tokens that are not all zero
    (vidsynth's text encoder zeroes the padding)."""
    real = (states != 0).any(dim=-1, keepdim=True).to(states.dtype)
    return (states * real).sum(1) / real.sum(1).clamp(min=1)


def _frame_positions(
    index: torch.Tensor | None, batch: int, num_frames: int, device: torch.device
) -> torch.Tensor:
    """Frame positions folded like the frames, (B*F,); 0..F-1 for every clip by default."""
    if index is None:
        return torch.arange(num_frames, device=device).repeat(batch)
    index = torch.as_tensor(index, device=device)
    if index.shape not in ((num_frames,), (batch, num_frames)):
        raise ValueError(
            f"frame_index must be ({num_frames},) or ({batch}, {num_frames}), got "
            f"{tuple(index.shape)}"
        )
    return index.expand(batch, num_frames).reshape(-1)


def _fold_frames(t: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B, C, F, H, W) -> (B*F, C, H, W); frame-folded 4-D tensors pass through."""
    if t.ndim == 4:
        return t
    if t.ndim == 5 and t.shape[2] == num_frames:
        return t.transpose(1, 2).flatten(0, 1)
    raise ValueError(
        f"residual must be (B*F, C, H, W) or (B, C, F={num_frames}, H, W), got {tuple(t.shape)}"
    )


def _variant_name(name: str, variant: str | None) -> str:
    """``a.b.ext`` -> ``a.b.{variant}.ext``, diffusers' variant naming."""
    if variant is None:
        return name
    stem, ext = name.rsplit(".", 1)
    return f"{stem}.{variant}.{ext}"


def _shard_name(index: int, count: int, variant: str | None) -> str:
    stem = "diffusion_pytorch_model" + (f".{variant}" if variant else "")
    return f"{stem}-{index:05d}-of-{count:05d}.safetensors"


def _read_weights(folder: Path, variant: str | None) -> dict[str, torch.Tensor]:
    tried = []
    for v in [variant] if variant is not None else [None, "fp16"]:
        single = folder / _variant_name(WEIGHTS_NAME, v)
        if single.is_file():
            return load_file(single)
        index = folder / _variant_name(WEIGHTS_INDEX_NAME, v)
        if index.is_file():
            weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
            state: dict[str, torch.Tensor] = {}
            for shard in sorted(set(weight_map.values())):
                state.update(load_file(folder / shard))
            absent = sorted(set(weight_map) - set(state))
            if absent:
                raise ValueError(
                    f"{index}: {len(absent)} indexed tensors not in shards: {absent[:5]}"
                )
            return state
        tried += [single.name, index.name]
    raise FileNotFoundError(f"no UNet weights in {folder}; looked for {', '.join(tried)}")


def _check_keys(
    expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], source: Path
) -> None:
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(state))
        if state[k].shape != expected[k].shape
    ]
    problems = []
    for label, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("shape mismatches", wrong_shape),
    ):
        if items:
            shown = "\n    ".join(items[:20]) + ("\n    ..." if len(items) > 20 else "")
            problems.append(f"  {len(items)} {label}:\n    {shown}")
    if problems:
        raise ValueError(f"weights in {source} do not match the config:\n" + "\n".join(problems))


_SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
}


def _parse_size(size: int | str) -> int:
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", size)
    if match is None or match.group(2).upper() not in _SIZE_UNITS:
        raise ValueError(f"cannot parse size {size!r}; use bytes or e.g. '5GB'")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])


def _atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then atomically move the result onto ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_weights(
    folder: Path,
    state: dict[str, torch.Tensor],
    variant: str | None,
    max_shard_size: int | str | None,
) -> None:
    metadata = {"format": "pt"}
    limit = _parse_size(max_shard_size) if max_shard_size is not None else None
    shards: list[dict[str, torch.Tensor]] = [{}]
    used = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if limit is not None and shards[-1] and used + nbytes > limit:
            shards.append({})
            used = 0
        shards[-1][key] = tensor
        used += nbytes

    single = folder / _variant_name(WEIGHTS_NAME, variant)
    index = folder / _variant_name(WEIGHTS_INDEX_NAME, variant)
    stale_shards = re.compile(
        re.escape(_shard_name(0, 0, variant)).replace("00000", r"\d{5}") + "$"
    )
    old_files = [p for p in folder.iterdir() if stale_shards.match(p.name)]
    if len(shards) == 1:
        _atomic_write(single, lambda tmp: save_file(state, tmp, metadata=metadata))
        index.unlink(missing_ok=True)
        new_files = {single.name}
    else:
        weight_map = {}
        for i, shard in enumerate(shards, start=1):
            name = _shard_name(i, len(shards), variant)
            _atomic_write(folder / name, lambda tmp, s=shard: save_file(s, tmp, metadata=metadata))
            weight_map.update(dict.fromkeys(shard, name))
        total = sum(t.numel() * t.element_size() for t in state.values())
        text = json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
        _atomic_write(index, lambda tmp: tmp.write_text(text + "\n"))
        single.unlink(missing_ok=True)
        new_files = set(weight_map.values())
    # Shards of an earlier save with a different shard count would otherwise linger.
    for path in old_files:
        if path.name not in new_files:
            path.unlink(missing_ok=True)


__all__ = ["PREDICTION_TYPES", "UNet3DConfig", "UNet3DModel"]
