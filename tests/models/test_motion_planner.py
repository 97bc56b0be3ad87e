"""The motion planner: a classifier over a motion codebook on the text's token states."""

from __future__ import annotations

import pytest
import torch

from vidsynth.models.motion_planner import MotionPlanner, load_planner
from vidsynth.models.text_encoder import sentence_embedding

BOOK = [[0.0, 0.0], [0.02, 0.0], [-0.02, 0.0]]


def test_padding_tokens_do_not_change_the_plan() -> None:
    torch.manual_seed(0)
    planner = MotionPlanner(BOOK, hidden_size=8, width=8, heads=2)
    tokens = torch.randn(2, 5, 8)
    padded = torch.cat([tokens, torch.zeros(2, 7, 8)], dim=1)  # zeroed pad positions
    assert torch.allclose(planner(tokens)[0], planner(padded)[0], atol=1e-6)
    assert planner(tokens)[0].shape == (2, 1, 3) and planner(tokens)[1] is None


def test_the_motion_is_the_most_likely_entry_scaled_to_the_frame_rate(tmp_path) -> None:
    torch.manual_seed(0)
    planner = MotionPlanner(BOOK, hidden_size=8, width=8, heads=2, fps=8.0)
    tokens = torch.randn(4, 5, 8)
    # a velocity-only codebook (the first planners') plans no growth and no rotation
    picked = torch.nn.functional.pad(torch.tensor(BOOK), (0, 2))[
        planner(tokens)[0][:, 0].argmax(-1)
    ]
    assert torch.allclose(planner.motion(tokens), picked)
    # twice the frames per second: half the way per frame
    assert torch.allclose(planner.motion(tokens, fps=16.0), picked / 2)
    planner.save_pretrained(tmp_path / "planner")
    (tmp_path / "planner" / "training.json").write_text('{"steps": 3}')
    loaded = load_planner(tmp_path / "planner")
    assert loaded.record == {"steps": 3}
    assert torch.allclose(loaded(tokens)[0], planner(tokens)[0])
    assert torch.equal(loaded.codebook, planner.codebook)


def test_a_full_codebook_plans_growth_and_rotation() -> None:
    book = [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.05, 0.0], [0.0, 0.0, 0.0, 15.0]]
    planner = MotionPlanner(book, hidden_size=8, width=8, heads=2, fps=8.0)
    with torch.no_grad():
        planner.head[-1].bias.copy_(torch.tensor([0.0, 0.0, 100.0]))  # always the third
    # half the frames per second: twice the turn per frame
    turn = planner.motion(torch.randn(2, 3, 8), fps=4.0)
    assert torch.allclose(turn, torch.tensor([[0, 0, 0, 30.0]] * 2))


PALETTE = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


def _slot_planner(colours: list[int], motions: list[int]) -> MotionPlanner:
    """A two-slot planner whose readings are fixed by logits added to its own: `motions` for
    the lone object and each slot, `colours` per slot (3: none)."""
    torch.manual_seed(0)
    planner = MotionPlanner(BOOK, hidden_size=8, width=8, heads=2, slots=2, colours=PALETTE)
    real = planner.forward

    def forward(context):
        motion, colour = real(context)
        b = context.shape[0]
        fixed_m = torch.nn.functional.one_hot(torch.tensor(motions), len(BOOK)) * 50.0
        fixed_c = torch.nn.functional.one_hot(torch.tensor(colours), len(PALETTE) + 1) * 50.0
        return motion + fixed_m.expand(b, -1, -1), colour + fixed_c.expand(b, -1, -1)

    planner.forward = forward
    return planner


def test_slots_read_each_object_and_a_lone_object_moves_by_its_own_pooling(tmp_path) -> None:
    tokens = torch.randn(3, 6, 8)
    # two objects, red then blue: each slot's motion and colour
    motion, colours = _slot_planner([0, 1], [0, 1, 2]).objects(tokens)
    assert colours.tolist() == [[0, 1]] * 3
    assert torch.allclose(motion[:, 0, :2], torch.tensor([0.02, 0.0]))
    assert torch.allclose(motion[:, 1, :2], torch.tensor([-0.02, 0.0]))
    # no second object, or the first one's colour again: one object, whose motion is the
    # lone pooling's, and an empty second slot
    for second in (3, 0):
        motion, colours = _slot_planner([0, second], [2, 1, 1]).objects(tokens, fps=16.0)
        assert colours.tolist() == [[0, -1]] * 3
        assert torch.allclose(motion[:, 0, :2], torch.tensor([-0.01, 0.0]))
        assert not motion[:, 1].any()
    # saved and loaded with its slots, positions and colours
    planner = MotionPlanner(BOOK, hidden_size=8, width=8, heads=2, slots=2, colours=PALETTE)
    planner.save_pretrained(tmp_path / "planner")
    loaded = load_planner(tmp_path / "planner")
    for mine, theirs in zip(loaded(tokens), planner(tokens), strict=True):
        assert mine.shape == theirs.shape and torch.allclose(mine, theirs, atol=1e-6)
    assert loaded(tokens)[0].shape == (3, 3, 3) and loaded(tokens)[1].shape == (3, 2, 4)


def test_a_planner_with_slots_needs_colours() -> None:
    import pytest

    with pytest.raises(ValueError, match="colours"):
        MotionPlanner(BOOK, hidden_size=8, slots=2)
    short = MotionPlanner(BOOK, hidden_size=8, heads=2, slots=2, colours=PALETTE, max_length=4)
    with pytest.raises(ValueError, match="5 tokens: this planner places at most 4"):
        short(torch.randn(1, 5, 8))


def test_a_planner_with_shapes_reads_each_named_objects_shape() -> None:
    torch.manual_seed(0)
    planner = MotionPlanner(
        BOOK, hidden_size=8, width=8, heads=2, slots=2, colours=PALETTE, shapes=["a", "b", "c"]
    )
    tokens = torch.randn(2, 6, 8)
    assert planner.shape_logits(tokens).shape == (2, 3, 3)  # the lone object's, then a slot's
    fixed = {"colours": [0, 1]}

    def forward(context):
        motion, colour = MotionPlanner.forward(planner, context)
        pick = torch.nn.functional.one_hot(torch.tensor(fixed["colours"]), len(PALETTE) + 1)
        return motion, colour + 50.0 * pick.expand(context.shape[0], -1, -1)

    def shape_logits(context, shape_names=None):  # the lone pooling reads "c", each slot "b"
        lone_c_slots_b = torch.tensor([[0.0, 0.0, 9.0], [0.0, 9.0, 0.0], [0.0, 9.0, 0.0]])
        return lone_c_slots_b.expand(context.shape[0], -1, -1)

    planner.forward, planner.shape_logits = forward, shape_logits
    # two objects: each slot's shape
    assert planner.object_shapes(tokens).tolist() == [[1, 1]] * 2
    # one object (no second colour): the lone pooling's shape, nothing in the second slot
    fixed["colours"] = [0, 3]
    assert planner.object_shapes(tokens).tolist() == [[2, -1]] * 2


def test_a_planner_without_shapes_says_so() -> None:
    planner = MotionPlanner(BOOK, hidden_size=8, width=8, heads=2)
    with pytest.raises(ValueError, match="reads no shapes"):
        planner.shape_logits(torch.randn(1, 3, 8))


def test_a_planner_with_a_name_weight_reads_a_lone_shape_by_the_names_too() -> None:
    torch.manual_seed(0)
    shapes = ["a", "b", "c"]
    settings = {"hidden_size": 8, "width": 8, "heads": 2, "slots": 2, "colours": PALETTE}
    plain = MotionPlanner(BOOK, **settings, shapes=shapes)
    named = MotionPlanner(BOOK, **settings, shapes=shapes, name_weight=1000.0)
    named.load_state_dict(plain.state_dict())
    names = torch.randn(3, 4, 8)  # each shape's name's token states
    tokens = names[[2, 0]] + 0.01 * torch.randn(2, 4, 8)  # captions like names "c" and "a"
    before, after = plain.shape_logits(tokens, names), named.shape_logits(tokens, names)
    assert torch.equal(before, plain.shape_logits(tokens))  # no weight: the names are unused
    assert after[:, 0].argmax(dim=1).tolist() == [2, 0]  # the lone object: likest name wins
    assert torch.equal(after[:, 1:], before[:, 1:])  # a slot's reading is the planner's own
    assert torch.equal(named.shape_logits(tokens), before)  # no names given: the planner's
    # the lone object's logits are its log-probabilities plus weight × cosine
    cosine = sentence_embedding(tokens) @ sentence_embedding(names).T
    assert torch.allclose(after[:, 0], before[:, 0].log_softmax(dim=1) + 1000 * cosine)
    with pytest.raises(ValueError, match="name_weight"):
        MotionPlanner(BOOK, **settings, name_weight=1.0)  # no shapes to name
    with pytest.raises(ValueError, match="name_weight"):
        MotionPlanner(BOOK, **settings, shapes=shapes, name_weight=-1.0)
