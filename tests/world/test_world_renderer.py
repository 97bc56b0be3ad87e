"""Renderer and scene sampler of the shapes world (docs/world.md)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from vidsynth.world import (
    BACKGROUNDS,
    PALETTE,
    SHAPES,
    SIZES,
    SPEEDS,
    ObjectSpec,
    SceneSpec,
    object_coverage,
    render,
    render_clip,
    sample_scene,
)
from vidsynth.world.sampling import OBJECT_GAP
from vidsynth.world.spec import DIRECTIONS, UNIT_AREA, check_rules
from vidsynth.world.trajectory import object_states


def _scenes(n: int, seed: int = 0) -> list[SceneSpec]:
    rng = np.random.default_rng(seed)
    return [sample_scene(rng, 1 + i % 2) for i in range(n)]


def test_render_clip_is_deterministic_per_seed() -> None:
    a, scene_a = render_clip(7, level=2)
    b, scene_b = render_clip(7, level=2)
    c, scene_c = render_clip(8, level=2)
    assert scene_a == scene_b
    np.testing.assert_array_equal(a, b)
    assert scene_c != scene_a
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("size", [16, 32, 64, 100, 256])
@pytest.mark.parametrize("num_frames", [1, 16, 40])
def test_any_resolution_and_frame_count(size: int, num_frames: int) -> None:
    frames, _ = render_clip(3, level=2, size=size, num_frames=num_frames)
    assert frames.shape == (num_frames, size, size, 3)
    assert frames.dtype == np.uint8


def test_same_clip_at_two_resolutions_agrees() -> None:
    # geometry is in frame sides: the 256 render box-downsampled is close to the 64 render
    small, scene = render_clip(11, level=2, size=64)
    big = render(scene, size=256)
    down = big.reshape(16, 64, 4, 64, 4, 3).astype(np.float64).mean(axis=(2, 4))
    assert np.abs(down - small).mean() < 1.5


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("angle", [0.0, 23.0])
def test_area_matches_the_analytic_shape(shape: str, size: str, angle: float) -> None:
    obj = ObjectSpec(shape, "red", size, start_x=0.43, start_y=0.57, angle0=angle)
    cov = object_coverage(obj, size=256, num_frames=1)[0]
    expected = UNIT_AREA[shape] * SIZES[size] ** 2 * 256**2
    assert cov.sum() == pytest.approx(expected, rel=0.02)
    # the rendered pixels say the same: alpha recovered from colour over black
    frames = render(SceneSpec((obj,), "black"), size=256, num_frames=1)
    alpha = frames[0, :, :, 0].astype(np.float64) / PALETTE["red"][0]
    assert alpha.sum() == pytest.approx(expected, rel=0.02)


def test_shape_outlines() -> None:
    # circumradius r: the square's half-diagonal, the triangle's and star's tips
    s = 256
    for shape in SHAPES:
        cov = object_coverage(ObjectSpec(shape, "red", "large"), size=s, num_frames=1)[0]
        ys, xs = np.nonzero(cov > 0.5)
        top = (ys.min() + 0.5) / s
        if shape == "square":
            # axis-aligned at angle 0: half side = r / sqrt(2)
            assert 0.5 - top == pytest.approx(0.2 / math.sqrt(2), abs=2 / s)
            assert (xs.max() - xs.min() + 1) / s == pytest.approx(0.4 / math.sqrt(2), abs=2 / s)
        else:
            # circle, triangle and star all reach the circumradius straight up
            assert 0.5 - top == pytest.approx(0.2, abs=2 / s)
        if shape == "triangle":
            # point up: the top row is narrow, the bottom row is wide, bottom at r / 2
            assert (ys.max() + 0.5) / s - 0.5 == pytest.approx(0.1, abs=2 / s)
    star = object_coverage(ObjectSpec("star", "red", "large"), size=s, num_frames=1)[0]
    # the notch between two points lies on the inner radius 0.4 r (at 36 degrees)
    a = math.radians(36.0)
    inner = 0.4 * 0.2
    just_in = (0.5 + 0.9 * inner * math.sin(a), 0.5 - 0.9 * inner * math.cos(a))
    just_out = (0.5 + 1.15 * inner * math.sin(a), 0.5 - 1.15 * inner * math.cos(a))
    assert star[int(just_in[1] * s), int(just_in[0] * s)] == 1.0
    assert star[int(just_out[1] * s), int(just_out[0] * s)] == 0.0


def test_colours_exact_inside_background_exact_outside_edges_antialiased() -> None:
    for scene in _scenes(40, seed=1):
        frames = render(scene, size=64)
        cover = np.stack([object_coverage(o, 64) for o in scene.objects])  # (n, F, S, S)
        for obj, cov in zip(scene.objects, cover, strict=True):
            inside = frames[cov == 1.0]
            assert len(inside) > 0
            assert (inside == PALETTE[obj.colour]).all()
        outside = frames[cover.sum(axis=0) == 0.0]
        assert (outside == BACKGROUNDS[scene.background]).all()
        edge = (cover > 0) & (cover < 1)
        assert edge.any()
        # anti-aliased: edge pixels sit strictly between background and object colour
        colour = np.array(PALETTE[scene.objects[0].colour])
        bg = np.array(BACKGROUNDS[scene.background])
        mid = frames[(cover[0] > 0.3) & (cover[0] < 0.7)]
        if len(mid):
            assert not (mid == colour).all(axis=-1).any()
            assert not (mid == bg).all(axis=-1).any()


def test_objects_stay_inside_the_frame_for_16_frames() -> None:
    for scene in _scenes(300, seed=2):
        for obj in scene.objects:
            st = object_states(obj, 16)
            assert (st.cx - st.radius >= 0).all() and (st.cx + st.radius <= 1).all()
            assert (st.cy - st.radius >= 0).all() and (st.cy + st.radius <= 1).all()
            cov = object_coverage(obj, 64, 16)
            border = np.concatenate([cov[:, 0], cov[:, -1], cov[:, :, 0], cov[:, :, -1]], axis=1)
            assert border.max() == 0.0
            # the whole area is there in every frame: nothing clipped (the atol allows for
            # the 1-pixel ramp rounding the tips of a star a few pixels across)
            expected = UNIT_AREA[obj.shape] * (st.radius * 64) ** 2
            np.testing.assert_allclose(cov.sum(axis=(1, 2)), expected, rtol=0.03, atol=1.5)


def test_two_objects_never_overlap_in_16_frames() -> None:
    scenes = [s for s in _scenes(400, seed=3) if s.level == 2]
    for scene in scenes:
        a, b = (object_coverage(o, 64, 16) for o in scene.objects)
        assert (a * b).max() == 0.0
        sa, sb = (object_states(o, 16) for o in scene.objects)
        gap = np.hypot(sa.cx - sb.cx, sa.cy - sb.cy) - sa.radius - sb.radius
        assert gap.min() >= OBJECT_GAP - 1e-9


def test_sampled_scenes_keep_the_world_rules() -> None:
    scenes = _scenes(2000, seed=4)
    for scene in scenes:
        check_rules(scene)  # white on white, duplicate colours
        for obj in scene.objects:
            assert not (obj.colour == "white" and scene.background == "white")
            assert not (obj.shape == "circle" and obj.motion == "rotating")
            if obj.motion not in ("left", "right", "up", "down"):
                assert obj.speed == "normal"
    # and the sampler covers the vocabulary
    objs = [o for s in scenes for o in s.objects]
    assert {o.shape for o in objs} == set(SHAPES)
    assert {o.colour for o in objs} == set(PALETTE)
    assert {o.size for o in objs} == set(SIZES)
    assert {o.speed for o in objs} == set(SPEEDS)
    assert {s.background for s in scenes} == set(BACKGROUNDS)
    with pytest.raises(ValueError):
        ObjectSpec("circle", "red", motion="rotating")
    with pytest.raises(ValueError):
        check_rules(SceneSpec((ObjectSpec("square", "white"),), "white"))


@pytest.mark.parametrize("motion", ["left", "right", "up", "down"])
@pytest.mark.parametrize("speed", list(SPEEDS))
def test_translation_velocity(motion: str, speed: str) -> None:
    dx, dy = DIRECTIONS[motion]
    # start so that even the quick object stays inside for 16 frames (no wrap here)
    obj = ObjectSpec("circle", "red", "small", motion, speed, 0.5 - 0.27 * dx, 0.5 - 0.27 * dy)
    cov = object_coverage(obj, 256, 16)
    ys, xs = np.mgrid[0:256, 0:256]
    cx = (cov * (xs + 0.5)).sum(axis=(1, 2)) / cov.sum(axis=(1, 2)) / 256
    cy = (cov * (ys + 0.5)).sum(axis=(1, 2)) / cov.sum(axis=(1, 2)) / 256
    vx, vy = obj.velocity
    np.testing.assert_allclose(np.diff(cx), vx, atol=2e-4)
    np.testing.assert_allclose(np.diff(cy), vy, atol=2e-4)


def test_translating_objects_wrap_around_in_long_clips() -> None:
    obj = ObjectSpec("square", "red", "large", "right", "quickly", start_x=0.5, start_y=0.5)
    cov = object_coverage(obj, 64, 64)
    area = cov.sum(axis=(1, 2))
    # the object never stops and never loses area: it re-enters from the left edge
    np.testing.assert_allclose(area, area[0], rtol=0.02)
    straddling = (cov[:, :, 0] > 0).any(axis=1) & (cov[:, :, -1] > 0).any(axis=1)
    assert straddling.sum() >= 5
    # after 1 / 0.035 frames it has gone once round (close to where it started)
    lap = round(1 / 0.035)
    assert np.abs(cov[lap] - cov[0]).sum() < 0.1 * area[0] * 2
    # every scene keeps rendering for long clips, objects keep their full area
    for scene in _scenes(30, seed=5):
        frames = render(scene, size=64, num_frames=64)
        assert frames.shape == (64, 64, 64, 3)


def test_rotating_growing_shrinking() -> None:
    s = 256
    for shape, period in (("square", 6), ("triangle", 8)):  # 90 / 15 and 120 / 15 frames
        cov = object_coverage(ObjectSpec(shape, "red", "large", "rotating"), s, period + 1)
        np.testing.assert_allclose(cov[period], cov[0], atol=1e-3)
        assert np.abs(cov[period // 2] - cov[0]).sum() > 0.05 * cov[0].sum()
        np.testing.assert_allclose(cov.sum(axis=(1, 2)), cov[0].sum(), rtol=0.01)
    star = object_coverage(ObjectSpec("star", "red", "large", "rotating"), s, 2)
    assert np.abs(star[1] - star[0]).sum() > 0.1 * star[0].sum()

    for motion, factor in (("growing", 1.8), ("shrinking", 0.55)):
        obj = ObjectSpec("circle", "red", "medium", motion)
        cov = object_coverage(obj, s, 16)
        area = cov.sum(axis=(1, 2))
        assert area[15] / area[0] == pytest.approx(factor**2, rel=0.02)
        radius = np.sqrt(area / math.pi)
        # linear in the radius
        np.testing.assert_allclose(np.diff(radius), np.diff(radius).mean(), rtol=0.05)
        # the centre stays put
        xs = np.mgrid[0:s, 0:s][1]
        cx = (cov * (xs + 0.5)).sum(axis=(1, 2)) / area / s
        np.testing.assert_allclose(cx, 0.5, atol=1e-3)

    # past 16 frames the same rate goes on until a limit (frame edge / minimum radius)
    grow = object_states(ObjectSpec("circle", "red", "medium", "growing"), 64).radius
    assert grow[20] > grow[15] and grow.max() <= 0.5 + 1e-9
    shrink = object_states(ObjectSpec("circle", "red", "large", "shrinking"), 64).radius
    assert shrink[20] < shrink[15] and shrink.min() > 0.04

    still = render(SceneSpec((ObjectSpec("star", "blue", "large", "still"),), "gray"), 64, 8)
    assert (still == still[0]).all()


def test_render_is_fast() -> None:
    scenes = _scenes(20, seed=6)
    render(scenes[0])
    t0 = time.perf_counter()
    for scene in scenes:
        render(scene, size=64)
    per_clip_64 = (time.perf_counter() - t0) / len(scenes)
    t0 = time.perf_counter()
    for scene in scenes[:5]:
        render(scene, size=256)
    per_clip_256 = (time.perf_counter() - t0) / 5
    print(f"render 16x64x64: {per_clip_64 * 1e3:.1f} ms, 16x256x256: {per_clip_256 * 1e3:.0f} ms")
    # generous bounds for a loaded CI machine; typical: ~3 ms and ~60 ms
    assert per_clip_64 < 0.05
    assert per_clip_256 < 0.5


def test_frame_rate_samples_the_same_motion_more_densely() -> None:
    """32 frames at 16 fps show the 2 seconds of the 16-frame 8 fps clip: their even frames are
    exactly that clip, and every motion advances half as far per frame."""
    for scene in _scenes(12, seed=9):
        base = render(scene, 64, 16)
        np.testing.assert_array_equal(render(scene, 64, 16, fps=8), base)  # the default
        dense = render(scene, 64, 32, fps=16)
        np.testing.assert_array_equal(dense[::2], base)
    obj = ObjectSpec("circle", "red", "small", "right", "normal", 0.3, 0.5)
    st = object_states(obj, 32, time_step=0.5)
    np.testing.assert_allclose(np.diff(st.cx), obj.velocity[0] / 2)
    grow = object_states(ObjectSpec("square", "red", "medium", "growing"), 32, 0.5).radius
    assert grow[30] == pytest.approx(object_states(ObjectSpec("square", "red"), 1).radius * 1.8)
    with pytest.raises(ValueError, match="fps"):
        render(_scenes(1)[0], 64, 4, fps=0)


def test_drawing_some_frames_gives_exactly_those_frames_of_the_clip() -> None:
    """render(frames=...) (single frames for joint image–video training) is the whole clip's
    frames to the bit: for every motion, wrapping long clips and both frame rates."""
    rng = np.random.default_rng(11)
    for i in range(60):
        scene = sample_scene(rng, level=1 + i % 2)
        num_frames, fps = [(16, 8), (32, 16), (40, 8)][i % 3]
        clip = render(scene, 48, num_frames, fps)
        picks = [int(k) for k in rng.choice(num_frames, size=3, replace=False)]
        assert np.array_equal(render(scene, 48, num_frames, fps, frames=picks), clip[picks])
