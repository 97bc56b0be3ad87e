"""The first-frame input: the first frame's latents on every frame, and a flag channel."""

from __future__ import annotations

import pytest
import torch

from vidsynth.models.first_frame import first_frame_channels, first_frame_concat


def test_the_first_frame_is_repeated_over_the_frames_and_frame_0_flagged() -> None:
    like = torch.randn(3, 4, 5, 6, 7)
    first = torch.randn(3, 4, 6, 7)
    concat = first_frame_concat(first, like)
    assert concat.shape == (3, first_frame_channels(4), 5, 6, 7) == (3, 5, 5, 6, 7)
    for f in range(5):
        assert torch.equal(concat[:, :4, f], first)
    # the flag marks frame 0 (the start of the clip), and only it
    assert (concat[:, 4, 0] == 1).all() and not concat[:, 4, 1:].any()


def test_no_first_frame_is_all_zeros_per_clip_or_for_all() -> None:
    like = torch.randn(3, 4, 2, 6, 6)
    first = torch.randn(3, 4, 6, 6) + 5  # never zero
    assert not first_frame_concat(None, like).any()
    kept = first_frame_concat(first, like, keep=torch.tensor([True, False, True]))
    assert not kept[1].any()
    assert kept[0, :4].all() and kept[2, :4].all() and kept[[0, 2], 4, 0].all()


def test_a_first_frame_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="first frame latents must be"):
        first_frame_concat(torch.randn(2, 4, 6, 6), torch.randn(2, 4, 3, 8, 8))


def test_shift_frames_moves_the_frame_by_frame_sides_and_keeps_flat_edges() -> None:
    from vidsynth.models.first_frame import motion_path, shift_frames

    first = torch.full((1, 2, 16, 16), 0.5)
    first[0, :, 8, 4] = 3.0  # a dot at row 8, column 4 on a flat background
    path = torch.tensor([[[0.0, 0.0], [0.25, 0.0], [0.0, -0.125]]])  # still, right 4, up 2
    moved = shift_frames(first, path)
    assert moved.shape == (1, 2, 3, 16, 16)
    dots = [tuple((moved[0, 0, k] > 1).nonzero()[0].tolist()) for k in range(3)]
    assert dots == [(8, 4), (8, 8), (6, 4)]
    assert torch.allclose(moved[0, :, 0], first[0])  # no displacement: the frame itself
    # what comes in over an edge is the edge repeated: the background stays 0.5
    assert torch.allclose(moved[0, 0, 1, :, :3], torch.tensor(0.5))
    # a constant velocity from frame 0 on; nothing known of the motion stays in place
    v = torch.tensor([[0.02, -0.01], [0.0, 0.0]])
    steps = motion_path(v, 2, 4)
    assert steps.shape == (2, 4, 2) and torch.allclose(steps[0, 3], torch.tensor([0.06, -0.03]))
    assert not motion_path(None, 2, 4).any()


def test_a_displacement_moves_the_first_frame_input_on_each_frame() -> None:
    from vidsynth.models.first_frame import shift_frames

    like = torch.randn(2, 4, 3, 8, 8)
    first = torch.randn(2, 4, 8, 8)
    path = torch.tensor([[[0.0, 0.0], [0.125, 0.0], [0.25, 0.0]]] * 2)
    concat = first_frame_concat(first, like, displacement=path)
    assert torch.allclose(concat[:, :4], shift_frames(first, path))
    assert (concat[:, 4, 0] == 1).all() and not concat[:, 4, 1:].any()
    assert not torch.allclose(concat[:, :4, 2], first)


def test_keep_in_frame_moves_a_path_only_as_far_as_the_object_needs() -> None:
    from vidsynth.models.first_frame import keep_in_frame, motion_path

    image = torch.full((4, 3, 32, 32), 0.9)  # a flat background
    image[:, :, 12:20, 2:10] = 0.1  # an 8-pixel object at the left edge: x from 2/32 to 10/32
    image[3] = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))  # no flat bg
    velocity = torch.tensor([[-0.02, 0.0], [0.02, 0.0], [-0.06, 0.0], [-0.02, 0.0]])
    path = motion_path(velocity, 4, 16)  # 0.3, 0.3, 0.9 of the frame by the last frame
    kept = keep_in_frame(image, path, margin=0.0)
    offset = kept - path
    assert torch.allclose(offset[..., 1], torch.tensor(0.0))  # no vertical motion, no offset
    # going left it needs 0.3 - 2/32 more on the left, all of it, and not a bit more
    assert torch.allclose(offset[0, :, 0], torch.tensor(0.3 - 2 / 32))
    assert torch.allclose(offset[1], torch.tensor(0.0))  # going right it has room
    # 0.9 does not fit beside an object of 0.25: the path is centred, so the object's right
    # edge at the start overhangs as far as its left edge at the end
    right_at_start, left_at_end = 10 / 32 + kept[2, 0, 0], 2 / 32 + kept[2, -1, 0]
    assert torch.isclose(right_at_start - 1, -left_at_end, atol=1e-6)
    assert torch.isclose(right_at_start - 1, torch.tensor(0.075), atol=1e-6)
    assert torch.allclose(offset[3], torch.tensor(0.0))  # nothing stands out: as planned
