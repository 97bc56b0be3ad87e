"""Training checkpoints that survive being killed at any moment.

A checkpoint is written into `step-N.tmp/`, renamed to `step-N/` once complete, and only
then named in the `latest` file (itself replaced atomically). A kill mid-write leaves a
`.tmp` folder that the next run deletes; `latest` always names a complete checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from vidsynth.errors import InvalidParameter


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class CheckpointStore:
    """The checkpoints of one run, under `root`."""

    def __init__(self, root: str | Path, keep: int = 2):
        self.root = Path(root)
        self.keep = max(1, keep)

    def latest(self) -> Path | None:
        pointer = self.root / "latest"
        if not pointer.is_file():
            return None
        path = self.root / pointer.read_text().strip()
        return path if (path / "state.json").is_file() else None

    def clean_partial(self) -> None:
        """Remove what a killed run left half-written."""
        if self.root.is_dir():
            for tmp in self.root.glob("*.tmp"):
                shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink()

    def save(self, step: int, tensors: dict[str, Any], state: dict[str, Any]) -> Path:
        """Write `tensors` (name → state dict or object for torch.save) and `state` (JSON)."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"step-{step:07d}"
        tmp = self.root / f"step-{step:07d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name, value in tensors.items():
            torch.save(value, tmp / f"{name}.pt")
        with open(tmp / "state.json", "w") as fh:
            json.dump({**state, "step": step}, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        atomic_write_text(self.root / "latest", final.name)
        self._prune(keep_also=final)
        return final

    def load(self, path: Path | None = None, map_location: str = "cpu") -> tuple[dict, dict]:
        """(tensors by name, state) of `path` or of the latest checkpoint."""
        path = path or self.latest()
        if path is None:
            raise FileNotFoundError(f"no checkpoint under {self.root}")
        state = json.loads((path / "state.json").read_text())
        tensors = {
            p.stem: torch.load(p, map_location=map_location, weights_only=True)
            for p in sorted(path.glob("*.pt"))
        }
        return tensors, state

    def resume(self, run: dict[str, Any], parts: dict[str, Any]) -> tuple[dict, dict] | None:
        """Load the latest checkpoint into `parts` (name → object with ``load_state_dict``)
        after cleaning up a killed write; None when there is none. A checkpoint of another
        `run` (the settings a run saved with its state) is refused by name. Returns (tensors,
        state) for what the parts do not hold."""
        self.clean_partial()
        if self.latest() is None:
            return None
        tensors, state = self.load()
        if state["run"] != run:
            raise InvalidParameter(
                f"the checkpoints in {self.root} are of another run ({state['run']}); "
                "use the same settings or another folder"
            )
        for name, part in parts.items():
            part.load_state_dict(tensors[name])
        return tensors, state

    def _prune(self, keep_also: Path) -> None:
        done = sorted(p for p in self.root.glob("step-*") if p.is_dir() and p.suffix != ".tmp")
        for old in done[: -self.keep]:
            if old != keep_also:
                shutil.rmtree(old, ignore_errors=True)
