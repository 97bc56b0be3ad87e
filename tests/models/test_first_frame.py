"""The first-frame input: the first frame's latents on every frame, and a flag channel."""

from __future__ import annotations

import pytest
import torch

from vidsynth.models.first_frame import MotionGuide, first_frame_channels, first_frame_concat


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


def test_an_animated_first_frame_takes_the_place_of_the_guide() -> None:
    like = torch.randn(2, 4, 3, 8, 8)
    animated = torch.randn(2, 4, 3, 8, 8)
    concat = first_frame_concat(animated[:, :, 0], like, animated=animated)
    assert torch.equal(concat[:, :4], animated)
    assert concat[:, 4, 0].eq(1).all() and not concat[:, 4, 1:].any()
    guide = MotionGuide.moving(torch.zeros(2, 3, 2))
    with pytest.raises(ValueError, match="not both"):
        first_frame_concat(animated[:, :, 0], like, guide=guide, animated=animated)
    with pytest.raises(ValueError, match="animated first frame must be"):
        first_frame_concat(animated[:, :, 0], like, animated=animated[:, :, :2])


def test_a_first_frame_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="first frame latents must be"):
        first_frame_concat(torch.randn(2, 4, 6, 6), torch.randn(2, 4, 3, 8, 8))


def test_a_shift_moves_the_frame_by_frame_sides_and_keeps_flat_edges() -> None:
    from vidsynth.models.first_frame import MotionGuide, motion_path, warp_frames

    first = torch.full((1, 2, 16, 16), 0.5)
    first[0, :, 8, 4] = 3.0  # a dot at row 8, column 4 on a flat background
    path = torch.tensor([[[0.0, 0.0], [0.25, 0.0], [0.0, -0.125]]])  # still, right 4, up 2
    moved = warp_frames(first, MotionGuide.moving(path))
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


def test_a_guide_moves_the_first_frame_input_on_each_frame() -> None:
    from vidsynth.models.first_frame import MotionGuide, motion_guide, warp_frames

    like = torch.randn(2, 4, 3, 8, 8)
    first = torch.randn(2, 4, 8, 8)
    guide = motion_guide(torch.tensor([[0.125, 0.0]] * 2), 2, 3)
    concat = first_frame_concat(first, like, guide=guide)
    assert torch.allclose(concat[:, :4], warp_frames(first, MotionGuide.moving(guide.shift)))
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


def _disc(size: int, cx: float, cy: float, r: float, square: bool = False) -> torch.Tensor:
    ys, xs = torch.meshgrid(
        (torch.arange(size) + 0.5) / size, (torch.arange(size) + 0.5) / size, indexing="ij"
    )
    if square:
        inside = ((xs - cx).abs() < r) & ((ys - cy).abs() < r)
    else:
        inside = (xs - cx) ** 2 + (ys - cy) ** 2 < r**2
    return inside.float()


def test_a_guide_scales_and_turns_the_object_about_its_centre() -> None:
    from vidsynth.models.first_frame import MIN_SCALE, motion_guide, warp_frames

    first = _disc(64, 0.3, 0.6, 0.1)[None, None]  # a disc of radius 0.1 at (0.3, 0.6)
    centre = torch.tensor([[0.3, 0.6]])
    grow = warp_frames(first, motion_guide(torch.tensor([[0.0, 0.0, 0.5, 0.0]]), 1, 3, centre))
    # size factor 1, 1.5, 2: the area grows by its square, and the disc stays where it was
    areas = grow[0, 0].sum(dim=(1, 2)) / first.sum()
    assert torch.allclose(areas, torch.tensor([1.0, 2.25, 4.0]), rtol=0.05)
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    mass = grow[0, 0, 2]
    cx = (mass * (xs + 0.5)).sum() / mass.sum() / 64
    cy = (mass * (ys + 0.5)).sum() / mass.sum() / 64
    assert abs(cx - 0.3) < 0.01 and abs(cy - 0.6) < 0.01
    # shrinking stops at a least size instead of vanishing
    shrink = motion_guide(torch.tensor([[0.0, 0.0, -0.5, 0.0]]), 1, 4)
    assert torch.allclose(shrink.scale, torch.tensor([[1.0, 0.5, MIN_SCALE, MIN_SCALE]]))
    # 45 degrees turns an axis-aligned square into a diamond of the same area, in place
    square = _disc(64, 0.5, 0.5, 0.15, square=True)[None, None]
    turn = motion_guide(torch.tensor([[0.0, 0.0, 0.0, 45.0]]), 1, 2, torch.tensor([[0.5, 0.5]]))
    turned = warp_frames(square, turn)[0, 0, 1]
    assert torch.isclose(turned.sum(), square.sum(), rtol=0.03)
    # (the square's half-side is 9.6 pixels; the diamond's tips are 13.6 from the centre)
    assert turned[32, 24] > 0.5 and square[0, 0, 32, 24] > 0.5  # the middle stays
    # the corners of the square are cut off, and the diamond's tips reach past its sides
    assert turned[24, 24] < 0.5 and square[0, 0, 24, 24] > 0.5
    assert turned[32, 20] > 0.5 and turned[20, 32] > 0.5 and square[0, 0, 32, 20] < 0.5


def test_a_turn_is_clockwise_on_screen_as_the_world_rotates() -> None:
    from vidsynth.models.first_frame import motion_guide, warp_frames

    first = torch.zeros(1, 1, 64, 64)
    first[0, 0, 10:14, 30:34] = 1.0  # a dot straight above the centre
    quarter = motion_guide(torch.tensor([[0.0, 0.0, 0.0, 90.0]]), 1, 2)
    turned = warp_frames(first, quarter)[0, 0, 1]
    row, col = (turned > 0.5).nonzero().float().mean(0).tolist()
    assert abs(row - 31.5) < 1.5 and col > 48  # clockwise: from 12 o'clock to 3 o'clock


def test_object_centre_finds_the_object_on_a_flat_background() -> None:
    from vidsynth.models.first_frame import object_centre

    image = torch.full((2, 3, 32, 32), 0.2)
    image[0, :, 4:12, 20:28] = 0.9  # an 8-pixel square centred at (24/32, 8/32)
    image[1] = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    centre = object_centre(image)
    assert torch.allclose(centre[0], torch.tensor([0.75, 0.25]))
    assert torch.allclose(centre[1], torch.tensor([0.5, 0.5]))  # nothing stands out


def _two_squares() -> torch.Tensor:
    """A 32×32 gray frame with a red square (rows 4-9, columns 4-9) and a blue one (rows
    20-25, columns 20-25): (1, 3, 32, 32) in [0, 1]."""
    frame = torch.full((1, 3, 32, 32), 0.5)
    frame[0, :, 4:10, 4:10] = torch.tensor([0.9, 0.1, 0.1])[:, None, None]
    frame[0, :, 20:26, 20:26] = torch.tensor([0.1, 0.2, 0.9])[:, None, None]
    return frame


PALETTE = torch.tensor([[0.86, 0.16, 0.16], [0.16, 0.35, 0.9], [0.16, 0.7, 0.24]])


def test_objects_are_found_by_their_colour_and_a_lone_object_moves_the_whole_frame() -> None:
    from vidsynth.models.first_frame import colour_masks

    frame = _two_squares()
    masks = colour_masks(frame, PALETTE, torch.tensor([[1, 0]]))  # blue named first, then red
    assert masks.shape == (1, 2, 32, 32)
    assert masks[0, 0, 20:26, 20:26].all() and masks[0, 0].sum() == 36
    assert masks[0, 1, 4:10, 4:10].all() and masks[0, 1].sum() == 36
    # a colour the frame lacks finds nothing; one object named moves the whole frame
    assert not colour_masks(frame, PALETTE, torch.tensor([[2, 0]]))[0, 0].any()
    lone = colour_masks(frame, PALETTE, torch.tensor([[2, -1]]))
    assert lone[0, 0].all() and not lone[0, 1].any()


def test_each_object_moves_by_its_own_guide_over_a_flat_background() -> None:
    from vidsynth.models.first_frame import (
        MotionGuide,
        colour_masks,
        motion_guide,
        warp_frames,
        warp_scene,
    )

    frame = _two_squares()
    masks = colour_masks(frame, PALETTE, torch.tensor([[0, 1]]))
    right = motion_guide(torch.tensor([[0.125, 0.0]]), 1, 3, torch.tensor([[0.22, 0.22]]))
    still = motion_guide(None, 1, 3, torch.tensor([[0.72, 0.72]]))
    guides = [
        MotionGuide(right.shift, right.scale, right.angle, right.centre, masks[:, 0]),
        MotionGuide(still.shift, still.scale, still.angle, still.centre, masks[:, 1]),
    ]
    moved = warp_scene(frame, guides)
    assert moved.shape == (1, 3, 3, 32, 32)
    # frame 2: the red square 8 pixels to the right, its old place background, blue in place
    red = torch.tensor([0.9, 0.1, 0.1])[:, None, None]
    assert torch.allclose(moved[0, :, 2, 4:10, 12:18], red.expand(3, 6, 6), atol=1e-5)
    assert torch.allclose(moved[0, :, 2, 4:10, 4:10], torch.tensor(0.5))
    assert torch.allclose(moved[0, :, 2, 20:26, 20:26], frame[0, :, 20:26, 20:26])
    assert torch.allclose(moved[0, :, 0], frame[0], atol=1e-5)  # frame 0 is the frame itself
    # at a coarser resolution (latents) the masks are resized to it
    assert warp_scene(frame[:, :, ::4, ::4], guides).shape == (1, 3, 3, 8, 8)
    # one object: its whole-frame mask and an empty one move it as the plain warp does
    lone = colour_masks(frame, PALETTE, torch.tensor([[0, -1]]))
    alone = [
        MotionGuide(right.shift, right.scale, right.angle, right.centre, lone[:, 0]),
        MotionGuide(still.shift, still.scale, still.angle, still.centre, lone[:, 1]),
    ]
    plain = warp_frames(frame, right)
    assert torch.allclose(warp_scene(frame, alone), plain, atol=1e-6)
    assert torch.equal(warp_scene(frame, [right]), plain)
