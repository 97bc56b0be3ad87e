"""Loading a model folder's small trained parts (planner, scorer, shape reader) with the record
of how each was trained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

import torch
from diffusers.models.modeling_utils import ModelMixin

Part = TypeVar("Part", bound=ModelMixin)


def load_with_record(cls: type[Part], folder: str | Path) -> Part:
    """`cls` saved in `folder`, in float32 (the parts are small), with ``record``: its
    training.json (how it was trained), or None, kept so that a model exported with it says
    so too."""
    folder = Path(folder)
    part = cls.from_pretrained(folder, torch_dtype=torch.float32)
    record = folder / "training.json"
    part.record = json.loads(record.read_text()) if record.is_file() else None
    return part
