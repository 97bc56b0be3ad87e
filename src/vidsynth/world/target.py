"""What a caption asks for: the structured target the parser produces and the judge scores.

A target is a scene spec without positions. ``size`` and ``speed`` may be None, meaning
"not asked for"; the judge then does not check them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import (
    BACKGROUNDS,
    DEFAULT_BACKGROUND,
    MOTIONS,
    PALETTE,
    SHAPES,
    SIZES,
    SPEEDS,
    ObjectSpec,
    SceneSpec,
    is_translation,
)


@dataclass(frozen=True)
class ObjectTarget:
    """Attributes one object of a clip should show."""

    shape: str
    colour: str
    motion: str
    size: str | None = None
    speed: str | None = None

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}")
        if self.colour not in PALETTE:
            raise ValueError(f"unknown colour {self.colour!r}")
        if self.motion not in MOTIONS:
            raise ValueError(f"unknown motion {self.motion!r}")
        if self.size is not None and self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}")
        if self.speed is not None and self.speed not in SPEEDS:
            raise ValueError(f"unknown speed {self.speed!r}")
        if self.speed is not None and not is_translation(self.motion):
            raise ValueError(f"a speed only applies to moving objects, not {self.motion!r}")

    @classmethod
    def from_spec(cls, obj: ObjectSpec) -> ObjectTarget:
        """The full target of a rendered object (speed only for translations)."""
        speed = obj.speed if is_translation(obj.motion) else None
        return cls(obj.shape, obj.colour, obj.motion, size=obj.size, speed=speed)


@dataclass(frozen=True)
class SceneTarget:
    """Attributes a whole clip should show."""

    objects: tuple[ObjectTarget, ...]
    background: str = DEFAULT_BACKGROUND

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise ValueError(f"unknown background {self.background!r}")
        if not self.objects:
            raise ValueError("a target needs at least one object")

    @classmethod
    def from_scene(cls, scene: SceneSpec) -> SceneTarget:
        """The full target of a rendered scene."""
        return cls(tuple(ObjectTarget.from_spec(o) for o in scene.objects), scene.background)

    def same_as(self, other: SceneTarget) -> bool:
        """Equality that ignores the order in which the objects are listed."""
        key = lambda o: (o.colour, o.shape, o.motion, o.size or "", o.speed or "")
        return self.background == other.background and sorted(self.objects, key=key) == sorted(
            other.objects, key=key
        )
