"""The fixed, versioned prompt sets that `vidsynth eval` scores.

A set is a pure function of its version: scenes come from fixed seeds, so every run (and
every machine) scores the same prompts. Training never emits one of these prompt strings
(`training.data` redraws such captions), so the two sets are disjoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from vidsynth.errors import InvalidParameter

VERSION = "v1"
KINDS = ("canonical", "paraphrase", "two_objects")
# prompts per kind in the default set; small enough for minutes on a CPU
SIZES = {"canonical": 96, "paraphrase": 64, "two_objects": 48}
# (scene seed, generation seed offset) per set. "val1" is for choosing sampling defaults
# (guidance, steps) without looking at the reported set, "val2" for checking a choice made
# on val1 before v1 is run; their figures are never reported as the model's.
SET_SEEDS = {"v1": (20261122, 0), "val1": (20261201, 50_000), "val2": (20261207, 70_000)}


@dataclass(frozen=True)
class EvalPrompt:
    kind: str
    prompt: str
    target: str  # the canonical caption the judge parses
    seed: int  # the generation seed


@cache
def prompt_set(version: str = VERSION) -> tuple[EvalPrompt, ...]:
    """All prompts of `version`, in a fixed order."""
    from vidsynth.world.captions import canonical_caption, eval_paraphrase
    from vidsynth.world.sampling import sample_scene

    if version not in SET_SEEDS:
        raise InvalidParameter(
            f"unknown eval prompt set {version!r}; known: {', '.join(SET_SEEDS)}"
        )
    base, seed_offset = SET_SEEDS[version]
    out = []
    for k, kind in enumerate(KINDS):
        for i in range(SIZES[kind]):
            rng = np.random.default_rng([base, k, i])
            scene = sample_scene(rng, level=2 if kind == "two_objects" else 1)
            target = canonical_caption(scene)
            prompt = eval_paraphrase(scene, rng) if kind == "paraphrase" else target
            out.append(EvalPrompt(kind, prompt, target, seed=seed_offset + 1000 * k + i))
    return tuple(out)


@cache
def eval_prompt_strings(version: str = VERSION) -> frozenset[str]:
    """Normalised prompt strings, for the training side to avoid."""
    return frozenset(normalise(p.prompt) for p in prompt_set(version))


def normalise(text: str) -> str:
    return " ".join(text.lower().split())
