"""Where an object is, how big and how turned, at every frame.

The renderer draws these states and the sampler uses them to keep objects inside the frame
and apart, so both read the motion rules from this one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .spec import (
    BASE_FRAMES,
    GROW_FACTOR,
    MIN_RADIUS,
    ROTATION_DEG_PER_FRAME,
    SHRINK_FACTOR,
    ObjectSpec,
    growth_per_frame,
)


@dataclass(frozen=True)
class ObjectStates:
    """Per-frame state arrays of one object, each shaped (F,).

    Centres are unwrapped (they may leave 0..1; the renderer wraps translating objects).
    """

    cx: np.ndarray
    cy: np.ndarray
    radius: np.ndarray
    angle_deg: np.ndarray


def radius_factor(obj: ObjectSpec, t: np.ndarray) -> np.ndarray:
    """Radius relative to the start radius at frame indices ``t``.

    Linear over the 16-frame span (frame 15 is exactly x1.8 or x0.55). Past that span the
    same rate continues, but a growing object stops once it touches the nearest frame edge
    (or at x1.8 if it already does) and a shrinking one stops at MIN_RADIUS (or at x0.55
    if it is already smaller), so long clips stay drawable.
    """
    t = np.asarray(t, dtype=np.float64)
    factor = 1.0 + growth_per_frame(obj.motion) * t
    if obj.motion == "growing":
        edge = min(obj.start_x, 1.0 - obj.start_x, obj.start_y, 1.0 - obj.start_y)
        cap = max(edge / obj.radius, GROW_FACTOR)
        factor = np.minimum(factor, cap)
    elif obj.motion == "shrinking":
        floor = min(MIN_RADIUS / obj.radius, SHRINK_FACTOR)
        factor = np.maximum(factor, floor)
    return factor


def object_states(
    obj: ObjectSpec,
    num_frames: int = BASE_FRAMES,
    time_step: float = 1.0,
    frames: Sequence[int] | None = None,
) -> ObjectStates:
    """Centre, circumradius and rotation of ``obj`` for frames 0..num_frames-1 (or for the
    frame indices ``frames`` only).

    Frame ``i`` shows the state at base-clock time ``i * time_step`` (in frames of the 8 fps
    base clip): ``time_step=0.5`` draws the same motion at 16 fps, half as far per frame.
    """
    index = np.arange(num_frames) if frames is None else np.asarray(frames)
    t = index.astype(np.float64) * float(time_step)  # exact for time_step 1
    vx, vy = obj.velocity
    rotation = ROTATION_DEG_PER_FRAME if obj.motion == "rotating" else 0.0
    return ObjectStates(
        cx=obj.start_x + vx * t,
        cy=obj.start_y + vy * t,
        radius=obj.radius * radius_factor(obj, t),
        angle_deg=obj.angle0 + rotation * t,
    )
