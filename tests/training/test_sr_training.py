"""The super-resolution tasks in the training stack: a few real steps on tiny configs, exact
resume, export, load, samples and model card; their config checks; and resuming checkpoints
made before a config field existed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import vidsynth
from vidsynth.errors import InvalidParameter
from vidsynth.testing import SHAPES_SCHEDULER, tiny_vae_config
from vidsynth.training.checkpoint import CheckpointStore
from vidsynth.training.config import DataConfig, parse_config, without_new_defaults
from vidsynth.training.trainer import Trainer, _same_model, train

TINY_VAE = tiny_vae_config(levels=3)  # a spatial factor of 4, like the shapes VAE
IN_CHANNELS = {"spatial-sr": 7, "temporal-sr": 12}
OUT_CHANNELS = {"spatial-sr": 4, "temporal-sr": 3}
DATA = {
    "spatial-sr": {"size": 32, "num_frames": 2, "fps": 16},  # input 8×8 on an 8×8 latent grid
    "temporal-sr": {"size": 16, "num_frames": 4, "fps": 16},  # input 2 frames at 8 fps
}


def tiny_unet(task: str, **overrides) -> dict:
    return {
        "sample_size": 8,
        "in_channels": IN_CHANNELS[task],
        "out_channels": OUT_CHANNELS[task],
        "block_out_channels": [16, 32],
        "down_block_types": ["CrossAttnDownBlock3D", "DownBlock3D"],
        "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D"],
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "cross_attention_dim": 384,
        "attention_head_dim": 4,
        "time_cond_proj_dim": 8,
        "prediction_type": "v_prediction",
        **overrides,
    }


@pytest.fixture(scope="module")
def vae_folder(tmp_path_factory):
    from diffusers import AutoencoderKL

    folder = tmp_path_factory.mktemp("vae") / "final"
    torch.manual_seed(0)
    AutoencoderKL(**TINY_VAE).save_pretrained(folder / "vae")
    return folder


def sr_config(task, out, vae, *, unet=None, sr=None, data=None, **train):
    return parse_config(
        {
            "task": task,
            "output_dir": str(out),
            "data": {**DATA[task], **(data or {})},
            "model": {
                "unet": unet or tiny_unet(task),
                "vae_path": str(vae) if task == "spatial-sr" else "",  # TSR: pixels
                "scheduler": SHAPES_SCHEDULER,
                "sr": sr or {},
                "defaults": {"num_inference_steps": 2, "guidance_scale": 1.0},
            },
            "train": {
                "steps": 4,
                "batch_size": 2,
                "lr": 1e-3,
                "warmup": 1,
                "save_every": 2,
                "log_every": 1,
                "sample_every": 0,
                "sample_steps": 1,
                **train,
            },
        }
    )


@pytest.mark.parametrize("task", ["spatial-sr", "temporal-sr"])
def test_sr_task_trains_resumes_exactly_exports_and_loads(task, tmp_path, vae_folder):
    straight = Trainer(sr_config(task, tmp_path / "a", vae_folder))
    straight.train()
    first = Trainer(sr_config(task, tmp_path / "b", vae_folder, sample_every=4))
    assert first.train(max_steps=2).step == 2
    again = Trainer(sr_config(task, tmp_path / "b", vae_folder, sample_every=4))
    result = again.train()
    assert result.step == 4 and result.exported is not None
    a, b = straight.unwrapped.state_dict(), again.unwrapped.state_dict()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    log = [json.loads(x) for x in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert all(0 <= r["aug_level"] <= 0.5 for r in log)

    # samples: held-out clips super-resolved, with their metrics against the truth
    samples = tmp_path / "b" / "samples" / "step-0000004"
    metrics = json.loads((samples / "metrics.json").read_text())
    assert metrics["task"] == task and "ours" in metrics["metrics"]
    assert (samples / "00-ours.mp4").is_file()

    index = json.loads((result.exported / "model_index.json").read_text())
    assert index["_vidsynth"]["task"] == task
    assert index["_vidsynth"]["sr"]["noise_aug_level"] == 0.1
    pipe = vidsynth.load(result.exported, device="cpu")
    assert pipe.task == task and pipe.unet.config.time_cond_proj_dim == 8
    size = 8 if task == "spatial-sr" else 16
    frames = np.random.default_rng(0).integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    out = pipe(frames, "a red circle", seed=0)
    assert out.frames.shape == ((2, 32, 32, 3) if task == "spatial-sr" else (4, 16, 16, 3))


def trained_with_flag(task: str, flag: str, out, vae):
    """A tiny SR model trained with [model.sr] `flag` on, loaded from its export; the flag
    travels in model_index.json and reaches the pipeline."""
    result = train(sr_config(task, out, vae, sr={flag: True}))
    index = json.loads((result.exported / "model_index.json").read_text())
    assert index["_vidsynth"]["sr"][flag] is True
    pipe = vidsynth.load(result.exported, device="cpu")
    assert getattr(pipe, flag) is True
    return pipe, result.exported


def test_latent_residual_spatial_sr_draws_over_the_bicubic_upscale(tmp_path, vae_folder):
    """With model.sr.latent_residual the UNet's sample is a residual: a zero sample gives the
    VAE's rendering of the bicubic upscale, and the flag travels with the export."""
    from vidsynth.models.sr_conditioning import upscale_pixels
    from vidsynth.models.vae import decode_to_uint8, encode_video
    from vidsynth.pipelines.video_to_video import frames_to_pixels

    pipe, exported = trained_with_flag("spatial-sr", "latent_residual", tmp_path, vae_folder)
    frames = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    params = pipe.check_params(1, num_frames=2, height=32, width=32)
    _, base = pipe.prepare([frames], params, 0.1, [0])
    zero = torch.zeros(pipe.sample_shape(1, params))
    got = pipe.finish(zero, [frames], base, params, 8)
    low = frames_to_pixels(frames, 8, 8, "cpu")
    expected = decode_to_uint8(pipe.vae, encode_video(pipe.vae, upscale_pixels(low, (32, 32))))
    assert np.array_equal(got, expected.numpy())
    # the same weights read as a plain (non-residual) model give another video
    plain = vidsynth.load(exported, device="cpu")
    plain.latent_residual = False
    a = pipe(frames, "a red circle", seed=0).frames
    assert not np.array_equal(a, plain(frames, "a red circle", seed=0).frames)


def test_motion_compensated_temporal_sr_draws_over_the_moved_neighbours(tmp_path, vae_folder):
    """With model.sr.motion_compensation the residual's base is the motion-compensated
    interpolation: a zero sample gives it exactly (the stage's `without_model`), the flag
    travels with the export, and the eval reports that base beside the model's output."""
    from vidsynth.evaluation.super_resolution import BASE_ONLY, evaluate_sr
    from vidsynth.models.sr_conditioning import interpolation
    from vidsynth.pipelines.video_to_video import frames_to_pixels
    from vidsynth.world import ObjectSpec, SceneSpec, render

    pipe, _ = trained_with_flag("temporal-sr", "motion_compensation", tmp_path, vae_folder)
    scene = SceneSpec((ObjectSpec("square", "red", "large", "right", "quickly", 0.3),), "white")
    frames = render(scene, 32, 4)  # 1.1 px per frame: above MIN_MOTION
    params = pipe.check_params(1, num_frames=8, height=32, width=32)
    _, state = pipe.prepare([frames], params, 0.0, [0])
    zero = torch.zeros(pipe.sample_shape(1, params))
    got = pipe.finish(zero, [frames], state, params, 8)[0]
    assert np.array_equal(got, pipe.without_model(frames))
    known = frames_to_pixels(frames, 32, 32, "cpu")
    moved = interpolation(known, 2, motion_compensation=True)
    assert moved.flow.any()
    plain = interpolation(known, 2)
    assert not torch.equal(moved.base, plain.blend)
    report = evaluate_sr(pipe, clips=1, size=16, num_frames=4, fps=8)
    assert set(report.metrics) == {"ours", BASE_ONLY, "blend", "repeat"}


@pytest.mark.parametrize("task", ["spatial-sr", "temporal-sr"])
def test_sr_training_draws_its_timesteps_with_train_timestep_shift(
    task, tmp_path, vae_folder, monkeypatch
):
    from vidsynth.training import objectives

    shifts = []
    draw = objectives.sample_timesteps

    def spy(num_train_timesteps, batch, shift, *args, **kwargs):
        shifts.append(shift)
        return draw(num_train_timesteps, batch, shift, *args, **kwargs)

    monkeypatch.setattr(objectives, "sample_timesteps", spy)
    train(sr_config(task, tmp_path, vae_folder, steps=2, timestep_shift=8.0))
    assert shifts == [8.0, 8.0]


def test_sr_model_card_carries_the_figures(tmp_path, vae_folder):
    from vidsynth.evaluation.super_resolution import evaluate_sr
    from vidsynth.training.model_card import write_sr_model_card

    result = train(sr_config("spatial-sr", tmp_path, vae_folder, steps=1))
    pipe = vidsynth.load(result.exported, device="cpu")
    report = evaluate_sr(pipe, clips=1, low_size=16, num_frames=2, fps=8).to_dict()
    card = write_sr_model_card(result.exported, report, title="tiny SSR").read_text()
    assert card.startswith("# tiny SSR")
    assert "vidsynth eval --mode sr" in card and "vidsynth train" in card
    assert "| ours |" in card and "| bicubic |" in card and "PSNR over the best baseline" in card
    assert "No attribute worse at the output than at the input" in card


@pytest.mark.parametrize(
    ("task", "change", "message"),
    [
        ("spatial-sr", {"unet": {"in_channels": 4}}, r"in_channels = 7 \(4 latent \+ 3 cond"),
        ("temporal-sr", {"unet": {"in_channels": 9}}, r"in_channels = 12 \(3 RGB \+ 9 cond"),
        ("temporal-sr", {"unet": {"out_channels": 4}}, r"out_channels = 3 \(RGB"),
        ("spatial-sr", {"unet": {"time_cond_proj_dim": None}}, "needs model.unet.time_cond_"),
        ("spatial-sr", {"unet": {"out_channels": 3}}, r"out_channels = 4 \(latent"),
    ],
)
def test_sr_unet_must_fit_the_task(task, change, message, tmp_path, vae_folder):
    config = sr_config(task, tmp_path, vae_folder, unet=tiny_unet(task, **change["unet"]))
    with pytest.raises(InvalidParameter, match=message):
        Trainer(config)


@pytest.mark.parametrize(
    ("task", "sr", "data", "message"),
    [
        ("spatial-sr", {"factr": 4}, {}, r"unknown key\(s\) in \[model.sr\]: factr"),
        ("spatial-sr", {"factor": 1}, {}, "factor must be an integer >= 2"),
        ("spatial-sr", {"aug_max_level": 2.0}, {}, r"aug_max_level must be a number in \[0, 1\]"),
        ("spatial-sr", {"factor": 3}, {}, "data.size=32 .* multiple of model.sr.factor=3"),
        ("temporal-sr", {}, {"num_frames": 5}, "data.num_frames=5 .* multiple of"),
        ("temporal-sr", {"latent_residual": True}, {}, "latent_residual applies to task 'sp"),
        ("spatial-sr", {"latent_residual": 1}, {}, "latent_residual must be true or false"),
        ("spatial-sr", {"motion_compensation": True}, {}, "motion_compensation applies to task"),
        ("temporal-sr", {"motion_compensation": "yes"}, {}, "motion_compensation must be true o"),
    ],
)
def test_sr_config_errors_name_the_problem(task, sr, data, message, tmp_path, vae_folder):
    with pytest.raises(InvalidParameter, match=message):
        sr_config(task, tmp_path, vae_folder, sr=sr, data=data)


def test_sr_settings_only_for_sr_tasks(tmp_path):
    with pytest.raises(InvalidParameter, match=r"\[model.sr\] applies to tasks"):
        parse_config({"task": "vae", "output_dir": str(tmp_path), "model": {"sr": {"factor": 2}}})


def test_paired_world_clips():
    from vidsynth.training.data import WorldClips
    from vidsynth.world.renderer import render
    from vidsynth.world.sampling import sample_scene

    config = DataConfig(size=32, num_frames=4, fps=16)
    plain = next(iter(WorldClips(config, seed=3, start=5)))
    paired = next(iter(WorldClips(config, seed=3, start=5, low_size=8)))
    # the same clip and caption as without the low-resolution copy
    assert torch.equal(plain["video"], paired["video"]) and plain["caption"] == paired["caption"]
    assert "low" not in plain and paired["low"].shape == (3, 4, 8, 8)
    rng = np.random.default_rng([3, 0, 5])
    weights = np.asarray(config.level_weights)
    level = int(rng.choice(config.levels, p=weights / weights.sum()))
    scene = sample_scene(rng, level)
    expected = render(scene, 8, 4, fps=16)
    low = ((paired["low"] + 1) * 127.5).round().permute(1, 2, 3, 0).numpy().astype(np.uint8)
    assert np.array_equal(low, expected)


def test_checkpoints_from_before_a_new_config_field_still_resume(tmp_path):
    """A checkpoint whose saved [model] config predates a field (here: `sr`, as in the
    checkpoints of a text-to-video run started before it existed) resumes while the field
    keeps its default."""
    config = parse_config(
        {
            "task": "vae",
            "output_dir": str(tmp_path),
            "data": {"size": 32, "num_frames": 1},
            "model": {"vae": TINY_VAE},
            "train": {"steps": 2, "batch_size": 1, "save_every": 1, "warmup": 1},
        }
    )
    Trainer(config).train(max_steps=1)
    store = CheckpointStore(tmp_path / "checkpoints")
    state_file = store.latest() / "state.json"
    state = json.loads(state_file.read_text())
    del state["config"]["model"]["sr"]  # what an older vidsynth saved
    state_file.write_text(json.dumps(state))
    trainer = Trainer(config)
    assert trainer.resume() and trainer.step == 1
    assert trainer.train().step == 2


def test_new_default_keys_are_ignored_by_the_resume_check():
    saved = {"unet": {"a": 1}, "vae_path": "v", "defaults": {}}
    current = {**saved, "sr": {}}
    assert without_new_defaults(saved, current) == saved
    assert _same_model(saved, current)
    assert not _same_model(saved, {**saved, "sr": {"factor": 2}})  # not the default
    assert not _same_model({**saved, "sr": {}}, {**saved, "sr": {"factor": 2}})
    assert not _same_model(saved, {**current, "unet": {"a": 2}})


@pytest.mark.parametrize(("task", "crop"), [("spatial-sr", 16), ("temporal-sr", 8)])
def test_sr_stages_train_on_crops_and_resume_exactly(task, crop, tmp_path, vae_folder):
    """train.crop_size: the UNet sees crops (a quarter of the frame here), the run resumes
    exactly, and the exported stage still runs on whole frames."""
    seen = []

    def record(module, args, kwargs):
        seen.append(tuple(args[0].shape[-2:]))

    def config(out):
        return sr_config(task, out, vae_folder, crop_size=crop, steps=3, save_every=1)

    straight = Trainer(config(tmp_path / "a"))
    straight.unwrapped.register_forward_pre_hook(record, with_kwargs=True)
    straight.train()
    latent = crop // 4 if task == "spatial-sr" else crop  # the tiny VAE is ×4
    assert set(seen) == {(latent, latent)}
    Trainer(config(tmp_path / "b")).train(max_steps=1)
    again = Trainer(config(tmp_path / "b"))
    result = again.train()
    a, b = straight.unwrapped.state_dict(), again.unwrapped.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    pipe = vidsynth.load(result.exported, device="cpu")
    size = 8 if task == "spatial-sr" else 16
    frames = np.zeros((2, size, size, 3), dtype=np.uint8)
    out = pipe(frames, "a red circle", seed=0)
    assert out.frames.shape == ((2, 32, 32, 3) if task == "spatial-sr" else (4, 16, 16, 3))


@pytest.mark.parametrize(
    ("task", "train", "message"),
    [
        ("spatial-sr", {"crop_size": 12}, r"crop_size=12 must be a multiple of 8"),
        ("temporal-sr", {"crop_size": 7}, r"crop_size=7 must be a multiple of 2"),
    ],
)
def test_crops_must_fit_the_model_grid(task, train, message, tmp_path, vae_folder):
    with pytest.raises(InvalidParameter, match=message):
        Trainer(sr_config(task, tmp_path, vae_folder, **train))


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"crop_size": 64}, r"crop_size must be an integer in \[1, data.size=32\]"),
        ({"crop_size": 16, "crop_focus": 1.5}, r"crop_focus must be in \[0, 1\]"),
    ],
)
def test_crop_settings_are_checked(train, message, tmp_path, vae_folder):
    with pytest.raises(InvalidParameter, match=message):
        sr_config("spatial-sr", tmp_path, vae_folder, **train)


def test_crops_are_for_sr_stages_only(tmp_path):
    config = {"task": "vae", "output_dir": str(tmp_path), "train": {"crop_size": 16}}
    with pytest.raises(InvalidParameter, match=r"train\.crop_size applies to tasks"):
        parse_config(config)
