"""What a studio server is configured with: where it keeps jobs, what it serves, its limits."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/vidsynth/studio`, else `~/.local/share/vidsynth/studio`."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "vidsynth" / "studio"


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask for; beyond them the API answers 422/413/429."""

    max_frames: int = 64
    max_width: int = 1024
    max_height: int = 1024
    max_steps: int = 200
    max_candidates: int = 16  # first frames per clip (each one more image to draw)
    max_prompt_chars: int = 2000
    max_queue: int = 100  # queued + running jobs; a full queue answers 429
    max_body_bytes: int = 64 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything `vidsynth serve` takes; `create_app(Settings(...))` in tests."""

    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    model: str | None = None  # None: the bundled default model
    device: str | None = None
    dtype: str | None = None
    threads: int | None = None  # torch intra-op threads; None: share the cores among workers
    limits: Limits = field(default_factory=Limits)
    # Host headers accepted; None accepts any. `serve` sets the loopback names when bound to
    # loopback, so a web page elsewhere cannot reach the API through DNS rebinding.
    allowed_hosts: tuple[str, ...] | None = None

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / "jobs.sqlite3"

    @property
    def outputs_dir(self) -> Path:
        return Path(self.data_dir) / "outputs"
