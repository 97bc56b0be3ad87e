"""The motion planner: a classifier over a motion codebook on the text's token states."""

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


def test_the_motion_is_the_most_likely_entry_scaled_to_the_frame_rate(tmp_path) -> None:
    torch.manual_seed(0)
    planner = MotionPlanner(BOOK, hidden_size=8, width=8, heads=2, fps=8.0)
    tokens = torch.randn(4, 5, 8)
    # a velocity-only codebook (the first planners') plans no growth and no rotation
    picked = torch.nn.functional.pad(torch.tensor(BOOK), (0, 2))[planner(tokens).argmax(-1)]
    assert torch.allclose(planner.motion(tokens), picked)
    # twice the frames per second: half the way per frame
    assert torch.allclose(planner.motion(tokens, fps=16.0), picked / 2)
    planner.save_pretrained(tmp_path / "planner")
    (tmp_path / "planner" / "training.json").write_text('{"steps": 3}')
    loaded = load_planner(tmp_path / "planner")
    assert loaded.record == {"steps": 3}
    assert torch.allclose(loaded(tokens), planner(tokens))
    assert torch.equal(loaded.codebook, planner.codebook)


def test_a_full_codebook_plans_growth_and_rotation() -> None:
    book = [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.05, 0.0], [0.0, 0.0, 0.0, 15.0]]
    planner = MotionPlanner(book, hidden_size=8, width=8, heads=2, fps=8.0)
    with torch.no_grad():
        planner.head[-1].bias.copy_(torch.tensor([0.0, 0.0, 100.0]))  # always the third
    # half the frames per second: twice the turn per frame
    turn = planner.motion(torch.randn(2, 3, 8), fps=4.0)
    assert torch.allclose(turn, torch.tensor([[0, 0, 0, 30.0]] * 2))
