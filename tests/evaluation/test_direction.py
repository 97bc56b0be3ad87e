"""`vidsynth eval --mode direction`: clips from one seed for opposite direction words."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from vidsynth.cli import main
from vidsynth.errors import InvalidParameter
from vidsynth.evaluation.direction import rendered, steer_test
from vidsynth.world.parse import parse_caption
from vidsynth.world.renderer import render
from vidsynth.world.sampling import place_target

SUBJECTS = ("red circle", "green triangle")
OPPOSITE = {"right": "left", "left": "right", "up": "down", "down": "up"}


def _reword(prompt: str, new_word) -> str:
    """The prompt with its direction word replaced by `new_word(word)`."""
    head, rest = prompt.split(" moving ")
    word, tail = rest.split(" ", 1)
    return f"{head} moving {new_word(word)} {tail}"


def _model(choose_word, start=None):
    """A fake model: renders its prompt reworded by `choose_word(word, seed)`, placed by the seed
    (so a seed fixes everything but the word, as the noise does for a real model) or, with
    `start`, always starting at that (x, y)."""

    def generate(prompts, seeds):
        clips = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            caption = _reword(prompt, lambda w, s=seed: choose_word(w, s))
            scene = place_target(np.random.default_rng(seed), parse_caption(caption))
            if start is not None:
                (obj,) = scene.objects
                placed = replace(obj, start_x=start[0], start_y=start[1])
                scene = replace(scene, objects=(placed,))
            clips.append(render(scene, 64, 16, 8.0))
        return clips

    return generate


def test_a_model_that_follows_the_word_steers_one_and_one_that_ignores_it_zero():
    data = rendered(64, 16, 8.0)

    follower = steer_test(_model(lambda w, s: w), data, seeds=2, subjects=SUBJECTS)
    for pair in follower.pairs:
        assert pair.data_difference > 0.03  # the world's speed is 0.02 frame sides per frame
        assert pair.steer == pytest.approx(1.0, abs=0.1)
        assert pair.follows == 1.0 and pair.same_way == 0.0
        assert pair.room == 1.0 and pair.follows_with_room == 1.0  # it starts where the data do

    # the direction comes from the seed alone: both clips of a seed are the same clip
    by_seed = {"left/right": ("left", "right"), "up/down": ("up", "down")}

    def deaf(word, seed):
        axis = "left/right" if word in ("left", "right") else "up/down"
        return by_seed[axis][seed % 2]

    blind = steer_test(_model(deaf), data, seeds=2, subjects=SUBJECTS)
    for pair in blind.pairs:
        assert pair.steer == pytest.approx(0.0, abs=1e-9)
        assert pair.same_way == 1.0 and pair.follows == 0.5

    flipped = steer_test(_model(lambda w, s: OPPOSITE[w]), data, seeds=2, subjects=SUBJECTS)
    assert [p.steer for p in flipped.pairs] == pytest.approx([-1.0, -1.0], abs=0.1)
    assert "steer" in flipped.table() and "left/right" in flipped.to_dict()["pairs"]


def test_room_is_the_share_of_clips_that_start_where_their_direction_fits():
    """A model that puts every object left of centre: a clip told to go left has no room (the
    world starts those on the right), one told to go right has; up and down both fit."""
    data = rendered(64, 16, 8.0)
    report = steer_test(_model(lambda w, s: w, start=(0.25, 0.5)), data, seeds=2, subjects=SUBJECTS)
    pairs = {p.name: p for p in report.pairs}
    assert pairs["left/right"].room == 0.5 and pairs["up/down"].room == 1.0
    # the clips that go right have room, and they follow the word
    assert pairs["left/right"].follows_with_room == 1.0
    assert "follows|room" in report.table()


def test_the_direction_test_refuses_no_seeds():
    with pytest.raises(InvalidParameter, match="seeds"):
        steer_test(_model(lambda w, s: w), rendered(64, 16, 8.0), seeds=0)


def test_eval_direction_cli_on_the_bundled_model(tmp_path, capsys):
    out = tmp_path / "direction.json"
    code = main(["eval", "--mode", "direction", "--seeds", "1", "--steps", "2", "--json", str(out)])
    assert code == 0
    assert "steer" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert set(report["pairs"]) == {"left/right", "up/down"}
    assert report["pairs"]["left/right"]["clips"] == 8  # 4 subjects, one seed, two words
    assert report["settings"]["num_inference_steps"] == 2
