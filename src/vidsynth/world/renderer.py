"""Draw shapes-world clips as uint8 RGB frames.

Each shape is an exact signed distance field of a unit-circumradius outline; coverage of a
pixel is its signed distance (in pixels) pushed through a 1-pixel linear ramp, which gives
anti-aliased edges at any resolution without supersampling. Only a square box around each
object is evaluated per frame, vectorised over all frames at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .sampling import sample_scene
from .spec import (
    BACKGROUNDS,
    BASE_FPS,
    BASE_FRAMES,
    PALETTE,
    STAR_INNER_RATIO,
    STAR_POINTS,
    ObjectSpec,
    SceneSpec,
    is_translation,
)
from .trajectory import object_states


def _regular_vertices(angles_deg: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """(N, 2) vertices at the given angles (0 deg = pointing up, clockwise on screen)."""
    a = np.deg2rad(angles_deg)
    # x right, y down: "up" is (0, -1).
    return np.stack([radii * np.sin(a), -radii * np.cos(a)], axis=1)


def _unit_polygons() -> dict[str, np.ndarray]:
    star_angles = np.arange(2 * STAR_POINTS) * (180.0 / STAR_POINTS)
    star_radii = np.where(np.arange(2 * STAR_POINTS) % 2 == 0, 1.0, STAR_INNER_RATIO)
    return {
        "triangle": _regular_vertices(np.array([0.0, 120.0, 240.0]), np.ones(3)),
        # axis-aligned at angle 0: corners on the diagonals, half-diagonal = circumradius 1
        "square": _regular_vertices(np.array([45.0, 135.0, 225.0, 315.0]), np.ones(4)),
        "star": _regular_vertices(star_angles, star_radii),
    }


UNIT_POLYGONS: dict[str, np.ndarray] = _unit_polygons()


def _polygon_sdf(qx: np.ndarray, qy: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Exact signed distance to a closed polygon (negative inside), even-odd inside test."""
    d2 = np.full(qx.shape, np.inf, dtype=np.float32)
    inside = np.zeros(qx.shape, dtype=bool)
    n = len(verts)
    for i in range(n):
        ax, ay = verts[i]
        bx, by = verts[(i + 1) % n]
        ex, ey = bx - ax, by - ay
        wx, wy = qx - ax, qy - ay
        h = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        dx, dy = wx - ex * h, wy - ey * h
        np.minimum(d2, dx * dx + dy * dy, out=d2)
        # crossing test of a horizontal ray towards +x against this edge
        crosses = (ay > qy) != (by > qy)
        x_at = ax + (qy - ay) * ex / (ey if ey != 0 else 1.0)
        inside ^= crosses & (qx < x_at)
    dist = np.sqrt(d2)
    return np.where(inside, -dist, dist)


def _unit_sdf(shape: str, qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
    """Signed distance to the unit-circumradius shape, in circumradius units."""
    if shape == "circle":
        return np.sqrt(qx * qx + qy * qy) - 1.0
    return _polygon_sdf(qx, qy, UNIT_POLYGONS[shape])


def object_coverage(
    obj: ObjectSpec,
    size: int = 64,
    num_frames: int = BASE_FRAMES,
    time_step: float = 1.0,
    frames: Sequence[int] | None = None,
) -> np.ndarray:
    """Anti-aliased coverage (0..1) of one object, float32 shaped (F, size, size).

    Translating objects wrap around the frame (drawn at +-1 frame offsets as needed); the
    others are clipped at the frame edge. ``time_step``: see ``trajectory.object_states``;
    ``frames``: draw only these frame indices (F = len(frames)).
    """
    st = object_states(obj, num_frames, time_step, frames)
    num_frames = len(st.cx)
    wrap = is_translation(obj.motion)
    cx = np.mod(st.cx, 1.0) if wrap else st.cx
    cy = np.mod(st.cy, 1.0) if wrap else st.cy
    # One box size for all frames so the whole clip evaluates as one (F, B, B) array;
    # 2 extra pixels each side cover the anti-aliasing ramp and rounding.
    box = min(size, math.ceil(2.0 * float(st.radius.max()) * size) + 4)
    x0 = np.floor(cx * size).astype(np.int64) - box // 2
    y0 = np.floor(cy * size).astype(np.int64) - box // 2
    if not wrap:
        # Keep the box inside the frame; it still contains every visible pixel of the object.
        x0 = np.clip(x0, 0, size - box)
        y0 = np.clip(y0, 0, size - box)
    offs = np.arange(box)
    cols = x0[:, None] + offs[None, :]  # (F, B) unwrapped pixel indices
    rows = y0[:, None] + offs[None, :]

    # Pixel centres relative to the object centre, in frame sides.
    px = ((cols + 0.5) / size - cx[:, None]).astype(np.float32)[:, None, :]  # (F, 1, B)
    py = ((rows + 0.5) / size - cy[:, None]).astype(np.float32)[:, :, None]  # (F, B, 1)
    # Rotate into the object's own frame (clockwise angle on screen) and scale to unit size.
    theta = np.deg2rad(st.angle_deg)
    cos_t = np.cos(theta).astype(np.float32)[:, None, None]
    sin_t = np.sin(theta).astype(np.float32)[:, None, None]
    inv_r = (1.0 / st.radius).astype(np.float32)[:, None, None]
    qx = (cos_t * px + sin_t * py) * inv_r
    qy = (-sin_t * px + cos_t * py) * inv_r
    sdf_px = _unit_sdf(obj.shape, qx, qy) * (st.radius * size).astype(np.float32)[:, None, None]
    cov = np.clip(0.5 - sdf_px, 0.0, 1.0)

    out = np.zeros((num_frames, size, size), dtype=np.float32)
    f_idx = np.arange(num_frames)[:, None, None]
    # Indices stay unique within a frame because box <= size, so plain assignment is exact.
    out[f_idx, (rows % size)[:, :, None], (cols % size)[:, None, :]] = cov
    return out


def render(
    scene: SceneSpec,
    size: int = 64,
    num_frames: int = BASE_FRAMES,
    fps: float = BASE_FPS,
    frames: Sequence[int] | None = None,
) -> np.ndarray:
    """Render ``scene`` as uint8 frames shaped (num_frames, size, size, 3).

    ``fps`` is the frame rate the clip is drawn at: motion is defined per frame of the 8 fps
    base clip, so 32 frames at 16 fps show the same 2 seconds as 16 frames at 8 fps, and
    their even frames are exactly those 16 frames. ``frames`` draws only those frame indices
    of the clip (exactly as the whole clip has them), shaped (len(frames), size, size, 3).
    """
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    time_step = BASE_FPS / fps
    bg = np.asarray(BACKGROUNDS[scene.background], dtype=np.float32)
    count = num_frames if frames is None else len(frames)
    out = np.broadcast_to(bg, (count, size, size, 3)).copy()
    for obj in scene.objects:
        alpha = object_coverage(obj, size, num_frames, time_step, frames)[..., None]
        colour = np.asarray(PALETTE[obj.colour], dtype=np.float32)
        # "over" compositing; objects of sampled scenes never overlap, later ones win if
        # a hand-built scene makes them.
        out += alpha * (colour - out)
    return np.rint(out).astype(np.uint8)


def render_clip(
    seed: int,
    level: int = 1,
    size: int = 64,
    num_frames: int = BASE_FRAMES,
    fps: float = BASE_FPS,
) -> tuple[np.ndarray, SceneSpec]:
    """Sample a scene with ``numpy.random.default_rng(seed)`` and render it."""
    scene = sample_scene(np.random.default_rng(seed), level)
    return render(scene, size, num_frames, fps), scene
