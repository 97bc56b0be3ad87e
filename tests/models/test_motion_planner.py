"""The motion planner: a classifier over a velocity codebook on the text's token states."""

from __future__ import annotations

import torch

from vidsynth.models.motion_planner import MotionPlanner, load_planner

BOOK = [[0.0, 0.0], [0.02, 0.0], [-0.02, 0.0]]


def test_padding_tokens_do_not_change_the_plan() -> None:
    torch.manual_seed(0)
    planner = MotionPlanner(BOOK, hidden_size=8, width=8, heads=2)
    tokens = torch.randn(2, 5, 8)
    padded = torch.cat([tokens, torch.zeros(2, 7, 8)], dim=1)  # zeroed pad positions
    assert torch.allclose(planner(tokens), planner(padded), atol=1e-6)
    assert planner(tokens).shape == (2, 3)


def test_the_velocity_is_the_most_likely_entry_scaled_to_the_frame_rate(tmp_path) -> None:
    torch.manual_seed(0)
    planner = MotionPlanner(BOOK, hidden_size=8, width=8, heads=2, fps=8.0)
    tokens = torch.randn(4, 5, 8)
    picked = torch.tensor(BOOK)[planner(tokens).argmax(-1)]
    assert torch.allclose(planner.velocity(tokens), picked)
    # twice the frames per second: half the way per frame
    assert torch.allclose(planner.velocity(tokens, fps=16.0), picked / 2)
    planner.save_pretrained(tmp_path / "planner")
    (tmp_path / "planner" / "training.json").write_text('{"steps": 3}')
    loaded = load_planner(tmp_path / "planner")
    assert loaded.record == {"steps": 3}
    assert torch.allclose(loaded(tokens), planner(tokens))
    assert torch.equal(loaded.codebook, torch.tensor(BOOK))
