"""Random shapes-world scenes that keep every rule of the contract."""

from __future__ import annotations

import numpy as np

from .spec import (
    BACKGROUNDS,
    BASE_FRAMES,
    COLOURS,
    DEFAULT_SIZE,
    DEFAULT_SPEED,
    MOTIONS,
    SHAPES,
    SIZES,
    SPEEDS,
    ObjectSpec,
    SceneSpec,
    is_translation,
)
from .target import ObjectTarget, SceneTarget
from .trajectory import object_states

# Clearance kept between an object's circumcircle and the frame edge (frame sides): 1.3
# pixels at 64x64, so not even the anti-aliasing ramp reaches the outermost pixels.
EDGE_MARGIN = 0.02
# Clearance between the circumcircles of two objects. Two pixels at 64x64 keep them apart
# for the judge even after H.264 blurs the edges.
OBJECT_GAP = 0.03
POSITION_TRIES = 50
COMBO_TRIES = 1000


def _sample_attributes(rng: np.random.Generator, background: str, used: set[str]) -> ObjectSpec:
    """Draw shape, colour, size and motion of one object (position left at the centre)."""
    shape = SHAPES[rng.integers(len(SHAPES))]
    motions = [m for m in MOTIONS if not (shape == "circle" and m == "rotating")]
    motion = motions[rng.integers(len(motions))]
    speeds = tuple(SPEEDS)
    speed = speeds[rng.integers(len(speeds))] if is_translation(motion) else DEFAULT_SPEED
    colours = [c for c in COLOURS if c not in used and not (c == "white" and background == "white")]
    colour = colours[rng.integers(len(colours))]
    sizes = tuple(SIZES)
    size = sizes[rng.integers(len(sizes))]
    return ObjectSpec(shape=shape, colour=colour, size=size, motion=motion, speed=speed)


def start_range(obj: ObjectSpec) -> tuple[float, float, float, float] | None:
    """(x_lo, x_hi, y_lo, y_hi) of start centres keeping the object inside for 16 frames;
    None if there are none. A translating object starts on the side it moves away from."""
    st = object_states(obj, BASE_FRAMES)
    reach = float(st.radius.max()) + EDGE_MARGIN
    dx = float(st.cx[-1] - st.cx[0])
    dy = float(st.cy[-1] - st.cy[0])
    x_lo, x_hi = reach - min(0.0, dx), 1.0 - reach - max(0.0, dx)
    y_lo, y_hi = reach - min(0.0, dy), 1.0 - reach - max(0.0, dy)
    if x_lo > x_hi or y_lo > y_hi:
        return None
    return x_lo, x_hi, y_lo, y_hi


def _place(rng: np.random.Generator, obj: ObjectSpec) -> ObjectSpec | None:
    box = start_range(obj)
    if box is None:
        return None
    x_lo, x_hi, y_lo, y_hi = box
    return ObjectSpec(
        shape=obj.shape,
        colour=obj.colour,
        size=obj.size,
        motion=obj.motion,
        speed=obj.speed,
        start_x=float(rng.uniform(x_lo, x_hi)),
        start_y=float(rng.uniform(y_lo, y_hi)),
        angle0=obj.angle0,
    )


def objects_apart(objects: tuple[ObjectSpec, ...], num_frames: int = BASE_FRAMES) -> bool:
    """True if the circumcircles of all objects stay OBJECT_GAP apart in every frame."""
    states = [object_states(o, num_frames) for o in objects]
    for i in range(len(states)):
        for j in range(i + 1, len(states)):
            a, b = states[i], states[j]
            dist = np.hypot(a.cx - b.cx, a.cy - b.cy)
            if np.any(dist < a.radius + b.radius + OBJECT_GAP):
                return False
    return True


def _place_apart(
    rng: np.random.Generator, objects: list[ObjectSpec]
) -> tuple[ObjectSpec, ...] | None:
    """Start positions for `objects` that keep them apart for the whole clip, within
    POSITION_TRIES placements; None if there is no room."""
    for _ in range(POSITION_TRIES):
        placed = [_place(rng, o) for o in objects]
        if any(p is None for p in placed):
            return None
        scene = tuple(p for p in placed if p is not None)
        if objects_apart(scene):
            return scene
    return None


def sample_scene(rng: np.random.Generator, level: int = 1) -> SceneSpec:
    """Draw a random scene with ``level`` objects (1 or 2).

    Start positions keep each whole object inside the frame for 16 frames; two objects are
    re-placed until they stay apart for the whole clip, and an attribute combination with
    no room for that after POSITION_TRIES placements is dropped and redrawn.
    """
    if level not in (1, 2):
        raise ValueError(f"level must be 1 or 2, got {level}")
    backgrounds = tuple(BACKGROUNDS)
    background = backgrounds[rng.integers(len(backgrounds))]
    for _ in range(COMBO_TRIES):
        used: set[str] = set()
        combo = []
        for _ in range(level):
            obj = _sample_attributes(rng, background, used)
            used.add(obj.colour)
            combo.append(obj)
        objects = _place_apart(rng, combo)
        if objects is not None:
            return SceneSpec(objects=objects, background=background)
    raise RuntimeError("could not place the objects; the world constants leave no room")


def object_spec(target: ObjectTarget) -> ObjectSpec:
    """The object a caption's `target` names, at the centre (unnamed size and speed take
    their defaults)."""
    return ObjectSpec(
        shape=target.shape,
        colour=target.colour,
        size=target.size or DEFAULT_SIZE,
        motion=target.motion,
        speed=target.speed or DEFAULT_SPEED,
    )


def place_target(rng: np.random.Generator, target: SceneTarget) -> SceneSpec:
    """A random scene that shows `target`: its objects at start positions drawn as for
    training scenes (unnamed sizes and speeds take their defaults)."""
    objects = [object_spec(o) for o in target.objects]
    placed = _place_apart(rng, objects)
    if placed is not None:
        return SceneSpec(objects=placed, background=target.background)
    raise ValueError(f"the world has no room for {target}")
