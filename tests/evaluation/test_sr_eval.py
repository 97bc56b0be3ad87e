"""`vidsynth eval --mode sr`: its baselines, and a run on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest

import vidsynth
from vidsynth.errors import InvalidParameter
from vidsynth.evaluation.metrics import MAX_PSNR, psnr
from vidsynth.evaluation.super_resolution import (
    at_base_rate,
    bicubic_upscale,
    blend_frames,
    eval_scenes,
    evaluate_sr,
    repeat_frames,
)
from vidsynth.world import ObjectSpec, SceneSpec, render


def test_bicubic_baseline_reproduces_flat_and_linear_images() -> None:
    flat = np.full((2, 16, 16, 3), 77, np.uint8)
    assert np.array_equal(bicubic_upscale(flat, 4), np.full((2, 64, 64, 3), 77, np.uint8))
    # along a row it is Keys' cubic convolution (a = -0.75, borders clamped) sampled at the
    # output pixel centres x_j = (j + 0.5) / 4 - 0.5, written out independently here
    row = np.random.default_rng(0).integers(0, 256, 16).astype(float)
    image = np.ascontiguousarray(np.broadcast_to(row[None, None, :, None], (1, 16, 16, 3)))
    up = bicubic_upscale(image.astype(np.uint8), 4)[0, 5, :, 0]

    def keys(t: np.ndarray, a: float = -0.75) -> np.ndarray:
        t = np.abs(t)
        near = ((a + 2) * t - (a + 3)) * t * t + 1
        far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
        return np.where(t <= 1, near, np.where(t < 2, far, 0.0))

    x = (np.arange(64) + 0.5) / 4 - 0.5
    base = np.floor(x).astype(int)
    expected = sum(keys(x - (base + d)) * row[np.clip(base + d, 0, 15)] for d in (-1, 0, 1, 2))
    np.testing.assert_allclose(up, np.clip(np.rint(expected), 0, 255), atol=1)
    # on a world clip it is a fair, imperfect baseline
    scene = eval_scenes(1)[0]
    score = psnr(bicubic_upscale(render(scene, 64, 2), 4), render(scene, 256, 2))
    assert 20 < score < 45


def test_frame_baselines() -> None:
    still = SceneSpec((ObjectSpec("star", "red", "large", "still"),), "gray")
    low, truth = render(still, 32, 8, fps=8), render(still, 32, 16, fps=16)
    assert psnr(repeat_frames(low, 2), truth) == MAX_PSNR  # nothing moves: repetition is exact
    assert psnr(blend_frames(low, 2), truth) == MAX_PSNR
    moving = SceneSpec((ObjectSpec("square", "blue", "medium", "right", "quickly", 0.3, 0.5),))
    low, truth = render(moving, 32, 8, fps=8), render(moving, 32, 16, fps=16)
    blend, repeat = blend_frames(low, 2), repeat_frames(low, 2)
    assert np.array_equal(blend[::2], low) and np.array_equal(repeat[::2], low)
    assert np.array_equal(blend[-1], low[-1])  # held after the last frame
    assert MAX_PSNR > psnr(blend, truth) > psnr(repeat, truth)  # halfway is nearer than stale
    x = np.arange(3, dtype=np.uint8)[:, None, None, None] * 100
    assert blend_frames(x, 2)[:, 0, 0, 0].tolist() == [0, 50, 100, 150, 200, 200]


def test_judging_at_the_base_rate() -> None:
    frames = np.zeros((32, 4, 4, 3), np.uint8)
    assert at_base_rate(frames, 16).shape[0] == 16
    assert at_base_rate(frames, 8).shape[0] == 32
    assert at_base_rate(frames, 12).shape[0] == 32  # not a multiple: left as it is
    with pytest.raises(InvalidParameter, match="unknown SR eval set"):
        eval_scenes(2, "sr9")
    assert eval_scenes(3) == eval_scenes(3) != eval_scenes(3, "srval1")


def test_spatial_sr_eval_on_a_tiny_model(tiny_ssr_model, tmp_path) -> None:
    pipe = vidsynth.load(tiny_ssr_model, device="cpu")
    report = evaluate_sr(pipe, clips=2, low_size=16, num_frames=2, fps=8, save_dir=tmp_path)
    assert set(report.metrics) == {"ours", "bicubic"}
    assert report.metrics["bicubic"]["psnr"] > report.metrics["ours"]["psnr"]  # random weights
    assert set(report.judge) == {"input", "bicubic", "ours"}
    assert report.judge["input"]["colour"] == 1.0  # renders: the judge sees them right
    assert report.settings["output"] == "2x64x64" and len(report.clips) == 2
    assert "seconds per clip" in report.table()
    json.dumps(report.to_dict())
    assert (tmp_path / "00-ours.mp4").is_file() and (tmp_path / "01-truth.mp4").is_file()


def test_temporal_sr_eval_on_a_tiny_model(tiny_tsr_model) -> None:
    pipe = vidsynth.load(tiny_tsr_model, device="cpu")
    report = evaluate_sr(pipe, clips=2, size=16, num_frames=4, fps=8)
    assert set(report.metrics) == {"ours", "blend", "repeat"}
    for values in report.metrics.values():
        assert values["psnr"] > values["psnr_new"]  # the known frames are exact
    assert report.settings["output"] == "8x16x16 at 16 fps"
    assert report.judge["new frames, truth"]["colour"] == 1.0
