"""Captions of the shapes world: canonical form, variety, parser, held-out paraphrases."""

from __future__ import annotations

import numpy as np
import pytest

from vidsynth.world import (
    ObjectSpec,
    ObjectTarget,
    SceneSpec,
    SceneTarget,
    canonical_caption,
    eval_paraphrase,
    parse_caption,
    random_caption,
    sample_scene,
)
from vidsynth.world.captions import (
    EVAL_LEXICON,
    TRAIN_LEXICON,
    eval_motion_phrases,
    lexicon_words,
    training_vocabulary,
    words,
)


def _scenes(n: int, seed: int) -> list[SceneSpec]:
    rng = np.random.default_rng(seed)
    return [sample_scene(rng, 1 + i % 2) for i in range(n)]


def test_canonical_examples_of_the_contract() -> None:
    circle = ObjectSpec("circle", "red", "large", "right")
    scene = SceneSpec((circle,), "white")
    assert canonical_caption(scene) == "a large red circle moving right on a white background"
    two = SceneSpec(
        (ObjectSpec("star", "blue", motion="rotating"), ObjectSpec("square", "yellow", motion="up"))
    )
    assert canonical_caption(two) == "a blue star rotating and a yellow square moving up"
    assert canonical_caption(two, name_black=True) == (
        "a blue star rotating and a yellow square moving up on a black background"
    )


@pytest.mark.parametrize(
    ("obj", "text"),
    [
        (ObjectSpec("star", "orange"), "an orange star standing still"),
        (
            ObjectSpec("square", "green", "small", "left", "slowly"),
            "a small green square moving left slowly",
        ),
        (
            ObjectSpec("triangle", "cyan", motion="down", speed="quickly"),
            "a cyan triangle moving down quickly",
        ),
        (ObjectSpec("circle", "white", "large", "growing"), "a large white circle growing"),
        (ObjectSpec("star", "purple", motion="shrinking"), "a purple star shrinking"),
    ],
)
def test_canonical_wording(obj: ObjectSpec, text: str) -> None:
    assert canonical_caption(SceneSpec((obj,))) == text


def test_training_captions_vary() -> None:
    scene = SceneSpec((ObjectSpec("circle", "red", "small", "right", "quickly"),), "gray")
    rng = np.random.default_rng(0)
    captions = {random_caption(scene, rng) for _ in range(200)}
    assert len(captions) >= 100
    joined = " ".join(captions)
    for word in ("ball", "disk", "sliding", "drifting", "travels", "to the right", "tiny", "fast"):
        assert word in joined
    two = SceneSpec(
        (ObjectSpec("star", "blue", motion="rotating"), ObjectSpec("square", "yellow", motion="up"))
    )
    starts = {random_caption(two, rng).lower().split(" ")[0] for _ in range(200)}
    assert len(starts) >= 5  # articles, word order and object order all vary


def test_parser_round_trips_canonical_and_training_captions() -> None:
    rng = np.random.default_rng(1)
    for scene in _scenes(3000, seed=1):
        target = SceneTarget.from_scene(scene)
        assert parse_caption(canonical_caption(scene)) == target
        assert parse_caption(canonical_caption(scene, name_black=True)) == target
        caption = random_caption(scene, rng)
        assert parse_caption(caption).same_as(target), caption


def test_parser_defaults_and_tolerance() -> None:
    t = parse_caption("A red ball moving left.")
    assert t == SceneTarget((ObjectTarget("circle", "red", "left", "medium", "normal"),), "black")
    t = parse_caption("on a grey background, the big blue box spins")
    assert t == SceneTarget((ObjectTarget("square", "blue", "rotating", "large"),), "gray")
    t = parse_caption("a orange star not moving and a tiny cyan triangle moving slowly to the left")
    assert t.objects == (
        ObjectTarget("star", "orange", "still", "medium"),
        ObjectTarget("triangle", "cyan", "left", "small", "slowly"),
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello world",
        "a red circle",  # no motion
        "a red circle and",  # dangling
        "a red blue circle moving left",  # two colours
        "a red circle square moving left",  # two shapes
        "a red circle moving left and growing",  # second phrase has no object
        "a red circle moving left and a red square growing",  # same colour twice
        "a red circle moving left on a white background on a gray background",
        "a red circle growing moving left",
    ],
)
def test_parser_rejects_unreadable_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse_caption(text)


def test_eval_paraphrases_never_come_from_the_training_generator() -> None:
    train = training_vocabulary()
    # every motion phrase of the held-out generator carries a word training never uses,
    # and every held-out object phrase states its motion with one of them
    for phrase in eval_motion_phrases():
        assert set(words(phrase)) - train, phrase
    # the templates and joiners of the two generators are disjoint
    for group in ("object", "join", "background"):
        train_t = {t for opts in TRAIN_LEXICON[group].values() for t in opts}
        eval_t = {t for opts in EVAL_LEXICON[group].values() for t in opts}
        assert not train_t & eval_t, group
    held_out = lexicon_words(EVAL_LEXICON) - train
    assert {"heading", "orb", "motionless", "revolving", "swiftly"} <= held_out
    # the held-out names of shapes keep the words that tell them apart ("three-sided shape")
    assert {"round", "three", "four", "sided", "tile", "five", "pointed"} <= held_out

    rng = np.random.default_rng(2)
    seen_train: set[str] = set()
    seen_eval: set[str] = set()
    for scene in _scenes(1500, seed=2):
        caption = random_caption(scene, rng)
        # the training generator only speaks its own vocabulary ...
        assert set(words(caption)) <= train, caption
        paraphrase = eval_paraphrase(scene, rng)
        # ... and every paraphrase has a word outside it, once per object
        novel = [w for w in words(paraphrase) if w not in train]
        assert len(novel) >= scene.level, paraphrase
        # a paraphrase still names every colour of the scene
        for obj in scene.objects:
            assert obj.colour in words(paraphrase)
        seen_train.add(caption.lower().rstrip("."))
        seen_eval.add(paraphrase.lower().rstrip("."))
    assert not seen_train & seen_eval
    assert len(seen_eval) > 1400
