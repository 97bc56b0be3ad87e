"""Does the prompt set the direction of motion? A paired-seed test of a text-to-video model.

For two captions that differ only in the direction word ("moving right" / "moving left"), the
model generates one clip each from the same seed. The seed fixes the starting noise, so the
two clips differ only because the word does. The judge measures each clip's velocity along the
axis, and the mean difference between the pair, over the same difference measured on rendered
clips of the two captions, is the model's *steer*:

- 1: the word sets the direction, as in the data;
- 0: the word changes nothing, and the direction (if the object moves at all) comes from the
  noise; then both clips of a seed go the same way;
- negative: the words are swapped.

A clip can only go the named way if its object starts where there is room for it: the world
keeps objects inside the frame, so a clip moving left starts on the right. *Room* is the share of
the model's clips whose object starts there, and *follows with room* the share of those that go
the named way. A model that draws the first frame and then the motion (a first-frame UNet) needs
both: an image stage that puts the object where the word says, and a clip stage that moves it.

The eval's motion accuracy cannot tell a model that ignores the word from one that follows it
weakly, and it takes a quarter of an hour; this takes a few minutes and separates the two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from vidsynth.errors import InvalidParameter
from vidsynth.world.judge import DetectedObject, detect
from vidsynth.world.parse import parse_caption
from vidsynth.world.renderer import render
from vidsynth.world.sampling import object_spec, place_target, start_range

# (word, its opposite, the judge's velocity component along their axis)
PAIRS: dict[str, tuple[str, str, str]] = {
    "left/right": ("right", "left", "vx"),
    "up/down": ("down", "up", "vy"),
}
SUBJECTS = ("red circle", "blue square", "green triangle", "yellow star")
TEMPLATE = "a {subject} moving {word} on a white background"

# How far (frame sides, 2 pixels at 64×64) a judged start may lie outside the room and count
ROOM_TOLERANCE = 0.03

# generate(prompts, seeds) -> one clip (F, H, W, 3) uint8 per prompt
Generate = Callable[[Sequence[str], Sequence[int]], Sequence[np.ndarray]]


@dataclass
class PairResult:
    """One pair of direction words, over every subject and seed."""

    name: str
    words: tuple[str, str]
    steer: float  # mean paired velocity difference of the model / of the data
    follows: float  # share of the model's clips the judge sees moving the prompted way
    same_way: float  # share of seeds whose two clips the judge sees moving the same way
    room: float  # share of the model's clips whose object starts with room for its direction
    follows_with_room: float  # share of those that the judge sees moving the prompted way
    model_difference: float  # mean v(word) - v(opposite), frame sides per frame
    data_difference: float
    clips: int  # model clips judged (both words)


@dataclass
class DirectionReport:
    """Every pair of one model, printable like the other eval reports."""

    pairs: list[PairResult]
    settings: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        head = f"{'pair':<12} {'steer':>6} {'follows':>8} {'same way':>9} {'room':>6}"
        head += f" {'follows|room':>13}"
        rows = [head, "-" * len(head)]
        for p in self.pairs:
            rows.append(
                f"{p.name:<12} {p.steer:>6.2f} {p.follows:>8.0%} {p.same_way:>9.0%} "
                f"{p.room:>6.0%} {p.follows_with_room:>13.0%}"
            )
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        return {"pairs": {p.name: asdict(p) for p in self.pairs}, "settings": self.settings}


def _subject(caption: str, objects: Sequence[DetectedObject]) -> DetectedObject | None:
    """The detected object of the caption's colour, else the most prominent one."""
    colour = parse_caption(caption).objects[0].colour
    matching = [o for o in objects if o.colour == colour]
    return (matching or list(objects) or [None])[0]


def velocity(caption: str, frames: np.ndarray, component: str) -> tuple[float, str]:
    """The judged velocity component (frame sides per frame) and motion of the caption's object;
    (0, "-") when the judge finds none."""
    velocity, motion, _ = _judged(caption, frames, component, room=False)
    return velocity, motion


def _judged(
    caption: str, frames: np.ndarray, component: str, *, room: bool = True
) -> tuple[float, str, bool]:
    """`velocity`, and (with `room`) whether the object starts with room to go the caption's
    way."""
    obj = _subject(caption, detect(frames)[1])
    if obj is None:
        return 0.0, "-", False
    return obj.features[component], obj.motion, room and has_room(caption, obj)


def has_room(caption: str, obj: DetectedObject) -> bool:
    """Does `obj` start where the caption's object can travel its way for the whole clip (the
    world's start positions, within ROOM_TOLERANCE)?"""
    box = start_range(object_spec(parse_caption(caption).objects[0]))
    if box is None:
        return False
    x_lo, x_hi, y_lo, y_hi = box
    x0, y0, tol = obj.features["x0"], obj.features["y0"], ROOM_TOLERANCE
    return x_lo - tol <= x0 <= x_hi + tol and y_lo - tol <= y0 <= y_hi + tol


def rendered(size: int, frames: int, fps: float, seed: int = 0) -> Generate:
    """A "model" that renders each caption at a random place (ignoring the seeds it is given,
    which the data does not share with the model): the data's answer."""
    rng = np.random.default_rng(seed)

    def generate(prompts: Sequence[str], seeds: Sequence[int]) -> list[np.ndarray]:
        return [render(place_target(rng, parse_caption(p)), size, frames, fps) for p in prompts]

    return generate


def steer_test(
    generate: Generate,
    reference: Generate,
    *,
    seeds: int = 4,
    subjects: Sequence[str] = SUBJECTS,
    pairs: dict[str, tuple[str, str, str]] | None = None,
) -> DirectionReport:
    """Each pair of `pairs` (default PAIRS) with every subject and seed, against `reference`."""
    if seeds < 1:
        raise InvalidParameter(f"the direction test needs seeds >= 1, got {seeds}")
    if not subjects:
        raise InvalidParameter("the direction test needs at least one subject")
    results = []
    for name, (word, opposite, component) in (pairs or PAIRS).items():
        diffs, ref_diffs, follows, same, room, follows_room = [], [], 0, 0, 0, 0
        for subject in subjects:
            a, b = (TEMPLATE.format(subject=subject, word=w) for w in (word, opposite))
            for seed in range(seeds):
                clip_a, clip_b = generate([a, b], [seed, seed])
                va, ma, ra = _judged(a, clip_a, component)
                vb, mb, rb = _judged(b, clip_b, component)
                diffs.append(va - vb)
                follows += (ma == word) + (mb == opposite)
                same += ma == mb and ma in (word, opposite)
                room += ra + rb
                follows_room += (ra and ma == word) + (rb and mb == opposite)
                ref_a, ref_b = reference([a, b], [seed, seed])
                ref_diffs.append(
                    velocity(a, ref_a, component)[0] - velocity(b, ref_b, component)[0]
                )
        model_d, data_d = float(np.mean(diffs)), float(np.mean(ref_diffs))
        results.append(
            PairResult(
                name,
                (word, opposite),
                steer=model_d / data_d if data_d else float("nan"),
                follows=follows / (2 * len(diffs)),
                same_way=same / len(diffs),
                room=room / (2 * len(diffs)),
                follows_with_room=follows_room / room if room else float("nan"),
                model_difference=model_d,
                data_difference=data_d,
                clips=2 * len(diffs),
            )
        )
    return DirectionReport(results, {"seeds": seeds, "subjects": list(subjects)})


def direction_test(pipe: Any, *, seeds: int = 4, **generate_kwargs: Any) -> DirectionReport:
    """The paired-seed direction test of a text-to-video pipeline at its default clip size."""
    d = pipe.defaults
    frames, size, fps = d.num_frames, d.height, d.fps

    def generate(prompts: Sequence[str], seed_list: Sequence[int]) -> list[np.ndarray]:
        pairs = zip(prompts, seed_list, strict=True)
        return [pipe(p, seed=s, **generate_kwargs).frames for p, s in pairs]

    report = steer_test(generate, rendered(size, frames, fps), seeds=seeds)
    report.settings.update(num_frames=frames, size=size, fps=fps, **generate_kwargs)
    return report
