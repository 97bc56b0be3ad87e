"""Turn a caption into the structured target the judge scores.

Parses canonical captions exactly and also the wording of ``random_caption`` (synonyms,
word order, articles, punctuation): every object phrase is read by keywords, so any order
of size, colour, shape and motion words works. Held-out paraphrases are not guaranteed.
"""

from __future__ import annotations

import re

from .spec import BACKGROUNDS, DEFAULT_BACKGROUND, DEFAULT_SIZE, PALETTE, is_translation
from .target import ObjectTarget, SceneTarget

SHAPE_WORDS: dict[str, str] = {
    "circle": "circle",
    "ball": "circle",
    "disk": "circle",
    "disc": "circle",
    "dot": "circle",
    "square": "square",
    "box": "square",
    "block": "square",
    "triangle": "triangle",
    "star": "star",
}
SIZE_WORDS: dict[str, str] = {
    "small": "small",
    "tiny": "small",
    "little": "small",
    "medium": "medium",
    "large": "large",
    "big": "large",
    "huge": "large",
}
DIRECTION_WORDS: dict[str, str] = {
    "left": "left",
    "leftwards": "left",
    "leftward": "left",
    "right": "right",
    "rightwards": "right",
    "rightward": "right",
    "up": "up",
    "upwards": "up",
    "upward": "up",
    "down": "down",
    "downwards": "down",
    "downward": "down",
}
SPEED_WORDS: dict[str, str] = {
    "slowly": "slowly",
    "slow": "slowly",
    "quickly": "quickly",
    "fast": "quickly",
}
# Words that name a non-translating motion on their own.
CHANGE_WORDS: dict[str, str] = {
    "still": "still",
    "static": "still",
    "motionless": "still",
    "stationary": "still",
    "growing": "growing",
    "grows": "growing",
    "grow": "growing",
    "expanding": "growing",
    "expands": "growing",
    "bigger": "growing",
    "shrinking": "shrinking",
    "shrinks": "shrinking",
    "shrink": "shrinking",
    "smaller": "shrinking",
    "rotating": "rotating",
    "rotates": "rotating",
    "rotate": "rotating",
    "spinning": "rotating",
    "spins": "rotating",
    "turning": "rotating",
    "turns": "rotating",
}
_BACKGROUND_RE = re.compile(
    r"(?:\b(?:on|against|in front of)\s+)?(?:\b(?:a|an|the)\s+)?(?:\bplain\s+)?"
    r"\b(black|white|gray|grey)\s+background\b"
)
# Object phrases are joined by "and" (with or without a comma) or by a semicolon.
_JOIN_RE = re.compile(r"\s*(?:,\s*and\b|\band\b|;)\s*")


def _object_target(phrase: str, caption: str) -> ObjectTarget:
    tokens = re.findall(r"[a-z]+", phrase)

    def one(table: dict[str, str], what: str, required: bool) -> str | None:
        found = {table[t] for t in tokens if t in table}
        if len(found) > 1:
            raise ValueError(f"conflicting {what} words {sorted(found)} in {caption!r}")
        if not found and required:
            raise ValueError(f"no {what} in object phrase {phrase!r} of caption {caption!r}")
        return found.pop() if found else None

    colour = one({c: c for c in PALETTE}, "colour", True)
    shape = one(SHAPE_WORDS, "shape", True)
    size = one(SIZE_WORDS, "size", False) or DEFAULT_SIZE
    direction = one(DIRECTION_WORDS, "direction", False)
    change = one(CHANGE_WORDS, "motion", False)
    # "not moving" is a way to say still; "moving" alone names no motion
    if "not" in tokens and ("moving" in tokens or "move" in tokens):
        if change not in (None, "still"):
            raise ValueError(f"conflicting motion words in {caption!r}")
        change = "still"
    if direction and change:
        raise ValueError(f"both {direction!r} and {change!r} in {phrase!r} of {caption!r}")
    motion = direction or change
    if motion is None:
        raise ValueError(f"no motion in object phrase {phrase!r} of caption {caption!r}")
    speed = one(SPEED_WORDS, "speed", False)
    # speed words only mean something for translations; normal speed is unnamed
    speed = (speed or "normal") if is_translation(motion) else None
    assert colour is not None and shape is not None
    return ObjectTarget(shape=shape, colour=colour, motion=motion, size=size, speed=speed)


def parse_caption(text: str) -> SceneTarget:
    """Parse a canonical (or training-style) caption into a SceneTarget.

    Unnamed size is "medium", unnamed speed of a translation "normal", unnamed background
    "black" (docs/world.md). Raises ValueError with the reason for text it cannot read.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty caption")
    caption = text
    text = " ".join(text.lower().replace("grey", "gray").split())
    found = _BACKGROUND_RE.findall(text)
    if len(set(found)) > 1:
        raise ValueError(f"more than one background in {caption!r}")
    background = found[0] if found else DEFAULT_BACKGROUND
    assert background in BACKGROUNDS
    text = _BACKGROUND_RE.sub(" ", text)
    # drop punctuation left behind by the removed background phrase ("...:", "...,")
    phrases = [p for p in _JOIN_RE.split(text) if re.search(r"[a-z]", p)]
    if not phrases:
        raise ValueError(f"no object in caption {caption!r}")
    objects = tuple(_object_target(p, caption) for p in phrases)
    colours = [o.colour for o in objects]
    if len(set(colours)) != len(colours):
        raise ValueError(f"two objects of one colour in {caption!r}; objects differ in colour")
    return SceneTarget(objects=objects, background=background)
