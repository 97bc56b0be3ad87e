"""Training clips: the shapes world rendered on the fly, or a folder of the user's own clips.

Both yield {"video": float (3, F, H, W) in [-1, 1], "caption": str}.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from vidsynth.errors import InvalidParameter
from vidsynth.training.config import DataConfig
from vidsynth.world.spec import (
    BASE_FPS,
    COLOURS,
    PALETTE,
    ROTATION_DEG_PER_FRAME,
    SHAPES,
    growth_per_frame,
)

log = logging.getLogger(__name__)

VIDEO_KEYS = ("video", "file_name", "path", "file")
CAPTION_KEYS = ("caption", "text", "prompt")


def object_motion(obj) -> tuple[float, float, float, float]:
    """One object's motion per base frame as a guide row: velocity, size-factor change, turn."""
    spin = ROTATION_DEG_PER_FRAME if obj.motion == "rotating" else 0.0
    return (*obj.velocity, growth_per_frame(obj.motion), spin)


# the most objects a world scene has: the rows of a clip's guide (level 2)
MAX_OBJECTS = 2


def world_palette() -> list[list[float]]:
    """The world's object colours as RGB in [0, 1], in the order of their indices
    (``object_guides``' "colour", the planner's colours)."""
    return [[v / 255 for v in PALETTE[c]] for c in COLOURS]


def object_guides(scene, fps: float) -> dict[str, torch.Tensor]:
    """A clip's first-frame motion guide, one row per object (``first_frame.warp_scene``):
    "motion" (MAX_OBJECTS, 4) per frame at `fps` (``object_motion``), "centre" (MAX_OBJECTS,
    2) where the object starts and "colour" (MAX_OBJECTS,) its index in the world's palette,
    by which its pixels are found; rows past the scene's objects are zeros, colour -1."""
    motion = torch.zeros(MAX_OBJECTS, 4)
    centre = torch.zeros(MAX_OBJECTS, 2)
    colour = torch.full((MAX_OBJECTS,), -1, dtype=torch.long)
    for i, obj in enumerate(scene.objects):
        motion[i] = torch.tensor(object_motion(obj)) * (BASE_FPS / fps)
        centre[i] = torch.tensor([obj.start_x, obj.start_y])
        colour[i] = COLOURS.index(obj.colour)
    return {"motion": motion, "centre": centre, "colour": colour}


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (F, H, W, 3) → float (3, F, H, W) in [-1, 1]."""
    return torch.from_numpy(frames).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)


class WorldClips(Dataset):
    """An endless, reproducible stream of captioned shapes-world clips.

    Sample `i` of process `rank` is drawn from its own seed, so a resumed run that starts at
    `start` sees exactly the clips the killed run would have seen. Clips are drawn at
    `config.fps` (motion is defined at the world's 8 fps, so 16 fps halves it per frame).
    With `low_size`, each sample also holds "low": the same clip rendered at that side (the
    input of a spatial super-resolution model; rendered, not downsampled, like the base
    model's own training clips). With `single_frame`, each sample is one frame of its clip
    (3, 1, H, W): the images of joint image–video training, at a random time or, with
    ``image_frame="first"``, at time 0. A nonzero
    `stream` draws scenes independent of stream 0's at the same indices.

    Sample `i` is also ``clips[i]``, so a DataLoader with workers and a sequential sampler
    renders ahead in parallel and still yields the samples in order.
    """

    def __init__(
        self,
        config: DataConfig,
        *,
        seed: int = 0,
        rank: int = 0,
        start: int = 0,
        low_size: int | None = None,
        single_frame: bool = False,
        image_frame: str = "random",
        stream: int = 0,
    ):
        if len(config.levels) != len(config.level_weights):
            raise InvalidParameter("data.levels and data.level_weights differ in length")
        self.config = config
        self.seed, self.rank, self.start = seed, rank, start
        self.low_size = low_size
        self.single_frame, self.stream = single_frame, stream
        self.image_frame = image_frame
        weights = np.asarray(config.level_weights, dtype=float)
        self.level_p = weights / weights.sum()
        weighted = config.shape_weights
        top = max([1.0, *weighted.values()])  # a shape left out weighs 1
        self.shape_keep = {shape: weighted.get(shape, 1.0) / top for shape in SHAPES}

    def sample(self, index: int) -> dict[str, object]:
        from vidsynth.evaluation.prompts import eval_prompt_strings, normalise
        from vidsynth.world.captions import random_caption
        from vidsynth.world.renderer import render
        from vidsynth.world.sampling import sample_scene

        key = [self.seed, self.rank, index] + ([self.stream] if self.stream else [])
        rng = np.random.default_rng(key)
        level = int(rng.choice(self.config.levels, p=self.level_p))
        scene = sample_scene(rng, level)
        # Rejection keeps the scene distribution otherwise the world's (data.shape_weights).
        while self.config.shape_weights and rng.random() >= max(
            self.shape_keep[o.shape] for o in scene.objects
        ):
            scene = sample_scene(rng, level)
        held_out = eval_prompt_strings()
        caption = random_caption(scene, rng)
        while normalise(caption) in held_out:  # keep the eval prompts unseen
            caption = random_caption(scene, rng)
        size, num_frames, fps = self.config.size, self.config.num_frames, self.config.fps
        if self.single_frame:  # draw that frame only: a 16th of the clip's rendering time
            k = 0 if self.image_frame == "first" else int(rng.integers(num_frames))
            frames = render(scene, size, num_frames, fps, frames=[k])
        else:
            frames = render(scene, size, num_frames, fps)
        sample = {"video": to_tensor(frames), "caption": caption}
        sample.update(object_guides(scene, fps))
        if self.single_frame:
            sample["frame"] = k  # its time in the clip, for a UNet with a frame embedding
        if self.low_size is not None:
            low = render(scene, self.low_size, self.config.num_frames, self.config.fps)
            sample["low"] = to_tensor(low)
        return sample

    def __getitem__(self, index: int) -> dict[str, object]:
        return self.sample(index)

    def __iter__(self) -> Iterator[dict[str, object]]:
        index = self.start
        while True:
            yield self.sample(index)
            index += 1


def read_metadata(folder: Path) -> list[tuple[Path, str]]:
    """(video path, caption) pairs from metadata.jsonl or metadata.csv in `folder`."""
    rows: list[dict[str, str]]
    if (folder / "metadata.jsonl").is_file():
        rows = []
        for n, line in enumerate((folder / "metadata.jsonl").read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise InvalidParameter(f"metadata.jsonl line {n} is not JSON: {err}") from err
    elif (folder / "metadata.csv").is_file():
        with open(folder / "metadata.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
    else:
        raise InvalidParameter(f"{folder} has no metadata.jsonl or metadata.csv")
    pairs = []
    for n, row in enumerate(rows, 1):
        video = next((row[k] for k in VIDEO_KEYS if row.get(k)), None)
        caption = next((row[k] for k in CAPTION_KEYS if k in row), None)
        if video is None or caption is None:
            raise InvalidParameter(
                f"metadata row {n} needs a video ({'/'.join(VIDEO_KEYS)}) and a caption "
                f"({'/'.join(CAPTION_KEYS)}) field: {row}"
            )
        path = (folder / video).resolve()
        if not path.exists():
            raise InvalidParameter(f"metadata row {n}: video not found: {path}")
        pairs.append((path, str(caption)))
    if not pairs:
        raise InvalidParameter(f"{folder}'s metadata lists no clips")
    return pairs


def fit_clip(frames: np.ndarray, size: int) -> torch.Tensor:
    """Centre-crop to a square and resize (anti-aliased) to size×size: float (3, F, s, s)."""
    h, w = frames.shape[1:3]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    video = to_tensor(np.ascontiguousarray(frames[:, top : top + side, left : left + side]))
    if side != size:
        flat = video.permute(1, 0, 2, 3)  # frames as a batch of images
        flat = F.interpolate(flat, size=(size, size), mode="bicubic", antialias=True)
        video = flat.clamp(-1, 1).permute(1, 0, 2, 3)
    return video


class FolderClips(Dataset):
    """A folder of captioned clips (how Zeroscope was fine-tuned from ModelScope).

    Each clip is decoded with PyAV, resampled to the model's fps, centre-cropped and resized,
    and a random window of `num_frames` is cut from it (clips that are too short are padded
    with their last frame). Decoded clips are cached in memory: fine-tuning sets are small.
    """

    def __init__(
        self,
        config: DataConfig,
        *,
        seed: int = 0,
        low_size: int | None = None,
        single_frame: bool = False,
        image_frame: str = "random",
    ):
        self.config = config
        self.low_size = low_size  # also return the clip resized to this side, as "low"
        # one frame (3, 1, H, W) of a window: a random one, or with "first" its first
        self.single_frame, self.image_frame = single_frame, image_frame
        self.items = read_metadata(Path(config.path))
        self.rng = np.random.default_rng(seed)
        self._decode = lru_cache(maxsize=512)(self._decode_uncached)

    def __len__(self) -> int:
        return len(self.items)

    def _decode_uncached(self, index: int) -> torch.Tensor:
        from vidsynth.io.video import read_video

        path, _ = self.items[index]
        try:
            frames, _ = read_video(path, fps=self.config.fps)
        except Exception as err:
            raise InvalidParameter(f"could not decode training clip {path}: {err}") from err
        return fit_clip(frames, self.config.size)

    def __getitem__(self, index: int) -> dict[str, object]:
        video = self._decode(index)
        n, f = self.config.num_frames, video.shape[1]
        if f >= n:
            start = int(self.rng.integers(0, f - n + 1))
            video = video[:, start : start + n]
        else:
            pad = video[:, -1:].expand(-1, n - f, -1, -1)
            video = torch.cat([video, pad], dim=1)
        sample = {"video": video, "caption": self.items[index][1]}
        if self.single_frame:  # one frame of the training window, and its time in it
            k = 0 if self.image_frame == "first" else int(self.rng.integers(0, n))
            sample["video"], sample["frame"] = video[:, k : k + 1], k
        if self.low_size is not None:
            flat = video.permute(1, 0, 2, 3)  # anti-aliased bicubic, as fit_clip shrinks
            low = F.interpolate(flat, size=(self.low_size,) * 2, mode="bicubic", antialias=True)
            sample["low"] = low.clamp(-1, 1).permute(1, 0, 2, 3)
        return sample


def make_dataset(
    config: DataConfig,
    *,
    seed: int,
    rank: int = 0,
    start: int = 0,
    low_size: int | None = None,
):
    """The clips `config` names; `low_size` adds a low-resolution copy of each (spatial SR)."""
    if config.source == "world":
        return WorldClips(config, seed=seed, rank=rank, start=start, low_size=low_size)
    return FolderClips(config, seed=seed + rank, low_size=low_size)
