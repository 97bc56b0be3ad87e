"""The shape reader: each named object cropped off a frame by its colour, its shape read."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vidsynth.errors import InvalidParameter
from vidsynth.models.shape_reader import MISSING, ShapeReader, load_shape_reader, object_crop
from vidsynth.training.data import world_palette
from vidsynth.world.renderer import render
from vidsynth.world.spec import COLOURS, SHAPES, ObjectSpec, SceneSpec

PALETTE = torch.tensor(world_palette())


def _frame(*objects: ObjectSpec, background: str = "white") -> torch.Tensor:
    pixels = render(SceneSpec(objects=objects, background=background), 64, frames=[0])[0]
    return torch.from_numpy(pixels).permute(2, 0, 1).float() / 255


def test_a_crop_is_the_object_of_that_colour_scaled_to_the_crop() -> None:
    small = _frame(ObjectSpec("square", "red", size="small", start_x=0.3, start_y=0.7))
    large = _frame(ObjectSpec("square", "red", size="large", start_x=0.6, start_y=0.4))
    crops = [object_crop(f, PALETTE, COLOURS.index("red"), 32) for f in (small, large)]
    assert all(c is not None and c.shape == (2, 32, 32) for c in crops)
    # wherever it stands and whatever its size, the square is in the middle of the crop and
    # spans most of it (the crop's margin is 2 pixels of the frame a side)
    for crop in crops:
        ys, xs = torch.nonzero(crop[0] > 0.5, as_tuple=True)
        assert abs(float(ys.float().mean()) - 15.5) < 1.5
        assert abs(float(xs.float().mean()) - 15.5) < 1.5
        assert int(xs.max() - xs.min()) >= 16 and crop[0, 0, 0] == 0
    # a colour the frame does not have: nothing found
    assert object_crop(small, PALETTE, COLOURS.index("blue"), 32) is None


def test_two_objects_are_cropped_apart_by_colour() -> None:
    frame = _frame(
        ObjectSpec("circle", "red", size="large", start_x=0.25, start_y=0.3),
        ObjectSpec("star", "blue", size="large", start_x=0.7, start_y=0.7),
    )
    red = object_crop(frame, PALETTE, COLOURS.index("red"), 32)
    blue = object_crop(frame, PALETTE, COLOURS.index("blue"), 32)
    lone_circle = object_crop(
        _frame(ObjectSpec("circle", "red", size="large")), PALETTE, COLOURS.index("red"), 32
    )
    assert (red - lone_circle).abs().mean() < 0.05  # the star beside it is left out
    assert (blue[0] - red[0]).abs().mean() > 0.1  # a star is not a circle


def _reader_that_sees(shape: str) -> ShapeReader:
    """A reader whose every crop reads as `shape`, with probability e^8 / (e^8 + 3)."""
    torch.manual_seed(0)
    reader = ShapeReader(shapes=list(SHAPES), colours=world_palette(), channels=(8, 8))
    with torch.no_grad():
        reader.net[-1].weight.zero_()
        reader.net[-1].bias.copy_(
            8.0 * torch.nn.functional.one_hot(torch.tensor(SHAPES.index(shape)), len(SHAPES))
        )
    return reader


def test_the_likelihood_sums_over_named_objects_and_charges_missing_ones() -> None:
    reader = _reader_that_sees("star")
    frame = _frame(ObjectSpec("star", "red", size="large"))
    red, blue = COLOURS.index("red"), COLOURS.index("blue")
    star, square = SHAPES.index("star"), SHAPES.index("square")
    p_star = math.exp(8) / (math.exp(8) + 3)
    images = frame[None].expand(4, -1, -1, -1)
    colours = torch.tensor([[red, -1], [red, -1], [blue, -1], [red, blue]])
    shapes = torch.tensor([[star, -1], [square, -1], [star, -1], [star, star]])
    got = reader.log_likelihood(images, colours, shapes)
    want = [
        math.log(p_star),  # the star asked, read as one
        math.log((1 - p_star) / 3),  # a square asked: the reader sees a star
        math.log(MISSING),  # no blue object on the frame
        math.log(p_star) + math.log(MISSING),  # two asked, one there
    ]
    assert np.allclose(got.numpy(), want, atol=1e-4)


def test_a_saved_reader_loads_with_its_record(tmp_path) -> None:
    reader = _reader_that_sees("circle")
    reader.register_to_config(weight=3.0)
    reader.save_pretrained(tmp_path / "shape_reader")
    (tmp_path / "shape_reader" / "training.json").write_text('{"steps": 2}')
    loaded = load_shape_reader(tmp_path / "shape_reader")
    assert loaded.record == {"steps": 2} and loaded.config.weight == 3.0
    crops = torch.rand(3, 2, 32, 32)
    assert torch.allclose(loaded(crops), reader(crops))
    assert torch.equal(loaded.palette, reader.palette)


def test_a_first_round_of_no_frames_is_refused_by_name() -> None:
    with pytest.raises(InvalidParameter, match="first_round must be 1 or more, got 0"):
        ShapeReader(shapes=list(SHAPES), colours=world_palette(), sure=-0.2, first_round=0)


def test_the_likelihood_has_a_gradient_through_the_objects_pixels() -> None:
    """The differentiable likelihood equals the plain one; its gradient lies on the asked
    object's pixels and around them (its window), none on a frame with nothing to read."""
    torch.manual_seed(0)
    reader = ShapeReader(shapes=list(SHAPES), colours=world_palette(), channels=(8, 8))
    frame = _frame(ObjectSpec("triangle", "red", size="small"))
    images = frame[None].repeat(2, 1, 1, 1).requires_grad_(True)
    red, blue = COLOURS.index("red"), COLOURS.index("blue")
    colours = torch.tensor([[red], [blue]])  # the second asks for a blue object: none there
    shapes = torch.tensor([[SHAPES.index("triangle")], [SHAPES.index("triangle")]])
    got = reader.differentiable_log_likelihood(images, colours, shapes)
    torch.testing.assert_close(got.detach(), reader.log_likelihood(images, colours, shapes))
    (grad,) = torch.autograd.grad(got.sum(), images)
    assert grad[0].abs().sum() > 0 and grad[1].abs().sum() == 0
    # outside the object's window only the border has any: the background is its median
    where = grad[0].abs().sum(dim=0) > 0
    ys, xs = torch.nonzero(
        (frame - torch.tensor(world_palette()[red])[:, None, None]).norm(dim=0) < 0.1, as_tuple=True
    )
    side = max(int(ys.max() - ys.min()), int(xs.max() - xs.min())) + 1 + 4
    inside = torch.zeros_like(where)
    cy, cx = int(ys.min() + ys.max()) // 2, int(xs.min() + xs.max()) // 2
    inside[max(cy - side, 0) : cy + side, max(cx - side, 0) : cx + side] = True
    inside[[0, -1]] = inside[:, [0, -1]] = True
    assert where[~inside].sum() == 0 and where[inside].sum() > 10


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"guidance": 0}, "guidance must be a step above 0 or null, got 0"),
        ({"guidance": 0.3, "guidance_interval": [2.0, 1.0]}, r"got \[2.0, 1.0\]"),
    ],
)
def test_a_guidance_config_that_cannot_guide_is_refused_by_name(config, message) -> None:
    with pytest.raises(InvalidParameter, match=message):
        ShapeReader(shapes=list(SHAPES), colours=world_palette(), **config)
