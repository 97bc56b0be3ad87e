"""Training data: the endless world stream and a folder of the user's own clips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidsynth.errors import InvalidParameter
from vidsynth.evaluation.prompts import eval_prompt_strings, normalise
from vidsynth.io.video import write_video
from vidsynth.training.config import DataConfig
from vidsynth.training.data import FolderClips, WorldClips, read_metadata


def test_world_stream_is_reproducible_and_resumable():
    config = DataConfig(size=32, num_frames=4)
    full = WorldClips(config, seed=3)
    a = [full.sample(i) for i in range(6)]
    resumed = iter(WorldClips(config, seed=3, start=4))
    b = next(resumed)
    assert torch.equal(a[4]["video"], b["video"]) and a[4]["caption"] == b["caption"]
    assert a[0]["video"].shape == (3, 4, 32, 32)
    assert a[0]["video"].min() >= -1 and a[0]["video"].max() <= 1
    assert len({s["caption"] for s in a}) == 6


def test_shape_weights_show_a_shape_more_often_and_stay_resumable():
    from vidsynth.world.parse import parse_caption

    def star_share(config: DataConfig, n: int = 300) -> float:
        stream = WorldClips(config, seed=1)
        shapes = [parse_caption(stream.sample(i)["caption"]).objects[0].shape for i in range(n)]
        return shapes.count("star") / n

    plain = DataConfig(size=16, num_frames=1, levels=[1], level_weights=[1.0])
    weighted = DataConfig(**{**plain.__dict__, "shape_weights": {"star": 3.0}})
    # Uniform shapes give a quarter stars; 3× stars give half (3 / (3 + 1 + 1 + 1)).
    assert 0.17 < star_share(plain) < 0.33
    assert 0.42 < star_share(weighted) < 0.58
    full = [WorldClips(weighted, seed=2).sample(i)["caption"] for i in range(5)]
    assert next(iter(WorldClips(weighted, seed=2, start=3)))["caption"] == full[3]


def test_world_stream_never_shows_an_eval_prompt():
    held_out = eval_prompt_strings()
    stream = WorldClips(DataConfig(size=16, num_frames=1), seed=0)
    captions = [stream.sample(i)["caption"] for i in range(400)]
    assert not any(normalise(c) in held_out for c in captions)


@pytest.fixture
def clip_folder(tmp_path):
    """Five generated MP4 clips of different sizes and lengths, with a metadata.jsonl."""
    from vidsynth.world.captions import canonical_caption
    from vidsynth.world.renderer import render_clip

    rows = []
    for i, (size, frames) in enumerate([(64, 16), (96, 24), (48, 8), (64, 20), (80, 16)]):
        video, scene = render_clip(i, size=size, num_frames=frames)
        if i == 1:  # a non-square clip: 96×72
            video = video[:, 12:84]
        write_video(tmp_path / "clips" / f"{i}.mp4", video, fps=8)
        rows.append({"file_name": f"clips/{i}.mp4", "text": canonical_caption(scene)})
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return tmp_path


def test_folder_of_mp4_clips(clip_folder):
    ds = FolderClips(DataConfig(source="folder", path=str(clip_folder), size=32, num_frames=12))
    assert len(ds) == 5
    for i in range(len(ds)):
        item = ds[i]
        assert item["video"].shape == (3, 12, 32, 32)
        assert item["caption"].startswith("a")
    # the 8-frame clip is padded with its last frame
    short = ds[2]["video"]
    assert torch.equal(short[:, 8], short[:, 11])


def test_single_frames_of_folder_clips(clip_folder):
    """The images of joint image–video training: one frame, somewhere in the clip."""
    config = DataConfig(source="folder", path=str(clip_folder), size=32, num_frames=12)
    clips, frames = FolderClips(config), FolderClips(config, single_frame=True, seed=1)
    drawn = [frames[0] for _ in range(8)]
    picked = [d["video"] for d in drawn]
    assert picked[0].shape == (3, 1, 32, 32)
    assert all(0 <= d["frame"] < 12 for d in drawn)  # its time in a training window
    whole = clips._decode(0)
    for frame in picked:  # each is one of the clip's frames
        assert min((whole[:, k] - frame[:, 0]).abs().max() for k in range(whole.shape[1])) == 0
    # not always the same frame (clip 0 may stand still: look at all five)
    assert any(len({frames[i]["video"].sum().item() for _ in range(8)}) > 1 for i in range(5))
    # "first": the first frame of its window (clip 2 is shorter than a window: no crop)
    firsts = FolderClips(config, single_frame=True, image_frame="first", seed=1)
    image = firsts[2]
    assert image["frame"] == 0 and torch.equal(image["video"][:, 0], firsts._decode(2)[:, 0])


def test_world_single_frames_come_from_their_own_stream():
    config = DataConfig(size=32, num_frames=4)
    clips = WorldClips(config, seed=3)
    frames = WorldClips(config, seed=3, single_frame=True, stream=1)
    assert frames.sample(0)["video"].shape == (3, 1, 32, 32)
    assert clips.sample(0)["caption"] != frames.sample(0)["caption"]
    same = WorldClips(config, seed=3, single_frame=True)  # stream 0: frames of the same clips
    for i in range(6):  # each frame is the one at the time it says (for a frame embedding)
        clip, frame = clips.sample(i)["video"], same.sample(i)
        assert torch.equal(clip[:, frame["frame"]], frame["video"][:, 0])
    assert len({same.sample(i)["frame"] for i in range(12)}) > 1


def test_first_frame_images_are_where_their_clips_start():
    """image_frame="first": the images a first-frame UNet's image stage learns from are the
    clips' frame 0, so it learns where clips start (a translation starts on the side it
    leaves)."""
    config = DataConfig(size=32, num_frames=4)
    clips = WorldClips(config, seed=5)
    firsts = WorldClips(config, seed=5, single_frame=True, image_frame="first")
    for i in range(6):
        image = firsts.sample(i)
        assert image["frame"] == 0
        assert torch.equal(clips.sample(i)["video"][:, 0], image["video"][:, 0])


def test_folder_clip_content_matches_the_render(clip_folder):
    from vidsynth.world.renderer import render_clip

    ds = FolderClips(DataConfig(source="folder", path=str(clip_folder), size=64, num_frames=16))
    expected, _ = render_clip(0, size=64, num_frames=16)
    got = ((ds[0]["video"].permute(1, 2, 3, 0) + 1) * 127.5).numpy()
    assert np.abs(got - expected).mean() < 4  # H.264 round trip only


def test_csv_metadata_and_errors(tmp_path, clip_folder):
    (clip_folder / "metadata.jsonl").unlink()
    (clip_folder / "metadata.csv").write_text("video,caption\nclips/0.mp4,a red ball\n")
    assert read_metadata(clip_folder)[0][1] == "a red ball"
    (clip_folder / "metadata.csv").write_text("video,caption\nclips/missing.mp4,x\n")
    with pytest.raises(InvalidParameter, match="video not found"):
        read_metadata(clip_folder)
    (clip_folder / "metadata.csv").write_text("movie,caption\nclips/0.mp4,x\n")
    with pytest.raises(InvalidParameter, match="needs a video"):
        read_metadata(clip_folder)
    with pytest.raises(InvalidParameter, match="no metadata"):
        read_metadata(tmp_path / "clips")


def test_each_object_of_a_world_clip_has_a_guide_that_follows_it():
    """The guide rows of two-object clips (``object_guides``), their objects found by colour
    (``trainer.clip_guides``), animate the first frame close to the clip itself: each object
    goes its own way, where the first frame held still is far off."""
    from torch.utils.data import default_collate

    from vidsynth.models.first_frame import warp_scene
    from vidsynth.training.trainer import clip_guides
    from vidsynth.world.spec import COLOURS

    config = DataConfig(size=64, num_frames=16, levels=[2], level_weights=[1.0])
    batch = default_collate([WorldClips(config, seed=3).sample(i) for i in range(6)])
    assert batch["motion"].shape == (6, 2, 4) and batch["centre"].shape == (6, 2, 2)
    assert (batch["colour"] >= 0).all() and (batch["colour"] < len(COLOURS)).all()
    video = batch["video"]
    first = video[:, :, :1]
    animated = warp_scene(video[:, :, 0], clip_guides(batch, video, 16))
    still = ((first - video) ** 2).mean(dim=(1, 2, 3, 4))
    guided = ((animated - video) ** 2).mean(dim=(1, 2, 3, 4))
    moving = still > 1e-3  # clips where something moves
    assert moving.sum() >= 4
    assert (guided[moving] < still[moving] / 4).all(), (guided, still)
    # one object: a guide row for it, and an empty one
    one = WorldClips(DataConfig(size=32, num_frames=4, levels=[1], level_weights=[1.0])).sample(0)
    assert one["colour"][1] == -1 and not one["motion"][1].any()
