"""The shapes-world vocabulary as data (docs/world.md is the contract).

Everything the renderer, the caption writers, the parser and the judge must agree on lives
here: the palette, the backgrounds, the shapes, the sizes, the motions and their constants,
and the frozen dataclasses describing one clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RGB = tuple[int, int, int]

# Object colours. Gray is deliberately absent: it is a background colour only.
PALETTE: dict[str, RGB] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 90, 230),
    "yellow": (240, 210, 40),
    "purple": (150, 60, 200),
    "orange": (245, 140, 30),
    "cyan": (40, 200, 210),
    "white": (245, 245, 245),
}
COLOURS: tuple[str, ...] = tuple(PALETTE)

BACKGROUNDS: dict[str, RGB] = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
}
# A caption that names no background means this one.
DEFAULT_BACKGROUND = "black"

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")

# Circumradius in frame sides. "medium" is the unnamed default size: captions never say it.
SIZES: dict[str, float] = {"small": 0.09, "medium": 0.14, "large": 0.20}
DEFAULT_SIZE = "medium"

DIRECTIONS: dict[str, tuple[int, int]] = {
    # unit step in (x, y), y grows downwards
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
}
TRANSLATIONS: tuple[str, ...] = tuple(DIRECTIONS)
MOTIONS: tuple[str, ...] = (*TRANSLATIONS, "still", "growing", "shrinking", "rotating")

# Frame sides per frame. "normal" is the unnamed default speed: captions never say it.
SPEEDS: dict[str, float] = {"slowly": 0.01, "normal": 0.02, "quickly": 0.035}
DEFAULT_SPEED = "normal"

# Growth and shrinkage are defined over the 16-frame base clip: frame 15 has radius r0*1.8
# (or r0*0.55). Longer clips keep the same linear rate per frame (see renderer.radius_at).
BASE_FRAMES = 16
# The base clip's frame rate: motion constants are per frame at this rate. A clip rendered at
# another rate samples the same motion at a time step of BASE_FPS / fps base frames.
BASE_FPS = 8.0
GROW_FACTOR = 1.8
SHRINK_FACTOR = 0.55
# Past the 16-frame span the same linear rate goes on, but a shrinking object stops at this
# circumradius (just under small x 0.55, so it never binds within 16 frames) to stay
# visible at 64x64, and a growing one stops when it touches the nearest frame edge.
MIN_RADIUS = 0.045
ROTATION_DEG_PER_FRAME = 15.0
STAR_INNER_RATIO = 0.4
STAR_POINTS = 5

# Area of each unit-circumradius shape; the judge turns a measured area into a radius with it.
UNIT_AREA: dict[str, float] = {
    "circle": math.pi,
    "square": 2.0,
    "triangle": 3.0 * math.sqrt(3.0) / 4.0,
    "star": STAR_POINTS * STAR_INNER_RATIO * math.sin(2.0 * math.pi / (2 * STAR_POINTS)),
}


def is_translation(motion: str) -> bool:
    """True for the four constant-velocity motions."""
    return motion in DIRECTIONS


def growth_per_frame(motion: str) -> float:
    """Linear change of the radius factor per frame (0 for motions that keep the size)."""
    if motion == "growing":
        return (GROW_FACTOR - 1.0) / (BASE_FRAMES - 1)
    if motion == "shrinking":
        return (SHRINK_FACTOR - 1.0) / (BASE_FRAMES - 1)
    return 0.0


@dataclass(frozen=True)
class ObjectSpec:
    """One object of a clip; positions are the centre at frame 0 in frame sides."""

    shape: str
    colour: str
    size: str = DEFAULT_SIZE
    motion: str = "still"
    speed: str = DEFAULT_SPEED
    start_x: float = 0.5
    start_y: float = 0.5
    angle0: float = 0.0  # degrees, clockwise on screen

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; expected one of {SHAPES}")
        if self.colour not in PALETTE:
            raise ValueError(f"unknown colour {self.colour!r}; expected one of {COLOURS}")
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; expected one of {tuple(SIZES)}")
        if self.motion not in MOTIONS:
            raise ValueError(f"unknown motion {self.motion!r}; expected one of {MOTIONS}")
        if self.speed not in SPEEDS:
            raise ValueError(f"unknown speed {self.speed!r}; expected one of {tuple(SPEEDS)}")
        if self.shape == "circle" and self.motion == "rotating":
            raise ValueError("a rotating circle is invisible; the world never draws one")

    @property
    def radius(self) -> float:
        """Circumradius at frame 0, in frame sides."""
        return SIZES[self.size]

    @property
    def velocity(self) -> tuple[float, float]:
        """(vx, vy) in frame sides per frame; zero unless the object translates."""
        if not is_translation(self.motion):
            return (0.0, 0.0)
        dx, dy = DIRECTIONS[self.motion]
        v = SPEEDS[self.speed]
        return (dx * v, dy * v)


@dataclass(frozen=True)
class SceneSpec:
    """A whole clip: one or two objects on a flat background."""

    objects: tuple[ObjectSpec, ...]
    background: str = DEFAULT_BACKGROUND

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise ValueError(
                f"unknown background {self.background!r}; expected one of {tuple(BACKGROUNDS)}"
            )
        if not self.objects:
            raise ValueError("a scene needs at least one object")

    @property
    def level(self) -> int:
        """Number of objects (1 or 2 in the world's clips)."""
        return len(self.objects)


def check_rules(scene: SceneSpec) -> None:
    """Raise ValueError if the scene breaks a world rule the sampler always keeps.

    Per-object rules (no rotating circle, known vocabulary) are checked on construction;
    these are the rules that involve the whole scene.
    """
    for obj in scene.objects:
        if obj.colour == "white" and scene.background == "white":
            raise ValueError("white objects never appear on a white background")
    colours = [o.colour for o in scene.objects]
    if len(set(colours)) != len(colours):
        raise ValueError(f"objects of one clip must have different colours, got {colours}")
