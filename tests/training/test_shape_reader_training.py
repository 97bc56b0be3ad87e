"""Training the shape reader on rendered crops and on judged crops of a model's own frames."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import vidsynth.training.shape_reader as training
from vidsynth.errors import InvalidParameter
from vidsynth.models.shape_reader import ShapeReader
from vidsynth.testing import interrupted_on_call
from vidsynth.training.data import world_palette
from vidsynth.world.renderer import render
from vidsynth.world.spec import COLOURS, SHAPES, ObjectSpec, SceneSpec


@pytest.mark.slow
def test_a_short_run_reads_the_shapes_of_held_out_renders() -> None:
    torch.manual_seed(0)
    reader, report = training.train_shape_reader(None, frames=400, steps=300, batch_size=32, seed=0)
    # four shapes: a quarter by chance
    assert report.held_out_accuracy > 0.85, report
    assert report.own_crops == 0 and np.isnan(report.held_out_own_agreement)
    assert report.rendered_crops > 400  # one or two objects a frame, nearly all found
    # a large object of each shape, drawn anew, reads as its own on either background
    crops = []
    for shape in SHAPES:
        for background, colour in (("black", "green"), ("white", "red")):
            obj = ObjectSpec(shape, colour, size="large")
            scene = SceneSpec(objects=(obj,), background=background)
            image = torch.from_numpy(render(scene, 64, frames=[0])[0]).permute(2, 0, 1) / 255
            crops.append(reader.crop(image, COLOURS.index(colour)))
    with torch.no_grad():
        assert reader(torch.stack(crops)).argmax(dim=1).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_own_crops_carry_the_judges_verdict_per_object() -> None:
    scene = SceneSpec(
        objects=(
            ObjectSpec("star", "red", size="large", start_x=0.3, start_y=0.3),
            ObjectSpec("square", "blue", size="large", start_x=0.7, start_y=0.7),
        ),
        background="white",
    )
    frame = render(scene, 64, frames=[0])[0]
    red, blue = COLOURS.index("red"), COLOURS.index("blue")
    star = SHAPES.index("star")
    drawn = {
        "frames": frame[None, None],  # one caption, one candidate
        "objects": np.array([[(red, star), (blue, star)]]),  # a blue star was asked
        "right": np.array([[[True, False]]]),
    }
    reader = ShapeReader(shapes=list(SHAPES), colours=world_palette())
    crops = training.own_crops(reader, drawn)
    assert crops.images.shape == (2, 2, 32, 32)
    assert crops.shapes.tolist() == [star, star] and crops.right.tolist() == [1.0, 0.0]
    # the judge's verdict decides which way a crop pulls: believing less in the star asked
    # costs where the judge saw one and pays where it did not
    right = dataclasses.replace(crops, images=crops.images[:1], shapes=crops.shapes[:1])
    right.right = crops.right[:1]
    wrong = dataclasses.replace(crops, images=crops.images[1:], shapes=crops.shapes[1:])
    wrong.right = crops.right[1:]

    def own_part(own: training.Crops, star_bias: float) -> float:
        with torch.no_grad():
            reader.net[-1].weight.zero_()
            reader.net[-1].bias.zero_()
            reader.net[-1].bias[star] = star_bias
            ce = torch.nn.functional.cross_entropy(reader(right.images), right.shapes)
            return float(training.reader_loss(reader, right, own) - ce)

    assert own_part(right, -3.0) > own_part(right, 0.0)
    assert own_part(wrong, -3.0) < own_part(wrong, 0.0)


def test_a_killed_run_resumes_where_it_stopped(tmp_path, monkeypatch) -> None:
    """Killed after two saved steps and run again, the reader ends as an unbroken run's."""
    settings = {"frames": 64, "steps": 4, "batch_size": 8}
    torch.manual_seed(0)
    whole, report = training.train_shape_reader(None, **settings)
    folder = tmp_path / "checkpoints"
    monkeypatch.setattr(training, "reader_loss", interrupted_on_call(training.reader_loss, 3))
    with pytest.raises(KeyboardInterrupt):
        training.train_shape_reader(None, **settings, checkpoints=folder, checkpoint_every=2)
    monkeypatch.undo()
    assert (folder / "latest").read_text() == "step-0000002"
    torch.manual_seed(0)
    resumed, again = training.train_shape_reader(
        None, **settings, checkpoints=folder, checkpoint_every=2
    )
    for name, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    same = dataclasses.replace(again, train_seconds=report.train_seconds)
    assert same.held_out_accuracy == report.held_out_accuracy and same.steps == report.steps
    with pytest.raises(InvalidParameter, match="are of another run"):
        training.train_shape_reader(None, frames=64, steps=6, batch_size=8, checkpoints=folder)
