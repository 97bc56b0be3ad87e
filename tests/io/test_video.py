"""Round trips, container details and failure behaviour of vidsynth.io.video."""

from __future__ import annotations

import os
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from vidsynth.errors import InvalidParameter
from vidsynth.io import video
from vidsynth.io.video import (
    DEFAULT_FPS,
    SUPPORTED_FORMATS,
    probe_video,
    read_video,
    write_video,
)

FPS = 24
FILE_SUFFIXES = [".mp4", ".mov", ".gif", ".webp"]
ALL_KINDS = [*FILE_SUFFIXES, ""]  # "" = folder of PNG frames
# Mean absolute error bounds (0-255 levels) for the smooth synthetic clip below.
MAX_MAE = {".mp4": 6, ".mov": 6, ".gif": 8, ".webp": 6, "": 0}


def moving_square(frames: int = 16, height: int = 64, width: int = 64) -> np.ndarray:
    """Colour gradients with a red square sliding right; frames 4 and 5 are identical."""
    clip = np.zeros((frames, height, width, 3), np.uint8)
    clip[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[None, :, None]
    clip[..., 2] = np.linspace(0, 255, width, dtype=np.uint8)[None, None, :]
    for i in range(frames):
        x = 2 * i if i != 5 else 2 * 4  # a held frame: GIF/WebP encoders merge such repeats
        clip[i, 10:30, x : x + 20] = (255, 40, 40)
    return clip


def target(tmp_path: Path, kind: str, name: str = "clip") -> Path:
    return tmp_path / f"{name}{kind}"


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def top_level_atoms(path: Path) -> list[str]:
    """ISO-BMFF top-level boxes, walked independently of the module under test."""
    data = path.read_bytes()
    atoms, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        atoms.append(kind.decode("latin-1"))
        offset += size if size else len(data)
    return atoms


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return moving_square()


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize(("height", "width"), [(64, 64), (65, 63)])
def test_round_trip(tmp_path: Path, kind: str, height: int, width: int) -> None:
    frames = moving_square(16, height, width)
    out = write_video(target(tmp_path, kind), frames, FPS)
    assert out == target(tmp_path, kind)

    decoded, fps = read_video(out)
    assert fps == FPS
    assert decoded.dtype == np.uint8
    if kind in (".mp4", ".mov"):  # odd sizes are padded to even by edge replication
        assert decoded.shape == (16, height + height % 2, width + width % 2, 3)
    else:
        assert decoded.shape == frames.shape
    decoded = decoded[:, :height, :width]
    assert mae(decoded, frames) <= MAX_MAE[kind]
    # Each frame lands in its own slot (no off-by-one shift in time).
    for i in range(1, 16):
        if i != 5:  # frame 5 repeats frame 4
            assert mae(decoded[i], frames[i]) < mae(decoded[i], frames[i - 1])

    info = probe_video(out)
    assert info["num_frames"] == 16
    assert info["fps"] == pytest.approx(FPS)
    assert info["duration"] == pytest.approx(16 / FPS, abs=0.006)  # GIF: 10 ms steps


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_single_frame(tmp_path: Path, kind: str) -> None:
    frame = moving_square(1, 16, 16)
    decoded, fps = read_video(write_video(target(tmp_path, kind), frame, 10))
    assert decoded.shape == (1, 16, 16, 3)
    # Pillow writes a one-frame WebP as a still image, which has no frame rate.
    assert fps == (DEFAULT_FPS if kind == ".webp" else 10)


def test_list_of_frames_is_accepted(tmp_path: Path, clip: np.ndarray) -> None:
    out = write_video(tmp_path / "list", list(clip), FPS)
    np.testing.assert_array_equal(read_video(out)[0], clip)


# ----------------------------------------------------------------------------- H.264 details


@pytest.mark.parametrize("kind", [".mp4", ".mov"])
def test_h264_is_browser_safe(tmp_path: Path, clip: np.ndarray, kind: str) -> None:
    out = write_video(target(tmp_path, kind), clip, FPS)
    info = probe_video(out)
    assert info["codec"] == "h264"
    assert info["pix_fmt"] == "yuv420p"
    assert info["profile"] == "High"
    assert info["faststart"] is True
    atoms = top_level_atoms(out)
    assert atoms.index("moov") < atoms.index("mdat"), atoms
    with av.open(str(out)) as container:  # colours tagged, so browsers use the right matrix
        ctx = container.streams.video[0].codec_context
        assert (ctx.colorspace, ctx.color_primaries, ctx.color_trc) == (1, 1, 1)


@pytest.mark.parametrize("fps", [Fraction(30000, 1001), 12.5, 29.97, Fraction(24000, 1001), 8, 60])
def test_h264_duration_for_any_rate(tmp_path: Path, clip: np.ndarray, fps: float) -> None:
    info = probe_video(write_video(tmp_path / "clip.mp4", clip, fps, preset="ultrafast"))
    assert info["fps"] == pytest.approx(float(fps))
    assert info["num_frames"] == 16
    assert info["duration"] == pytest.approx(16 / float(fps), rel=1e-6)
    assert read_video(tmp_path / "clip.mp4")[1] == pytest.approx(float(fps))


def test_odd_size_padding_replicates_edges(tmp_path: Path) -> None:
    frames = moving_square(4, 65, 63)
    decoded, _ = read_video(write_video(tmp_path / "odd.mp4", frames, FPS))
    assert decoded.shape[1:3] == (66, 64)
    # The padded row/column repeat their neighbours (up to compression noise).
    assert mae(decoded[:, -1], decoded[:, -2]) < 4
    assert mae(decoded[:, :, -1], decoded[:, :, -2]) < 4


def test_crf_trades_size_for_quality(tmp_path: Path, clip: np.ndarray) -> None:
    noisy = np.random.default_rng(0).integers(0, 256, clip.shape, dtype=np.uint8)
    small = write_video(tmp_path / "small.mp4", noisy, FPS, crf=40, preset="ultrafast")
    large = write_video(tmp_path / "large.mp4", noisy, FPS, crf=10, preset="ultrafast")
    assert small.stat().st_size < large.stat().st_size
    assert mae(read_video(large)[0], noisy) < mae(read_video(small)[0], noisy)


# ----------------------------------------------------------------------------- GIF / WebP


def frame_durations(path: Path) -> tuple[list[int], int | None]:
    with Image.open(path) as image:
        durations = []
        for k in range(image.n_frames):
            image.seek(k)
            image.load()  # WebP sets the frame's duration on load
            durations.append(image.info["duration"])
        return durations, image.info.get("loop")


def test_gif_loops_with_exact_timing(tmp_path: Path, clip: np.ndarray) -> None:
    durations, loop = frame_durations(write_video(tmp_path / "clip.gif", clip, FPS))
    assert loop == 0  # NETSCAPE2.0 loop count 0 = forever
    assert len(durations) == 16  # repeated frames are kept, not merged
    assert set(durations) <= {40, 50}  # 41.67 ms in 10 ms steps, rounded cumulatively
    assert sum(durations) == 670  # 16 / 24 s to the nearest 10 ms


def test_gif_rejects_rates_browsers_cannot_play(tmp_path: Path, clip: np.ndarray) -> None:
    with pytest.raises(InvalidParameter, match="50 fps"):
        write_video(tmp_path / "fast.gif", clip, 60)
    assert not any(tmp_path.iterdir())


def test_webp_loops_and_restores_merged_frames(tmp_path: Path, clip: np.ndarray) -> None:
    out = write_video(tmp_path / "clip.webp", clip, FPS)
    durations, loop = frame_durations(out)
    assert loop == 0
    assert len(durations) == 15  # libwebp stored frames 4 and 5 as one 83 ms frame
    assert sum(durations) == 667
    decoded, fps = read_video(out)
    assert (len(decoded), fps) == (16, FPS)
    np.testing.assert_array_equal(decoded[4], decoded[5])


def test_webp_quality_100_is_lossless(tmp_path: Path, clip: np.ndarray) -> None:
    decoded, _ = read_video(write_video(tmp_path / "clip.webp", clip, FPS, quality=100))
    np.testing.assert_array_equal(decoded, clip)


# ----------------------------------------------------------------------------- PNG folders


def test_png_folder_layout_and_rate(tmp_path: Path, clip: np.ndarray) -> None:
    out = write_video(tmp_path / "frames", clip, Fraction(30000, 1001))
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:05d}.png" for i in range(16)]
    decoded, fps = read_video(out)
    np.testing.assert_array_equal(decoded, clip)
    assert fps == pytest.approx(30000 / 1001)


def test_folder_rules(tmp_path: Path, clip: np.ndarray) -> None:
    # A trailing slash or an existing directory means a folder, whatever the name looks like.
    out = write_video(f"{tmp_path / 'slash.d'}/", clip, FPS)
    assert out.is_dir() and out.name == "slash.d"
    (tmp_path / "dir.mp4").mkdir()
    assert write_video(tmp_path / "dir.mp4", clip, FPS).is_dir()


def test_png_folder_replaces_old_frames(tmp_path: Path, clip: np.ndarray) -> None:
    out = write_video(tmp_path / "frames", clip, FPS)
    write_video(out, clip[:3], FPS)
    assert len(list(out.iterdir())) == 3  # no stale frame_00003.png ... left behind
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]


def test_png_folder_refuses_to_replace_foreign_directory(tmp_path: Path, clip: np.ndarray) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"notes\.txt"):
        write_video(mine, clip, FPS)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_image_folder_without_rate(tmp_path: Path, clip: np.ndarray) -> None:
    folder = tmp_path / "jpgs"
    folder.mkdir()
    for i in (0, 1, 2, 10):  # natural order: 2 before 10
        Image.fromarray(clip[min(i, 15)]).save(folder / f"img_{i}.jpg", quality=95)
    decoded, fps = read_video(folder)
    assert fps == DEFAULT_FPS
    assert decoded.shape == (4, 64, 64, 3)
    assert mae(decoded[3], clip[10]) < 4
    assert read_video(folder, fps=12)[1] == 12  # taken as the folder's rate, not resampled
    assert len(read_video(folder, fps=12)[0]) == 4


# ----------------------------------------------------------------------------- atomic writes


def fail_after(n: int):
    def frames(data: np.ndarray):
        for i, frame in enumerate(data):
            if i == n:
                raise RuntimeError("encoder crashed")
            yield frame

    return frames


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_failed_write_keeps_old_output(
    tmp_path: Path, clip: np.ndarray, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = target(tmp_path, kind)
    write_video(dest, clip[:4], 12)
    before = read_video(dest)

    monkeypatch.setattr(video, "_iter_frames", fail_after(7))
    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_video(dest, clip, FPS)

    after = read_video(dest)
    np.testing.assert_array_equal(after[0], before[0])
    assert after[1] == before[1] == 12
    assert [p.name for p in tmp_path.iterdir()] == [dest.name]  # no temporary leftovers


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_failed_write_leaves_nothing(
    tmp_path: Path, clip: np.ndarray, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(video, "_iter_frames", fail_after(3))
    with pytest.raises(RuntimeError):
        write_video(tmp_path / "sub" / f"clip{kind}", clip, FPS)
    assert list((tmp_path / "sub").iterdir()) == []


def test_creates_parents_with_normal_permissions(tmp_path: Path, clip: np.ndarray) -> None:
    out = write_video(tmp_path / "a" / "b" / "clip.mp4", clip, FPS)
    assert out.is_file()
    umask = os.umask(0)
    os.umask(umask)
    # Not the 0600 of mkstemp: a served or shared video must stay readable.
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (np.zeros((4, 8, 8, 3), np.float32), "uint8"),
        (np.zeros((8, 8, 3), np.uint8), r"\(F, H, W, 3\).*single frame"),
        (np.zeros((2, 8, 8), np.uint8), r"\(F, H, W, 3\)"),
        (np.zeros((2, 8, 8, 4), np.uint8), "3 RGB channels.*alpha"),
        (np.zeros((0, 8, 8, 3), np.uint8), "zero frames"),
        ([], "empty"),
        ([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 6, 3), np.uint8)], "frame 1 has shape"),
        ("frames.mp4", "uint8 numpy array"),
    ],
)
def test_bad_frames(tmp_path: Path, frames: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_video(tmp_path / "clip.mp4", frames, FPS)  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())


def test_unknown_suffix_lists_formats(tmp_path: Path, clip: np.ndarray) -> None:
    with pytest.raises(InvalidParameter, match=r"'\.avi'.*'\.mp4'.*'\.gif'.*'\.webp'.*folder"):
        write_video(tmp_path / "clip.avi", clip, FPS)
    assert set(SUPPORTED_FORMATS) == {".mp4", ".mov", ".gif", ".webp", ""}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fps": 0}, "fps"),
        ({"fps": float("nan")}, "fps"),
        ({"fps": "24"}, "fps"),
        ({"fps": FPS, "crf": 52}, "crf"),
        ({"fps": FPS, "quality": -1}, "quality"),
    ],
)
def test_bad_parameters(tmp_path: Path, clip: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        write_video(tmp_path / "clip.mp4", clip, **kwargs)


# ----------------------------------------------------------------------------- read options


@pytest.fixture(scope="module")
def mp4(tmp_path_factory: pytest.TempPathFactory, clip: np.ndarray) -> Path:
    return write_video(tmp_path_factory.mktemp("mp4") / "clip.mp4", clip, FPS)


def test_read_resize(mp4: Path) -> None:
    full, _ = read_video(mp4)
    small, fps = read_video(mp4, size=(32, 24))
    assert small.shape == (16, 24, 32, 3) and fps == FPS
    expected = np.asarray(Image.fromarray(full[3]).resize((32, 24), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(small[3], expected)


def test_read_num_frames(mp4: Path) -> None:
    full, _ = read_video(mp4)
    first, fps = read_video(mp4, num_frames=5)
    np.testing.assert_array_equal(first, full[:5])
    assert fps == FPS
    assert len(read_video(mp4, num_frames=100)[0]) == 16


@pytest.mark.parametrize(
    ("fps", "picks"),
    [
        (12, list(range(0, 16, 2))),  # every other frame
        (8, list(range(0, 16, 3))),
        (48, [i // 2 for i in range(32)]),  # each frame twice
        (30, [round(j * 24 / 30) for j in range(20)]),  # nearest frame
    ],
)
def test_read_fps_resampling(mp4: Path, fps: int, picks: list[int]) -> None:
    full, _ = read_video(mp4)
    resampled, out_fps = read_video(mp4, fps=fps)
    assert out_fps == fps
    np.testing.assert_array_equal(resampled, full[picks])


def test_read_options_combine(mp4: Path) -> None:
    full, _ = read_video(mp4)
    frames, fps = read_video(mp4, fps=12, num_frames=3, size=(16, 16))
    assert frames.shape == (3, 16, 16, 3) and fps == 12
    expected = np.asarray(Image.fromarray(full[4]).resize((16, 16), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(frames[2], expected)


def test_read_num_frames_gif_with_misleading_nominal_rate(tmp_path: Path, clip: np.ndarray) -> None:
    # FFmpeg reports 25 fps for a 24 fps GIF (delays 4, 4, 5 cs); early stop must not cut short.
    out = write_video(tmp_path / "clip.gif", clip, FPS)
    full, _ = read_video(out)
    part, fps = read_video(out, num_frames=9)
    assert fps == FPS
    np.testing.assert_array_equal(part, full[:9])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_frames": 0}, "num_frames"), ({"size": (32,)}, "size"), ({"fps": -1}, "fps")],
)
def test_read_bad_options(mp4: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        read_video(mp4, **kwargs)


# ----------------------------------------------------------------------------- read errors


def test_read_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(FileNotFoundError, match=r"nope\.mp4"):
        read_video(missing)
    with pytest.raises(FileNotFoundError, match=r"nope\.mp4"):
        probe_video(missing)


def test_read_garbage(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(ValueError, match="could not decode"):
        read_video(junk)


def test_read_audio_only(tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    with av.open(str(wav), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        samples = (np.sin(np.arange(800) / 5) * 1000).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(ValueError, match="no video stream"):
        read_video(wav)


def test_read_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no video stream"):
        read_video(tmp_path)
