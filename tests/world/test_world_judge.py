"""The judge: validity on the renderer's own clips (docs/world.md) and rejection of wrong
targets. Run with ``-s`` to see the accuracy and confusion figures."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from vidsynth.world import (
    ATTRIBUTES,
    CORE_ATTRIBUTES,
    JudgeResult,
    ObjectSpec,
    SceneSpec,
    SceneTarget,
    confusion,
    describe,
    detect,
    judge,
    parse_caption,
    render,
    render_clip,
    score,
)


def h264_round_trip(frames: np.ndarray, crf: int = 23, fps: int = 8) -> np.ndarray:
    """Encode uint8 RGB frames with libx264 (yuv420p) into memory and decode them again."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in frames:
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buf.seek(0)
    with av.open(buf, mode="r") as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack(decoded)


def _validity(n: int, size: int, codec: bool, first_seed: int) -> list[JudgeResult]:
    results = []
    for seed in range(first_seed, first_seed + n):
        frames, scene = render_clip(seed, level=1 + seed % 2, size=size)
        if codec:
            frames = h264_round_trip(frames)
        results.append(judge(frames, SceneTarget.from_scene(scene)))
    return results


def _report(results: list[JudgeResult], label: str) -> dict[str, float]:
    acc = score(results)
    print(f"\n{label}: " + ", ".join(f"{k} {v:.4f}" for k, v in acc.items()))
    for attribute in ("colour", "shape", "motion", "size", "speed"):
        wrong = {k: v for k, v in confusion(results, attribute).items() if k[0] != k[1]}
        print(f"  {attribute} confusions (target, detected): {wrong or 'none'}")
    for r in results:
        if not r.strict_correct:
            print(describe(r))
    return acc


def test_judge_quick_validity_64() -> None:
    # the fast subset of the next test, for runs that skip slow tests
    results = _validity(60, size=64, codec=False, first_seed=40_000)
    assert all(r.strict_correct for r in results), [describe(r) for r in results]


@pytest.mark.slow
def test_judge_validity_64() -> None:
    results = _validity(300, size=64, codec=False, first_seed=10_000)
    assert sum(len(r.objects) for r in results) == 450  # levels 1 and 2 mixed
    acc = _report(results, "judge on 300 renderer clips at 64x64")
    for attribute in ATTRIBUTES:
        assert acc[attribute] >= 0.99, attribute


@pytest.mark.slow
def test_judge_validity_256_after_h264() -> None:
    results = _validity(100, size=256, codec=True, first_seed=20_000)
    acc = _report(results, "judge on 100 renderer clips at 256x256 after H.264 (crf 23)")
    for attribute in ATTRIBUTES:
        assert acc[attribute] >= 0.99, attribute


def test_h264_helper_round_trips() -> None:
    frames, _ = render_clip(1, size=64)
    decoded = h264_round_trip(frames)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - frames).mean() < 5


def test_judge_rejects_wrong_targets() -> None:
    obj = ObjectSpec("circle", "red", "medium", "right", start_x=0.3, start_y=0.5)
    frames = render(SceneSpec((obj,), "black"), size=64)
    right = judge(frames, parse_caption("a red circle moving right"))
    assert right.all_correct and right.strict_correct
    wrong = judge(frames, parse_caption("a blue square moving left on a white background"))
    checks = wrong.objects[0].checks
    assert not checks["colour"] and not checks["shape"] and not checks["motion"]
    assert wrong.checks["background"] == [False]
    assert not wrong.all_correct
    # what was seen is still reported, for debugging
    seen = wrong.objects[0].detected
    assert seen is not None
    assert (seen.colour, seen.shape, seen.motion) == ("red", "circle", "right")
    assert "wrong" in describe(wrong)

    for caption, failing in [
        ("a red circle moving left", "motion"),
        ("a red circle growing", "motion"),
        ("a red star moving right", "shape"),
        ("a large red circle moving right", "size"),
        ("a red circle moving right quickly", "speed"),
        ("an orange circle moving right", "colour"),
    ]:
        result = judge(frames, parse_caption(caption))
        bad = {k for k, v in result.objects[0].checks.items() if not v}
        assert bad == {failing}, caption

    # an extra object in the target is missing from the video
    two = judge(frames, parse_caption("a red circle moving right and a green star rotating"))
    assert two.checks["count"] == [False]
    assert two.objects[1].detected is None and not any(two.objects[1].checks.values())


def test_each_motion_and_shape_is_told_apart() -> None:
    # one clean clip per (shape, motion) on each background: the judge names it exactly
    for background in ("black", "white", "gray"):
        for shape in ("circle", "square", "triangle", "star"):
            for motion in (
                "left",
                "right",
                "up",
                "down",
                "still",
                "growing",
                "shrinking",
                "rotating",
            ):
                if shape == "circle" and motion == "rotating":
                    continue
                x = {"left": 0.75, "right": 0.25}.get(motion, 0.5)
                y = {"up": 0.75, "down": 0.25}.get(motion, 0.5)
                obj = ObjectSpec(shape, "purple", "medium", motion, start_x=x, start_y=y)
                frames = render(SceneSpec((obj,), background), size=64)
                result = judge(frames, SceneTarget.from_scene(SceneSpec((obj,), background)))
                assert result.strict_correct, describe(result)


def test_the_judge_finds_where_an_object_starts() -> None:
    # features x0, y0: the centre at frame 0 (on the fitted path), in frame sides
    for seed in range(6):
        frames, scene = render_clip(seed, level=1)
        (obj,) = detect(frames)[1]
        start = scene.objects[0]
        assert abs(obj.features["x0"] - start.start_x) < 0.01, (seed, obj.features)
        assert abs(obj.features["y0"] - start.start_y) < 0.01, (seed, obj.features)


def test_two_objects_are_matched_by_colour_in_any_order() -> None:
    frames, scene = render_clip(5, level=2)
    target = SceneTarget.from_scene(scene)
    flipped = SceneTarget(target.objects[::-1], target.background)
    a, b = judge(frames, target), judge(frames, flipped)
    assert a.strict_correct and b.strict_correct
    assert [j.detected for j in a.objects] == [j.detected for j in b.objects][::-1]


def test_long_clips_with_wrap_around() -> None:
    for seed in range(40):
        frames, scene = render_clip(30_000 + seed, level=1, size=64, num_frames=48)
        result = judge(frames, SceneTarget.from_scene(scene))
        assert result.strict_correct, describe(result)


def test_background_only_and_bad_input() -> None:
    empty = np.full((8, 64, 64, 3), 128, dtype=np.uint8)
    background, objects = detect(empty)
    assert background == "gray" and objects == ()
    result = judge(empty, parse_caption("a red circle growing on a gray background"))
    assert result.checks["background"] == [True]
    assert not result.objects[0].checks["colour"] and not result.all_correct
    with pytest.raises(ValueError):
        judge(empty.astype(np.float32), parse_caption("a red circle growing"))
    with pytest.raises(ValueError):
        judge(empty[0], parse_caption("a red circle growing"))


def test_score_pools_verdicts() -> None:
    good, scene = render_clip(2, level=2)
    target = SceneTarget.from_scene(scene)
    ok = judge(good, target)
    wrong_bg = SceneTarget(target.objects, "white" if target.background != "white" else "black")
    bad = judge(good, wrong_bg)
    acc = score([ok, bad])
    assert acc["colour"] == 1.0 and acc["background"] == 0.5
    assert acc["all_correct"] == 0.5
    assert set(CORE_ATTRIBUTES) <= set(acc)
    assert ok.accuracy["shape"] == 1.0 and bad.accuracy["background"] == 0.0
