"""Shared fixtures: tiny random models in the real diffusers layout, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Nothing in the tests may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ModelScope-format model (CLIP text encoder) with tiny random weights.

    Defaults: 4 frames at 32×32, 3 steps, so a generate call takes well under a second.
    """
    from vidsynth.testing import save_tiny_model

    return save_tiny_model(
        tmp_path_factory.mktemp("tiny") / "model",
        num_frames=4,
        height=32,
        width=32,
        num_inference_steps=3,
    )


@pytest.fixture(scope="session")
def tiny_minilm_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model whose text encoder uses the bundled MiniLM's tokenizer (BERT family)."""
    from vidsynth.testing import save_tiny_model

    return save_tiny_model(
        tmp_path_factory.mktemp("tiny-minilm") / "model",
        text_encoder="minilm",
        num_frames=4,
        height=32,
        width=32,
        num_inference_steps=3,
    )


@pytest.fixture(scope="session")
def tiny_ssr_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ×4 spatial super-resolution model (tiny ×4 VAE: the input is the latent grid)."""
    from vidsynth.testing import save_tiny_sr_model

    return save_tiny_sr_model(tmp_path_factory.mktemp("tiny-ssr") / "model", "spatial-sr")


@pytest.fixture(scope="session")
def tiny_tsr_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ×2 temporal super-resolution model, 16 fps output by default."""
    from vidsynth.testing import save_tiny_sr_model

    return save_tiny_sr_model(tmp_path_factory.mktemp("tiny-tsr") / "model", "temporal-sr", fps=16)
