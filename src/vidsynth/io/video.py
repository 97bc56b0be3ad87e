"""Video input/output: browser-safe H.264 MP4/MOV, animated GIF/WebP and PNG frame folders.

Frames are always ``uint8`` RGB arrays shaped ``(F, H, W, 3)``.  Writing picks the format from the
output path (see :data:`SUPPORTED_FORMATS`) and is atomic: the file (or folder) is built next to
the destination under a hidden temporary name and only renamed onto it once complete, so a crash
or an exception never leaves a truncated video at ``path``.

Reading decodes anything PyAV/FFmpeg can open (plus animated WebP through Pillow, because FFmpeg
cannot decode animated WebP) or a folder of image frames, and rebuilds a constant-frame-rate clip
from the frame timestamps.  That matters for GIF and WebP: their encoders merge identical
consecutive frames into one longer frame and store delays in 10 ms / 1 ms steps, so frame counts
and nominal rates in those files cannot be taken at face value.
"""

from __future__ import annotations

import bisect
import itertools
import os
import re
import secrets
import shutil
import struct
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc
from PIL import Image, PngImagePlugin

from vidsynth.errors import InvalidParameter

__all__ = [
    "DEFAULT_FPS",
    "SUPPORTED_FORMATS",
    "check_frames",
    "probe_video",
    "read_video",
    "write_video",
]

PathLike = str | os.PathLike[str]
FrameRate = int | float | Fraction

#: Output formats by path suffix.  The empty suffix stands for a folder of PNG frames.
SUPPORTED_FORMATS: Mapping[str, str] = MappingProxyType(
    {
        ".mp4": "H.264 (libx264, yuv420p, BT.709, +faststart) in MP4",
        ".mov": "H.264 (libx264, yuv420p, BT.709, +faststart) in QuickTime MOV",
        ".gif": "animated GIF, global palette with ordered dither, loops forever",
        ".webp": "animated WebP (lossy, or lossless at quality=100), loops forever",
        "": "folder of PNG frames frame_00000.png, ... (path without suffix, ending in '/', "
        "or an existing directory)",
    }
)

#: Frame rate assumed when the source has none: image folders, still images (ModelScope's rate).
DEFAULT_FPS = 8.0

_H264_CONTAINERS = {".mp4": "mp4", ".mov": "mov"}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
_FRAME_NAME = re.compile(r"frame_\d+\.png")
_PNG_FPS_KEY = "fps"  # tEXt chunk on every written PNG frame, so the folder round-trips its rate

# Rates tried, smallest first, when a file's nominal rate does not match its timestamps.
_COMMON_RATES = sorted(
    {Fraction(n) for n in range(1, 121)}
    | {Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001)}
    | {Fraction(5, 2), Fraction(15, 2), Fraction(25, 2)}
)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _as_frames(frames: Any) -> np.ndarray:
    """Validate ``frames`` and return a C-contiguous uint8 array (F, H, W, 3)."""
    if isinstance(frames, np.ndarray):
        arr = frames
    elif isinstance(frames, Sequence) and not isinstance(frames, str | bytes):
        if len(frames) == 0:
            raise InvalidParameter("frames is empty: need at least one (H, W, 3) frame")
        items = [np.asarray(f) for f in frames]
        for i, item in enumerate(items):
            if item.shape != items[0].shape:
                raise InvalidParameter(
                    f"frame {i} has shape {item.shape} but frame 0 has shape {items[0].shape}; "
                    "all frames must have the same size"
                )
            if item.dtype != items[0].dtype:
                raise InvalidParameter(
                    f"frame {i} has dtype {item.dtype}, frame 0 has {items[0].dtype}"
                )
        arr = np.stack(items)
    else:
        raise InvalidParameter(
            "frames must be a uint8 numpy array (F, H, W, 3) or a list of (H, W, 3) arrays, "
            f"got {type(frames).__name__}"
        )

    if arr.dtype != np.uint8:
        raise InvalidParameter(
            f"frames must have dtype uint8 (0-255), got {arr.dtype}; for floats in [0, 1] use "
            "(x * 255).round().clip(0, 255).astype(np.uint8)"
        )
    if arr.ndim != 4:
        hint = " (a single frame? pass frames[None] or [frame])" if arr.ndim == 3 else ""
        raise InvalidParameter(f"frames must have shape (F, H, W, 3), got {arr.shape}{hint}")
    if arr.shape[-1] != 3:
        raise InvalidParameter(
            f"frames must have 3 RGB channels in the last axis, got shape {arr.shape}"
            + (" (drop the alpha channel: frames[..., :3])" if arr.shape[-1] == 4 else "")
        )
    if arr.shape[0] == 0:
        raise InvalidParameter("frames is empty: got zero frames, need at least one")
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise InvalidParameter(f"frames have zero height or width: shape {arr.shape}")
    return np.ascontiguousarray(arr)


def check_frames(frames: Any) -> np.ndarray:
    """Frames as every pipeline takes them: uint8 RGB (F, H, W, 3), C-contiguous.

    Accepts such an array, or a list of (H, W, 3) arrays or of PIL images (converted to RGB);
    anything else gets an :class:`InvalidParameter` saying what was expected.
    """
    if isinstance(frames, Sequence) and any(isinstance(f, Image.Image) for f in frames):
        frames = [np.asarray(f.convert("RGB")) if isinstance(f, Image.Image) else f for f in frames]
    return _as_frames(frames)


def _as_rate(fps: FrameRate, name: str = "fps") -> Fraction:
    """Exact frame rate; floats snap to the nearest fraction with denominator <= 1001 (NTSC)."""
    if isinstance(fps, bool) or not isinstance(fps, int | float | Fraction | np.number):
        raise InvalidParameter(f"{name} must be a positive number, got {fps!r}")
    if not np.isfinite(float(fps)) or fps <= 0:
        raise InvalidParameter(f"{name} must be a positive finite number, got {fps!r}")
    if isinstance(fps, np.floating):
        fps = float(fps)
    exact = Fraction(int(fps)) if isinstance(fps, int | np.integer) else Fraction(fps)
    return exact if isinstance(fps, Fraction) else exact.limit_denominator(1001)


def _check_int(value: Any, name: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidParameter(f"{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise InvalidParameter(f"{name} must be {bound}, got {value}")
    return int(value)


def output_format(path: PathLike) -> str:
    """Suffix key of :data:`SUPPORTED_FORMATS` for an output path ('' = PNG folder)."""
    raw = os.fspath(path)
    p = Path(raw)
    if raw.endswith(("/", os.sep)) or p.is_dir():
        return ""
    suffix = p.suffix.lower()
    if suffix in SUPPORTED_FORMATS:
        return suffix
    supported = ", ".join(repr(s) if s else "no suffix (PNG folder)" for s in SUPPORTED_FORMATS)
    raise InvalidParameter(
        f"unsupported video format {p.suffix!r} for {raw!r}; supported: {supported}"
    )


# --------------------------------------------------------------------------------------------
# Atomic destinations
# --------------------------------------------------------------------------------------------


def _sibling(dest: Path, tag: str, suffix: str = "") -> Path:
    # Hidden, unique, same directory: os.replace/rename stay atomic (same filesystem).
    return dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.{tag}{suffix}")


@contextmanager
def _atomic_file(dest: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; move it onto ``dest`` only if the body succeeds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    while True:
        # Keep the real suffix last so any tool sniffing the name sees the right format.
        tmp = _sibling(dest, "tmp", dest.suffix)
        try:
            # os.open applies the umask (mkstemp would force 0600 on the final video).
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # flush to disk before the rename publishes the file
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def _atomic_dir(dest: Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``dest``; swap it in for ``dest`` if the body succeeds.

    An existing ``dest`` is replaced only if it holds nothing but ``frame_*.png`` files, so a
    mistyped path can never wipe an unrelated directory.
    """
    if dest.exists():
        if not dest.is_dir():
            raise FileExistsError(f"cannot write a PNG frame folder: {dest} exists and is a file")
        foreign = sorted(e.name for e in dest.iterdir() if not _FRAME_NAME.fullmatch(e.name))
        if foreign:
            raise FileExistsError(
                f"refusing to replace {dest}: it contains files other than frame_*.png "
                f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''})"
            )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(dest, "tmp")
    tmp.mkdir()
    try:
        yield tmp
        if dest.exists():
            # Directories cannot be replaced atomically; move the old one aside first so the
            # only failure window leaves it recoverable under the hidden ".old" name.
            old = _sibling(dest, "old")
            os.rename(dest, old)
            try:
                os.rename(tmp, dest)
            except BaseException:
                os.rename(old, dest)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _iter_frames(frames: np.ndarray) -> Iterator[np.ndarray]:
    """Frames in order; every writer pulls frames through here (tests inject failures here)."""
    yield from frames


def _timestamps(n: int, rate: Fraction, ticks_per_second: int) -> list[int]:
    """Start ticks of ``n`` frames plus the end tick, rounded cumulatively.

    Rounding the running time (not each delay) keeps the total duration within half a tick of
    ``n / rate``, e.g. 24 fps in GIF centiseconds becomes delays 4, 4, 5, 4, 4, 4, 5, ...
    """
    return [round(i * ticks_per_second / rate) for i in range(n + 1)]


def _write_h264(
    tmp: Path, frames: np.ndarray, rate: Fraction, container: str, crf: int, preset: str
) -> None:
    height, width = frames.shape[1:3]
    # yuv420p subsamples chroma 2x2, so x264 needs even sizes.  Pad by replicating the last
    # row/column rather than cropping (loses content) or rescaling (blurs everything): the
    # picture is untouched and the extra line is invisible in practice.
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    with av.open(str(tmp), "w", format=container, options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": preset})
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        # Tag BT.709 limited range (and convert with that matrix below) so browsers, which
        # assume BT.709 for untagged video, show the colours we encoded.
        ctx = stream.codec_context
        ctx.colorspace = Colorspace.ITU709
        ctx.color_primaries = ColorPrimaries.BT709
        ctx.color_trc = ColorTrc.BT709
        ctx.color_range = ColorRange.MPEG
        ctx.time_base = 1 / rate  # pts = frame index, so duration is exactly F / fps
        for i, rgb in enumerate(_iter_frames(frames)):
            if pad[0][1] or pad[1][1]:
                rgb = np.pad(rgb, pad, mode="edge")
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format="yuv420p",
                dst_colorspace=Colorspace.ITU709,
                dst_color_range=ColorRange.MPEG,
            )
            frame.pts = i
            frame.time_base = ctx.time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _write_gif(tmp: Path, frames: np.ndarray, rate: Fraction) -> None:
    # PyAV + FFmpeg's palettegen/paletteuse rather than Pillow: one palette computed from all
    # frames (no palette flicker), ordered Bayer dither (smooth gradients without the
    # frame-to-frame "crawl" of error diffusion), no merging of repeated frames, and exact
    # per-frame delays.  Pillow's GIF writer quantises frame by frame and merges repeats.
    ticks = _timestamps(len(frames), rate, 100)  # GIF delays are in centiseconds
    delays = np.diff(ticks)
    if delays.min() < 2:
        raise InvalidParameter(
            f"GIF cannot play {float(rate):g} fps: delays are 10 ms steps and browsers play "
            "delays under 20 ms as 100 ms; use at most 50 fps or write .mp4/.webp"
        )
    height, width = frames.shape[1:3]
    time_base = Fraction(1, 100)

    graph = av.filter.Graph()
    src = graph.add_buffer(width=width, height=height, format="rgb24", time_base=time_base)
    split = graph.add("split")
    palettegen = graph.add("palettegen", "stats_mode=full")
    paletteuse = graph.add("paletteuse", "dither=bayer:bayer_scale=3:diff_mode=rectangle")
    sink = graph.add("buffersink")
    src.link_to(split)
    split.link_to(palettegen, 0, 0)
    split.link_to(paletteuse, 1, 0)
    palettegen.link_to(paletteuse, 0, 1)
    paletteuse.link_to(sink)
    graph.configure()

    for i, rgb in enumerate(_iter_frames(frames)):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts, frame.time_base = ticks[i], time_base
        graph.vpush(frame)
    graph.vpush(None)  # palettegen emits its palette only at end of stream

    duration_at = dict(zip(ticks[:-1], delays.tolist(), strict=True))
    with av.open(str(tmp), "w", format="gif") as out:  # the muxer loops forever by default
        stream = out.add_stream("gif", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "pal8"
        stream.codec_context.time_base = time_base

        def mux(packets: list[av.Packet]) -> None:
            for packet in packets:
                # The muxer takes the last frame's delay from the packet duration.
                packet.duration = duration_at[packet.pts]
                out.mux(packet)

        while True:
            try:
                mux(stream.encode(graph.vpull()))
            except (av.BlockingIOError, av.EOFError):
                break
        mux(stream.encode(None))


def _write_webp(tmp: Path, frames: np.ndarray, rate: Fraction, quality: int) -> None:
    # Pillow drives libwebp's animation encoder directly (per-frame ms delays, loop=0), and
    # Pillow is also what reads it back: this FFmpeg build cannot decode animated WebP.
    ms = np.diff(_timestamps(len(frames), rate, 1000)).tolist()
    if min(ms) < 1:
        raise InvalidParameter(f"WebP cannot play {float(rate):g} fps (1 ms delay resolution)")
    images = [Image.fromarray(rgb) for rgb in _iter_frames(frames)]
    images[0].save(
        tmp,
        format="WEBP",
        save_all=True,
        append_images=images[1:],
        duration=ms,
        loop=0,
        lossless=quality >= 100,
        quality=quality,
        method=4,
    )


def _write_png_folder(tmp: Path, frames: np.ndarray, rate: Fraction) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text(_PNG_FPS_KEY, str(rate))  # "24" or "24000/1001": exact, Fraction-parsable
    for i, rgb in enumerate(_iter_frames(frames)):
        Image.fromarray(rgb).save(tmp / f"frame_{i:05d}.png", format="PNG", pnginfo=info)


def write_video(
    path: PathLike,
    frames: np.ndarray | Sequence[np.ndarray],
    fps: FrameRate,
    *,
    crf: int = 18,
    preset: str = "medium",
    quality: int = 90,
) -> Path:
    """Write RGB frames to ``path``, choosing the format from its suffix; return the path.

    Args:
        path: ``.mp4``/``.mov`` (H.264), ``.gif``, ``.webp``, or a path without suffix (or ending
            in ``/``, or an existing directory) for a folder of ``frame_00000.png`` files.
            Parent directories are created.
        frames: uint8 array (F, H, W, 3) or a list of (H, W, 3) uint8 arrays.
        fps: frames per second; int, float or Fraction (29.97 -> 2997/100, 30000/1001 exact).
        crf: x264 constant rate factor, 0-51, lower is better (18 is visually lossless).  crf 0
            is lossless but uses a profile browsers do not decode.
        preset: x264 speed/size trade-off (``ultrafast`` ... ``veryslow``).
        quality: WebP quality 0-100; 100 writes lossless WebP.

    Odd widths/heights are padded to even for H.264 (edge pixels replicated), so such MP4s
    decode one pixel larger.  GIF is limited to 50 fps.  The write is atomic: on any error
    ``path`` keeps its previous content and no temporary files are left behind.
    """
    kind = output_format(path)
    data = _as_frames(frames)
    rate = _as_rate(fps)
    crf = _check_int(crf, "crf", 0, 51)
    quality = _check_int(quality, "quality", 0, 100)
    dest = Path(os.fspath(path))

    if kind == "":
        with _atomic_dir(dest) as tmp_dir:
            _write_png_folder(tmp_dir, data, rate)
        return dest
    with _atomic_file(dest) as tmp:
        if kind in _H264_CONTAINERS:
            _write_h264(tmp, data, rate, _H264_CONTAINERS[kind], crf, preset)
        elif kind == ".gif":
            _write_gif(tmp, data, rate)
        else:
            _write_webp(tmp, data, rate, quality)
    return dest


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


@dataclass
class _Timing:
    """Frame start times (seconds from the first frame) and what is known about the clock."""

    times: list[float]
    end: float | None  # end of the last frame, if the file says
    nominal: Fraction | None  # rate the container claims
    quantum: float  # timestamp resolution in seconds


def _on_grid(points: Sequence[float], rate: Fraction, tol: float) -> bool:
    """True if every point is within ``tol`` seconds of a distinct multiple of ``1 / rate``."""
    r = float(rate)
    slots = [round(p * r) for p in points]
    if any(abs(p * r - s) > tol * r for p, s in zip(points, slots, strict=True)):
        return False
    return all(b > a for a, b in itertools.pairwise(slots))


def _infer_rate(timing: _Timing) -> Fraction | float:
    """The clip's constant frame rate, recovered from timestamps.

    Trusts the container's nominal rate if the timestamps sit on its grid, else the smallest
    common rate consistent with them (a 24 fps GIF has delays 4, 4, 5 cs; FFmpeg calls it 25).
    """
    times = timing.times
    points = [*times, timing.end] if timing.end is not None else times
    if len(points) < 2:  # a still image: nothing to measure
        return timing.nominal or Fraction(DEFAULT_FPS)
    tol = timing.quantum / 2 + 1e-7
    if timing.nominal and _on_grid(points, timing.nominal, tol):
        return timing.nominal
    for rate in _COMMON_RATES:
        if 1 / float(rate) >= timing.quantum and _on_grid(points, rate, tol):
            return rate
    deltas = np.diff(points)
    if deltas.min() > 0:
        return 1.0 / float(np.median(deltas))
    return timing.nominal or Fraction(DEFAULT_FPS)


def _select(timing: _Timing, src_rate: float, out_rate: float, num_frames: int | None) -> list[int]:
    """Indices of the source frames shown at each output frame of a ``out_rate`` clip.

    Output frame ``j`` takes the source frame on screen at ``j / out_rate`` plus half a frame
    (the shorter of the two), i.e. the nearest frame.  Using on-screen intervals rather than
    raw start times keeps merged (held) frames and jittery timestamps right.
    """
    times = timing.times
    end = timing.end if timing.end is not None else times[-1] + 1 / src_rate
    offset = 0.5 / max(src_rate, out_rate)
    picks: list[int] = []
    j = 0
    while num_frames is None or j < num_frames:
        t = j / out_rate + offset
        if t >= end:
            break
        picks.append(max(bisect.bisect_right(times, t) - 1, 0))
        j += 1
    return picks


# --------------------------------------------------------------------------------------------
# Decoders
# --------------------------------------------------------------------------------------------


def _decode_av(
    path: Path, num_frames: int | None = None, out_rate: Fraction | None = None
) -> tuple[list[np.ndarray], _Timing, bool]:
    """Decode with PyAV; returns frames, timing and whether decoding stopped early.

    With ``num_frames``, decoding stops well past the last frame that can be needed.  The
    nominal rate may be off (25 for a 24 fps GIF), hence the 1.5x margin; the caller decodes
    everything if the early stop still came up short.
    """
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise ValueError(f"could not decode {path}: not a readable video ({exc})") from exc
    with container:
        if not container.streams.video:
            raise ValueError(f"no video stream in {path}")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        nominal = stream.average_rate or stream.guessed_rate
        time_base = stream.time_base or Fraction(1, 1_000_000)
        guess = out_rate or nominal
        stop = (num_frames + 1) / float(guess) * 1.5 if num_frames and guess else None
        frames: list[np.ndarray] = []
        starts: list[float] = []
        last_duration = 0.0
        stopped = False
        try:
            for frame in container.decode(stream):
                if frame.pts is not None:
                    t = float(frame.pts * time_base)
                elif nominal:
                    t = len(frames) / float(nominal)
                else:
                    raise ValueError(f"could not decode {path}: frames carry no timestamps")
                if starts and t <= starts[-1]:
                    continue  # duplicate/out-of-order timestamp: keep the first frame shown
                # Honour the stream's range tag (full-range YUV) and keep a mid-stream size
                # change from breaking np.stack by scaling to the first frame's size.
                shape = (
                    {"width": frames[0].shape[1], "height": frames[0].shape[0]} if frames else {}
                )
                rgb = frame.to_ndarray(
                    format="rgb24", src_color_range=frame.color_range or None, **shape
                )
                frames.append(rgb)
                starts.append(t)
                last_duration = float((frame.duration or 0) * time_base)
                if stop is not None and t - starts[0] > stop:
                    stopped = True
                    break
        except av.FFmpegError as exc:
            if not frames:
                raise ValueError(f"could not decode {path}: {exc}") from exc
            # A damaged tail should not cost the frames that decoded fine.
    if not frames:
        raise ValueError(f"could not decode {path}: the video stream has no frames")
    times = [t - starts[0] for t in starts]
    end = times[-1] + last_duration if last_duration > 0 and not stopped else None
    timing = _Timing(times, end, Fraction(nominal) if nominal else None, float(time_base))
    return frames, timing, stopped


def _decode_pillow(path: Path) -> tuple[list[np.ndarray], _Timing]:
    """Decode an (animated) image with Pillow; used for WebP, which FFmpeg cannot animate."""
    try:
        image = Image.open(path)
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"could not decode {path}: {exc}") from exc
    with image:
        frames: list[np.ndarray] = []
        times: list[float] = []
        t = 0
        for k in range(getattr(image, "n_frames", 1)):
            image.seek(k)
            frames.append(np.asarray(image.convert("RGB")))
            times.append(t / 1000)
            t += int(image.info.get("duration") or 0)
    end = t / 1000 if t > times[-1] * 1000 else None
    return frames, _Timing(times, end, None, 1e-3)


def _natural_key(name: str) -> list[Any]:
    # frame_2.png before frame_10.png
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _folder_frames(path: Path) -> list[Path]:
    files = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES]
    if not files:
        suffixes = ", ".join(sorted(_IMAGE_SUFFIXES))
        raise ValueError(f"no video stream in {path}: folder has no image frames ({suffixes})")
    return sorted(files, key=lambda p: _natural_key(p.name))


def _load_image(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    try:
        with Image.open(path) as image:
            if size is not None and image.size != size:
                raise ValueError(f"frame {path.name} is {image.size}, earlier frames are {size}")
            return np.asarray(image.convert("RGB"))
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"could not decode frame {path}: {exc}") from exc


def _folder_rate(first: Path) -> Fraction | None:
    try:
        with Image.open(first) as image:
            text = getattr(image, "text", {}).get(_PNG_FPS_KEY)
        return Fraction(text) if text else None
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    # Pillow's bicubic widens its kernel by the shrink factor, i.e. it is antialiased (area-
    # like) when downscaling and plain bicubic when upscaling.
    if frames.shape[2] == size[0] and frames.shape[1] == size[1]:
        return frames
    out = np.empty((len(frames), size[1], size[0], 3), dtype=np.uint8)
    for i, rgb in enumerate(frames):
        out[i] = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))
    return out


def read_video(
    path: PathLike,
    *,
    num_frames: int | None = None,
    size: tuple[int, int] | None = None,
    fps: FrameRate | None = None,
) -> tuple[np.ndarray, float]:
    """Decode a video file or image-frame folder to uint8 RGB (F, H, W, 3) and its fps.

    Args:
        path: any file PyAV can open (mp4, mov, mkv, webm, gif, ...), an animated WebP, or a
            folder of PNG/JPG frames (sorted naturally; rate from the PNG ``fps`` text chunk
            that :func:`write_video` stores, else ``fps``, else :data:`DEFAULT_FPS`).
        num_frames: keep at most the first N frames (after ``fps`` resampling).
        size: ``(width, height)`` to resize every frame to (antialiased bicubic).
        fps: resample in time to this rate by taking the nearest source frame for each output
            frame; the returned fps is then this rate.

    Variable-duration frames (GIF/WebP merge repeated frames) are expanded back to a constant
    rate, so a clip written with :func:`write_video` reads back with its original frame count.
    """
    src = Path(os.fspath(path))
    if not src.exists():
        raise FileNotFoundError(f"video not found: {src}")
    if num_frames is not None:
        num_frames = _check_int(num_frames, "num_frames", 1)
    if size is not None:
        if not (isinstance(size, Sequence) and len(size) == 2):
            raise InvalidParameter(f"size must be (width, height), got {size!r}")
        size = (
            _check_int(size[0], "size[0] (width)", 1),
            _check_int(size[1], "size[1] (height)", 1),
        )
    out_rate = _as_rate(fps) if fps is not None else None

    if src.is_dir():
        files = _folder_frames(src)
        rate = _folder_rate(files[0]) or out_rate or Fraction(DEFAULT_FPS)
        times = [i / float(rate) for i in range(len(files))]
        timing = _Timing(times, len(files) / float(rate), rate, 0.0)
        target = out_rate or rate
        picks = _select(timing, float(rate), float(target), num_frames)
        loaded: dict[int, np.ndarray] = {}
        first = _load_image(files[picks[0]])
        expect = (first.shape[1], first.shape[0])
        for i in dict.fromkeys(picks):  # load each needed file once, in order
            loaded[i] = first if i == picks[0] else _load_image(files[i], expect)
        frames = np.stack([loaded[i] for i in picks])
        return (_resize(frames, size) if size else frames), float(target)

    if src.suffix.lower() == ".webp":
        decoded, timing = _decode_pillow(src)
        stopped = False
    else:
        decoded, timing, stopped = _decode_av(src, num_frames, out_rate)

    rate = _infer_rate(timing)
    target = out_rate or rate
    picks = _select(timing, float(rate), float(target), num_frames)
    if stopped and num_frames is not None and len(picks) < num_frames:
        decoded, timing, _ = _decode_av(src)
        rate = _infer_rate(timing)
        target = out_rate or rate
        picks = _select(timing, float(rate), float(target), num_frames)

    frames = np.stack([decoded[i] for i in picks])
    return (_resize(frames, size) if size else frames), float(target)


# --------------------------------------------------------------------------------------------
# Probing
# --------------------------------------------------------------------------------------------


def _mp4_atoms(path: Path) -> list[str]:
    """Top-level ISO-BMFF box types in file order (``moov`` before ``mdat`` = faststart)."""
    atoms: list[str] = []
    size_total = path.stat().st_size
    with open(path, "rb") as fh:
        offset = 0
        while offset + 8 <= size_total:
            fh.seek(offset)
            size, kind = struct.unpack(">I4s", fh.read(8))
            if size == 1:  # 64-bit size follows the type
                (size,) = struct.unpack(">Q", fh.read(8))
            elif size == 0:  # box runs to end of file
                size = size_total - offset
            if size < 8:
                break  # corrupt; stop rather than loop forever
            atoms.append(kind.decode("latin-1"))
            offset += size
    return atoms


def probe_video(path: PathLike) -> dict[str, Any]:
    """Describe a video file or frame folder (only WebP frames get decoded, by Pillow).

    Returns a dict with ``format``, ``codec``, ``profile``, ``pix_fmt``, ``width``, ``height``,
    ``num_frames``, ``fps`` (float), ``duration`` (seconds) and ``faststart`` (True/False for
    MP4/MOV: ``moov`` atom before ``mdat``; None for other formats).  ``num_frames`` counts
    constant-rate frames as :func:`read_video` returns them (GIF/WebP store repeats once).
    """
    src = Path(os.fspath(path))
    if not src.exists():
        raise FileNotFoundError(f"video not found: {src}")

    if src.is_dir():
        files = _folder_frames(src)
        with Image.open(files[0]) as image:
            width, height, mode, fmt = image.width, image.height, image.mode, image.format
        rate = _folder_rate(files[0]) or Fraction(DEFAULT_FPS)
        return {
            "format": "image_folder",
            "codec": (fmt or "").lower(),
            "profile": None,
            "pix_fmt": mode,
            "width": width,
            "height": height,
            "num_frames": len(files),
            "fps": float(rate),
            "duration": float(len(files) / rate),
            "faststart": None,
        }

    if src.suffix.lower() == ".webp":
        frames, timing = _decode_pillow(src)
        rate = _infer_rate(timing)
        return {
            "format": "webp",
            "codec": "webp",
            "profile": None,
            "pix_fmt": "rgb24",
            "width": frames[0].shape[1],
            "height": frames[0].shape[0],
            "num_frames": len(_select(timing, float(rate), float(rate), None)),
            "fps": float(rate),
            "duration": timing.end if timing.end is not None else len(frames) / float(rate),
            "faststart": None,
        }

    try:
        container = av.open(str(src))
    except av.FFmpegError as exc:
        raise ValueError(f"could not decode {src}: not a readable video ({exc})") from exc
    with container:
        if not container.streams.video:
            raise ValueError(f"no video stream in {src}")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        time_base = stream.time_base or Fraction(1, 1_000_000)
        # Packet timestamps give the exact frame count and timing without decoding.
        spans = sorted(
            (p.pts, p.duration or 0) for p in container.demux(stream) if p.pts is not None
        )
        info: dict[str, Any] = {
            "format": container.format.name,
            "codec": ctx.name,
            "profile": ctx.profile,
            "pix_fmt": ctx.pix_fmt,
            "width": ctx.width,
            "height": ctx.height,
            "num_frames": len(spans) or stream.frames,
        }
        nominal = stream.average_rate or stream.guessed_rate
        container_duration = container.duration / av.time_base if container.duration else None
    if spans:
        first = spans[0][0]
        times = [float((pts - first) * time_base) for pts, _ in spans]
        last_pts, last_dur = spans[-1]
        end = float((last_pts + last_dur - first) * time_base) if last_dur else None
        timing = _Timing(times, end, Fraction(nominal) if nominal else None, float(time_base))
        rate = _infer_rate(timing)
        info["fps"] = float(rate)
        info["num_frames"] = len(_select(timing, float(rate), float(rate), None))
        info["duration"] = end if end is not None else len(times) / float(rate)
    else:
        info["fps"] = float(nominal) if nominal else None
        info["duration"] = container_duration
    info["faststart"] = None
    if src.suffix.lower() in _H264_CONTAINERS or "mp4" in info["format"]:
        atoms = _mp4_atoms(src)
        if "moov" in atoms and "mdat" in atoms:
            info["faststart"] = atoms.index("moov") < atoms.index("mdat")
    return info
