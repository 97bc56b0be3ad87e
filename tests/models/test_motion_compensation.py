"""Bilateral motion estimation and motion-compensated interpolation, on rendered world clips
whose in-between frames the world can draw exactly."""

from __future__ import annotations

import numpy as np
import torch

from vidsynth.models.motion_compensation import MIN_MOTION, aligned, bilateral_flow, interpolate
from vidsynth.world import ObjectSpec, SceneSpec, render


def pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 (F, H, W, 3) → float (F, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).square().mean())


def clip_at_two_rates(obj: ObjectSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The clip at 8 fps (16 frames) and at 16 fps (32): frame i of one is frame 2i of the other."""
    scene = SceneSpec((obj,), "white")
    return pixels(render(scene, 64, 16, 8.0)), pixels(render(scene, 64, 32, 16.0))


def test_a_translation_is_found_and_interpolated_better_than_blending() -> None:
    low, high = clip_at_two_rates(ObjectSpec("square", "red", "large", "right", "quickly", 0.3))
    prev, nxt, half = low[4:5], low[5:6], torch.tensor([0.5])
    flow = bilateral_flow(prev, nxt, half)
    # on the square's left and right edges, where the two frames differ, the motion is the
    # world's: 0.035 frame sides per 8 fps frame, 2.24 px at 64×64
    edges = (prev - nxt).abs().amax(dim=1)[0] > 0.1
    assert edges.sum() > 20
    dx, dy = flow[0, 0][edges], flow[0, 1][edges]
    assert (dx - 0.035 * 64).abs().median() < 0.2 and dy.abs().median() < 0.2
    mid = interpolate(prev, nxt, half, flow)
    blend = (prev + nxt) / 2
    truth = high[9:10]
    assert mse(mid, truth) < 0.2 * mse(blend, truth)


def test_past_the_last_frame_it_extrapolates_the_motion() -> None:
    obj = ObjectSpec("circle", "blue", "large", "down", "quickly", 0.5, 0.2)
    low, high = clip_at_two_rates(obj)
    prev, nxt, beyond = low[14:15], low[15:16], torch.tensor([1.5])
    flow = bilateral_flow(prev, nxt, beyond)
    ahead = interpolate(prev, nxt, beyond, flow)
    linear = 1.5 * nxt - 0.5 * prev  # extrapolating the intensities instead
    truth = high[31:32]
    assert mse(ahead, truth) < 0.5 * mse(linear.clamp(-1, 1), truth)


def test_what_does_not_move_keeps_the_blend_exactly() -> None:
    low, _ = clip_at_two_rates(ObjectSpec("star", "green", "large", "still"))
    half = torch.tensor([0.5])
    flow = bilateral_flow(low[3:4], low[4:5], half)
    assert not flow.any()
    assert torch.equal(interpolate(low[3:4], low[4:5], half, flow), low[3:4])
    p, n = aligned(low[3:4], low[4:5], half, flow)
    assert torch.equal(p, low[3:4]) and torch.equal(n, low[4:5])
    # where a moving clip's pixels keep zero motion, they keep the blend exactly
    low, _ = clip_at_two_rates(ObjectSpec("circle", "red", "large", "left", "slowly"))
    flow = bilateral_flow(low[3:4], low[4:5], half)
    mid = interpolate(low[3:4], low[4:5], half, flow)
    still = (flow == 0).all(dim=1, keepdim=True).expand_as(mid)
    assert still.any() and not still.all()
    assert torch.equal(mid[still], ((low[3:4] + low[4:5]) * 0.5)[still])
    moved = flow.norm(dim=1)
    assert moved[moved > 0].min() >= MIN_MOTION


def test_frames_are_independent_of_their_batch() -> None:
    """Each image's motion is its own: a batch gives what each frame gives alone."""
    low, _ = clip_at_two_rates(ObjectSpec("triangle", "purple", "large", "up", "quickly", 0.5, 0.7))
    prev, nxt = low[2:5], low[3:6]
    weight = torch.tensor([0.5, 0.5, 1.5])
    together = bilateral_flow(prev, nxt, weight)
    for i in range(3):
        alone = bilateral_flow(prev[i : i + 1], nxt[i : i + 1], weight[i : i + 1])
        assert torch.equal(together[i : i + 1], alone)
