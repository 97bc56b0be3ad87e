"""A few real training steps on tiny configs: loss goes down, kills are survivable, resume is
exact, and the exported model loads and generates."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from vidsynth.errors import InvalidParameter
from vidsynth.testing import SHAPES_SCHEDULER, tiny_image_unet_config, tiny_vae_config
from vidsynth.training.checkpoint import CheckpointStore
from vidsynth.training.config import load_config, parse_config
from vidsynth.training.trainer import Trainer, latent_space_fingerprint, train

TINY_VAE = tiny_vae_config(levels=3)  # a spatial factor of 4, like the shapes VAE
TINY_UNET = {
    "sample_size": 8,
    "block_out_channels": [16, 32],
    "down_block_types": ["CrossAttnDownBlock3D", "DownBlock3D"],
    "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D"],
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "cross_attention_dim": 384,
    "attention_head_dim": 4,
    "prediction_type": "v_prediction",
}


def vae_config(out, **train):
    return parse_config(
        {
            "task": "vae",
            "output_dir": str(out),
            "data": {"size": 32, "num_frames": 2},
            "model": {"vae": TINY_VAE},
            "train": {
                "steps": 6,
                "batch_size": 2,
                "lr": 1e-3,
                "warmup": 1,
                "save_every": 3,
                "log_every": 1,
                **train,
            },
        }
    )


def t2v_config(out, vae_path, **train):
    return parse_config(
        {
            "task": "text-to-video",
            "output_dir": str(out),
            "data": {"size": 32, "num_frames": 4},
            "model": {
                "unet": TINY_UNET,
                "vae_path": str(vae_path),
                "scheduler": SHAPES_SCHEDULER,
                "defaults": {"num_inference_steps": 2, "guidance_scale": 3.0},
            },
            "train": {
                "steps": 4,
                "batch_size": 2,
                "lr": 1e-3,
                "warmup": 1,
                "save_every": 2,
                "log_every": 1,
                "sample_every": 4,
                "sample_prompts": ["a red circle moving right"],
                "sample_steps": 2,
                **train,
            },
        }
    )


@pytest.fixture(scope="module")
def trained_vae(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae")
    result = train(vae_config(out))
    assert result.exported is not None
    return result.exported


def test_vae_run_exports_fp16_diffusers_folder(trained_vae):
    from diffusers import AutoencoderKL
    from safetensors.torch import load_file

    stored = load_file(trained_vae / "vae" / "diffusion_pytorch_model.safetensors")
    assert {t.dtype for t in stored.values()} == {torch.float16}
    vae = AutoencoderKL.from_pretrained(trained_vae / "vae")  # loads as diffusers' own folder
    assert vae.config.scaling_factor != 0.18215  # calibrated to this VAE's latents
    log = [
        json.loads(x) for x in (trained_vae.parent / "train_log.jsonl").read_text().split("\n") if x
    ]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5, 6]


def test_the_loop_optimises(tmp_path, monkeypatch):
    """On one repeated batch the trainer must drive the loss down (a wiring check: optimizer,
    scheduler, accumulation). Fresh world batches are too varied to show it in a few steps."""
    from vidsynth.training import trainer as trainer_module

    real = trainer_module._batches

    def one_batch(*args, **kwargs):
        batch = next(real(*args, **kwargs))
        while True:
            yield batch

    monkeypatch.setattr(trainer_module, "_batches", one_batch)
    Trainer(vae_config(tmp_path, steps=50, lr=3e-3, save_every=1000, grad_accum=2)).train()
    log = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().split("\n") if x]
    first = np.mean([r["loss"] for r in log[:5]])
    last = np.mean([r["loss"] for r in log[-5:]])
    assert last < 0.6 * first, (first, last)


def test_resume_continues_exactly(tmp_path, trained_vae):
    """Stopping after 2 steps and resuming gives the same weights as 4 steps in one go."""
    straight = Trainer(t2v_config(tmp_path / "a", trained_vae, sample_every=0))
    straight.train()
    first = Trainer(t2v_config(tmp_path / "b", trained_vae, sample_every=0))
    assert first.train(max_steps=2).step == 2
    again = Trainer(t2v_config(tmp_path / "b", trained_vae, sample_every=0))
    result = again.train()
    assert result.step == 4 and result.exported is not None
    a, b = straight.unwrapped.state_dict(), again.unwrapped.state_dict()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key


def test_joint_image_video_training_resumes_exactly(tmp_path, trained_vae):
    """With train.image_batch_size each step also trains on single frames of other scenes;
    the image stream resumes at its exact position too."""
    joint = {"sample_every": 0, "image_batch_size": 3}
    straight = Trainer(t2v_config(tmp_path / "a", trained_vae, **joint))
    straight.train()
    assert straight.images_seen == 4 * 3
    assert straight.image_frame() == "random"  # "auto", and the UNet has no first-frame input
    log = [json.loads(x) for x in (tmp_path / "a" / "train_log.jsonl").read_text().split("\n") if x]
    assert all(r["image_mse"] > 0 for r in log)
    Trainer(t2v_config(tmp_path / "b", trained_vae, **joint)).train(max_steps=2)
    again = Trainer(t2v_config(tmp_path / "b", trained_vae, **joint))
    assert again.train().step == 4 and again.images_seen == 12
    a, b = straight.unwrapped.state_dict(), again.unwrapped.state_dict()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    # and the images changed the run: it differs from video-only training
    video_only = Trainer(t2v_config(tmp_path / "c", trained_vae, sample_every=0))
    video_only.train()
    weight = "down_blocks.0.attentions.0.proj_in.weight"
    assert not torch.allclose(a[weight], video_only.unwrapped.state_dict()[weight])


def test_image_batches_are_single_frames_of_other_scenes(tmp_path, trained_vae):
    from vidsynth.training.trainer import _batches

    config = t2v_config(tmp_path, trained_vae, image_batch_size=5)
    images = next(_batches(config, 0, 0, 0, images=True))
    clips = next(_batches(config, 0, 0, 0))
    assert images["video"].shape == (5, 3, 1, 32, 32)
    assert images["caption"][:2] != clips["caption"][:2]
    later = next(_batches(config, 0, 0, 5, images=True))  # resuming after 5 images
    it = _batches(config, 0, 0, 0, images=True)
    next(it)
    assert torch.equal(later["video"], next(it)["video"])


def test_loader_workers_render_ahead_in_the_same_order(tmp_path, trained_vae):
    """train.num_workers: the batches (clips and images) are those of a single process,
    from the start and from a resumed sample index."""
    from vidsynth.training.trainer import _batches

    plain = t2v_config(tmp_path, trained_vae, image_batch_size=3)
    workers = t2v_config(tmp_path, trained_vae, image_batch_size=3, num_workers=2)
    for start, images in [(0, False), (7, False), (5, True)]:
        a, b = (
            _batches(plain, 0, 0, start, images=images),
            _batches(workers, 0, 0, start, images=images),
        )
        for _ in range(3):
            x, y = next(a), next(b)
            assert x["caption"] == y["caption"] and torch.equal(x["video"], y["video"])


def test_loader_workers_are_for_the_world_source(tmp_path):
    config = {
        "task": "vae",
        "output_dir": str(tmp_path),
        "data": {"source": "folder", "path": str(tmp_path)},
        "train": {"num_workers": 2},
    }
    with pytest.raises(InvalidParameter, match=r"num_workers applies to data\.source = 'world'"):
        parse_config(config)
    config = {"task": "vae", "output_dir": str(tmp_path), "train": {"num_workers": -1}}
    with pytest.raises(InvalidParameter, match="num_workers must be an integer >= 0"):
        parse_config(config)


def test_learning_rate_warms_up_holds_and_decays_over_the_last_steps():
    from vidsynth.training.config import TrainConfig
    from vidsynth.training.trainer import lr_factor

    tc = TrainConfig(steps=100, warmup=10, lr_decay_steps=20, lr_final=0.1)
    factors = [lr_factor(s, tc) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == 1.0  # warmup
    assert set(factors[9:80]) == {1.0}  # stable
    assert all(a > b for a, b in itertools.pairwise(factors[79:]))  # decay
    assert factors[99] == pytest.approx(0.1)
    assert lr_factor(50, TrainConfig(steps=100, warmup=10)) == 1.0  # no decay by default


def test_a_decay_added_to_a_running_config_applies_from_the_next_step(tmp_path, trained_vae):
    """Two stable steps, then resumed with the last two decayed: the same weights as a run
    with the decay from the start (whose first two steps are stable too)."""
    straight = Trainer(t2v_config(tmp_path / "a", trained_vae, sample_every=0, lr_decay_steps=2))
    straight.train()
    Trainer(t2v_config(tmp_path / "b", trained_vae, sample_every=0)).train(max_steps=2)
    decayed = Trainer(t2v_config(tmp_path / "b", trained_vae, sample_every=0, lr_decay_steps=2))
    decayed.train()
    a, b = straight.unwrapped.state_dict(), decayed.unwrapped.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    plain = Trainer(t2v_config(tmp_path / "c", trained_vae, sample_every=0))
    plain.train()
    c = plain.unwrapped.state_dict()
    assert not all(torch.allclose(a[k], c[k], atol=1e-6) for k in a)  # the decay mattered


def test_kill_mid_checkpoint_keeps_the_last_good_one(tmp_path, trained_vae, monkeypatch):
    config = t2v_config(tmp_path, trained_vae, sample_every=0)
    Trainer(config).train(max_steps=2)
    store = CheckpointStore(tmp_path / "checkpoints")
    good = store.latest()
    # a kill in the middle of writing the next checkpoint leaves a .tmp folder behind
    (tmp_path / "checkpoints" / "step-0000004.tmp").mkdir()
    (tmp_path / "checkpoints" / "step-0000004.tmp" / "model.pt").write_bytes(b"trunc")
    trainer = Trainer(config)
    assert trainer.resume() and trainer.step == 2 and store.latest() == good
    assert not (tmp_path / "checkpoints" / "step-0000004.tmp").exists()


def test_t2v_run_samples_exports_and_generates(tmp_path, trained_vae):
    import vidsynth

    result = train(t2v_config(tmp_path, trained_vae))
    assert (tmp_path / "samples" / "step-0000004" / "00.mp4").is_file()
    scores = json.loads((tmp_path / "samples" / "step-0000004" / "scores.json").read_text())
    assert "a red circle moving right" in scores
    pipe = vidsynth.load(result.exported, device="cpu")
    assert pipe.unet.config.prediction_type == "v_prediction"
    assert pipe.scheduler().config.prediction_type == "v_prediction"
    clip = pipe("a blue square", seed=0)
    assert clip.frames.shape == (4, 32, 32, 3)


def test_resuming_with_another_model_config_is_refused(tmp_path):
    from vidsynth.errors import InvalidParameter

    Trainer(vae_config(tmp_path)).train(max_steps=1)
    changed = vae_config(tmp_path)
    changed.model.vae = {**TINY_VAE, "block_out_channels": [8, 8, 16]}
    with pytest.raises(InvalidParameter, match="different \\[model\\] config"):
        Trainer(changed).train()


def test_config_errors_name_the_problem(tmp_path):
    from vidsynth.errors import InvalidParameter

    bad = tmp_path / "bad.toml"
    bad.write_text('task = "vae"\noutput_dir = "x"\n[train]\nstepz = 3\n')
    with pytest.raises(InvalidParameter, match="stepz"):
        load_config(bad)
    bad.write_text('task = "t2v"\noutput_dir = "x"\n')
    with pytest.raises(InvalidParameter, match="task must be"):
        load_config(bad)
    bad.write_text('task = "vae"\noutput_dir = "x"\n[train]\nimage_batch_size = 4\n')
    with pytest.raises(InvalidParameter, match=r"image_batch_size .* 'text-to-video' only"):
        load_config(bad)
    t2v = 'task = "text-to-video"\noutput_dir = "x"\n[model]\nvae_path = "v"\n'
    bad.write_text(t2v + '[train]\nimage_frame = "last"\n')
    with pytest.raises(InvalidParameter, match=r"image_frame must be one of .* not 'last'"):
        load_config(bad)
    bad.write_text(t2v + "[data]\nshape_weights = { hexagon = 2 }\n")
    with pytest.raises(InvalidParameter, match=r"unknown shape 'hexagon' \(the world's: circle"):
        load_config(bad)
    bad.write_text(t2v + "[data]\nshape_weights = { star = 0 }\n")
    with pytest.raises(InvalidParameter, match=r"shape_weights\.star must be a number > 0"):
        load_config(bad)
    folder = '[data]\nsource = "folder"\npath = "clips"\n'
    bad.write_text(t2v + folder + "shape_weights = { star = 2 }\n")
    with pytest.raises(InvalidParameter, match=r"shape_weights applies to data\.source = 'world'"):
        load_config(bad)
    good = tmp_path / "good.toml"
    good.write_text('task = "vae"\noutput_dir = "x"\n')
    assert load_config(good, ["train.steps=7", 'data.source="world"']).train.steps == 7
    weighted = load_config(good, ["data.shape_weights.star=2"])
    assert weighted.data.shape_weights == {"star": 2}


def test_cli_train_then_export(tmp_path):
    from vidsynth.cli import main

    config = tmp_path / "vae.toml"
    # JSON of a flat dict of strings, numbers and lists is a TOML inline table once ':' → '='
    vae = json.dumps(TINY_VAE).replace('":', '" =')
    config.write_text(
        f'task = "vae"\noutput_dir = "{tmp_path / "run"}"\n'
        f"[data]\nsize = 32\nnum_frames = 2\n[model]\nvae = {vae}\n"
        "[train]\nsteps = 5\nbatch_size = 2\nsave_every = 2\n"
    )
    assert main(["train", str(config), "--max-steps", "2", "--set", "train.lr=0.001"]) == 0
    exported = tmp_path / "exported"
    assert main(["train", str(config), "--set", "train.lr=0.001", "--export", str(exported)]) == 0
    assert (exported / "vae" / "config.json").is_file()
    assert json.loads((exported / "training.json").read_text())["overrides"] == ["train.lr=0.001"]
    assert main(["train", str(config)]) == 0  # resumes and finishes
    assert (tmp_path / "run" / "final" / "vae").is_dir()


def test_model_card_gives_the_whole_command_and_the_decay():
    from vidsynth.training.model_card import _training_lines

    record = {
        "config_file": "configs/x.toml",
        "overrides": ["output_dir=runs/branch", "train.lr_decay_steps=250"],
        "step": 7000,
        "config": {"train": {"batch_size": 8, "lr_decay_steps": 250, "lr_final": 0.05}},
    }
    (line,) = _training_lines("UNet", record)
    command = "`vidsynth train configs/x.toml --set output_dir=runs/branch --set train.lr_decay"
    assert command in line
    assert "decayed linearly to 0.05× over the last 250 steps" in line


@pytest.fixture(scope="module")
def decoder_finetuned_vae(trained_vae, tmp_path_factory):
    config = vae_config(tmp_path_factory.mktemp("dec"), freeze_encoder=True, steps=3, lr=1e-2)
    config.model.init_from = str(trained_vae)
    return train(config).exported


def test_decoder_only_finetune_keeps_the_latent_space(trained_vae, decoder_finetuned_vae):
    """freeze_encoder: the encoder (and so every latent a UNet was trained on) is unchanged,
    while the decoder learns; the export records the run it continued."""
    from diffusers import AutoencoderKL

    before = AutoencoderKL.from_pretrained(trained_vae / "vae").state_dict()
    after = AutoencoderKL.from_pretrained(decoder_finetuned_vae / "vae").state_dict()
    for name, value in before.items():
        if name.startswith(("encoder.", "quant_conv.")):
            assert torch.equal(value, after[name]), name
    assert not all(torch.equal(before[n], after[n]) for n in before if n.startswith("decoder."))
    record = json.loads((decoder_finetuned_vae / "training.json").read_text())
    assert record["init"]["step"] == 6 and record["step"] == 3
    assert latent_space_fingerprint(trained_vae) == latent_space_fingerprint(decoder_finetuned_vae)


def test_t2v_resumes_on_a_decoder_finetuned_vae_only(tmp_path, trained_vae, decoder_finetuned_vae):
    """A UNet run may move to a VAE with the same latent space (not to another VAE) and change
    its sampling defaults; the card of its export lists both VAE runs."""
    from vidsynth.training.model_card import write_model_card

    Trainer(t2v_config(tmp_path / "t2v", trained_vae, sample_every=0)).train(max_steps=2)
    other_vae = train(vae_config(tmp_path / "other", seed=1)).exported
    with pytest.raises(InvalidParameter, match="different \\[model\\] config"):
        Trainer(t2v_config(tmp_path / "t2v", other_vae)).train()
    moved = t2v_config(tmp_path / "t2v", decoder_finetuned_vae, sample_every=0)
    moved.model.defaults = {"num_inference_steps": 3, "guidance_scale": 4.0}  # sampling only
    result = Trainer(moved).train()
    assert result.step == 4 and result.exported is not None
    index = json.loads((result.exported / "model_index.json").read_text())
    assert index["_vidsynth"]["defaults"]["guidance_scale"] == 4.0
    report = {
        "accuracy": {"canonical": {a: 1.0 for a in ("colour", "shape", "motion", "background")}},
        "counts": {"canonical": 1},
        "seconds_per_video": 0.5,
        "settings": {"version": "v1"},
    }
    report["accuracy"]["canonical"]["all_correct"] = 1.0
    card = write_model_card(result.exported, report, title="tiny").read_text()
    vae_lines = [line for line in card.splitlines() if line.startswith("- VAE")]
    assert len(vae_lines) == 2 and "encoder frozen" in vae_lines[1], vae_lines


def test_finetuning_adds_a_first_frame_input_and_generates_in_two_stages(tmp_path, trained_vae):
    """model.init_from with model.unet.first_frame: the UNet gains the first-frame input,
    learns to use it, and the exported model draws a clip's first frame as an image from the
    text, then the clip from the text and that frame; a clip still depends only on its prompt
    and seed."""
    from vidsynth.pipelines.loading import load
    from vidsynth.training.model_card import write_model_card

    base = Trainer(t2v_config(tmp_path / "base", trained_vae, sample_every=0)).train()
    config = t2v_config(
        tmp_path / "ft", trained_vae, sample_every=0, image_batch_size=2, first_frame_dropout=0.5
    )
    config.model.init_from = str(base.exported)
    config.model.unet = {**config.model.unet, "first_frame": True, "frame_embedding": True}
    trainer = Trainer(config)
    unet = trainer.unwrapped
    assert unet.config.first_frame and unet.config.in_channels == 2 * 4 + 1
    # its image stage draws first frames, so by default it learns from first frames
    assert trainer.image_frame() == "first"
    assert not unet.conv_in.weight[:, 4:].any()
    result = trainer.train()
    assert unet.conv_in.weight[:, 4:].abs().max() > 0  # it learned from the first frames

    config.model.first_frame_warm_start = 0.5
    config.output_dir = str(tmp_path / "warm")
    weight = Trainer(config).unwrapped.conv_in.weight
    assert torch.equal(weight[:, 4:8], 0.5 * weight[:, :4])

    pipe = load(result.exported)
    assert pipe.unet.config.first_frame
    calls = []
    forward = pipe.unet.forward

    def spy(sample, t, context, **kwargs):
        concat = kwargs["concat"]
        calls.append(
            (sample.shape[2], kwargs["independent_frames"], concat[:, -1, 0].mean().item())
        )
        return forward(sample, t, context, **kwargs)

    pipe.unet.forward = spy
    two = pipe.batch(["a red circle moving right", "a blue square"], seeds=[3, 4])
    # 2 steps of the first frame (one frame, no temporal layers, no first frame given), then
    # 2 steps of the clip with it
    assert calls == [(1, True, 0.0)] * 2 + [(4, False, 1.0)] * 2
    one = pipe.batch(["a blue square"], seeds=[4])
    assert np.abs(one[0].frames.astype(int) - two[1].frames.astype(int)).max() <= 1

    # each stage has its own guidance interval: the clip's leaves the first frame's alone
    batches = []

    def count(sample, t, context, **kwargs):
        batches.append((kwargs["independent_frames"], sample.shape[0]))
        return forward(sample, t, context, **kwargs)

    def stages() -> tuple[list[int], list[int]]:
        image = [b for still, b in batches if still]
        clip = [b for still, b in batches if not still]
        batches.clear()
        return image, clip

    pipe.unet.forward = count
    clip_only = pipe("a blue square", seed=4, num_inference_steps=4, guidance_interval=[0.7])
    image, clip = stages()
    assert image == [2] * 4 and clip[0] == 2 and clip[-1] == 1
    assert clip_only.info["guidance_interval"] == [0.7, None]
    assert "first_frame_guidance_interval" not in clip_only.info
    first_only = pipe(
        "a blue square", seed=4, num_inference_steps=4, first_frame_guidance_interval=[0.7]
    )
    image, clip = stages()
    assert image[0] == 2 and image[-1] == 1 and clip == [2] * 4
    assert first_only.info["first_frame_guidance_interval"] == [0.7, None]
    assert "guidance_interval" not in first_only.info
    assert "clip_strength" not in first_only.info  # from pure noise: the default

    # clip_strength < 1: the clip starts from its first frame (standing still: no planner)
    # noised to that share of the schedule, and runs that share of the steps
    drawn = {}
    sample = pipe.sample

    def spy_sample(prompts, negatives, latents, sched, timesteps, *args, **kwargs):
        if kwargs.get("animated") is not None:
            drawn.update(latents=latents, steps=len(timesteps), animated=kwargs["animated"])
        return sample(prompts, negatives, latents, sched, timesteps, *args, **kwargs)

    pipe.sample = spy_sample
    half = pipe("a blue square", seed=4, num_inference_steps=4, clip_strength=0.5)
    image, clip = stages()
    assert len(image) == 4 and len(clip) == 2 and drawn["steps"] == 2
    assert half.info["clip_strength"] == 0.5
    first = drawn["animated"][:, :, 0]
    assert torch.equal(drawn["animated"], first[:, :, None].expand_as(drawn["animated"]))
    # noised, not replaced: correlated with the first frame, yet not equal to it
    noisy = drawn["latents"].float()
    assert (
        torch.corrcoef(torch.stack([noisy.flatten(), drawn["animated"].float().flatten()]))[0, 1]
        > 0.3
    )
    assert not torch.allclose(noisy, drawn["animated"].float(), atol=0.1)
    again = pipe("a blue square", seed=4, num_inference_steps=4, clip_strength=0.5)
    assert np.array_equal(again.frames, half.frames)  # still a function of prompt and seed
    pipe.sample = sample

    # the first frames in steps of their own; the clip keeps its own
    stages()
    finer = pipe("a blue square", seed=4, num_inference_steps=4, first_frame_steps=7)
    image, clip = stages()
    assert len(image) == 7 and len(clip) == 4
    assert finer.info["first_frame_steps"] == 7
    assert "first_frame_steps" not in first_only.info  # the clip's steps: the default
    plain = pipe("a blue square", seed=4, num_inference_steps=4)
    same = pipe("a blue square", seed=4, num_inference_steps=4, first_frame_steps=4)
    stages()
    assert np.array_equal(same.frames, plain.frames)

    report = {"accuracy": {}, "counts": {}, "seconds_per_video": 1.0, "settings": {}}
    card = write_model_card(result.exported, report, title="t").read_text()
    assert "First-frame input" in card and "single frames (the clips' first frames)" in card


def test_freeze_encoder_is_for_vaes_only(tmp_path, trained_vae):
    with pytest.raises(InvalidParameter, match="freeze_encoder"):
        Trainer(t2v_config(tmp_path / "t", trained_vae, freeze_encoder=True))


def test_frozen_parameters_stay_as_they_were_and_a_pattern_must_match(tmp_path, trained_vae):
    """train.freeze: the parameters a pattern names keep their values (the cross-attention's
    keys and values here), in the model and its EMA; the rest train. A pattern that names
    nothing is refused by name."""
    patterns = ["*attentions*attn2.to_k*", "*attentions*attn2.to_v*"]
    trainer = Trainer(t2v_config(tmp_path / "t", trained_vae, sample_every=0, freeze=patterns))
    before = {n: p.detach().clone() for n, p in trainer.unwrapped.named_parameters()}
    frozen = {n for n in before if "attentions" in n and (".attn2.to_k" in n or ".attn2.to_v" in n)}
    assert frozen
    trainer.train()
    for weights in (dict(trainer.unwrapped.named_parameters()), trainer.ema_model().state_dict()):
        assert all(torch.equal(weights[n], before[n]) for n in frozen)
        moved = [n for n in before if n not in frozen and not torch.equal(weights[n], before[n])]
        assert "conv_in.weight" in moved and any(".attn2.to_q" in n for n in moved)

    # its checkpoints resume only with the same parameters frozen
    other = Trainer(t2v_config(tmp_path / "t", trained_vae, sample_every=0, freeze=patterns[:1]))
    with pytest.raises(InvalidParameter, match=r"were made with train\.freeze = "):
        other.resume()

    with pytest.raises(InvalidParameter, match="pattern 'attn3' matches no parameter"):
        Trainer(t2v_config(tmp_path / "u", trained_vae, freeze=["attn3"]))
    with pytest.raises(InvalidParameter, match=r"train\.freeze must be a list"):
        Trainer(t2v_config(tmp_path / "v", trained_vae, freeze="*attn2*"))


def test_finetuning_adds_frame_and_position_embeddings_to_a_trained_model(tmp_path, trained_vae):
    """model.init_from with model.unet.frame_embedding, position_embedding and
    temporal_position_embedding: the exported model's UNet gains them (the first two
    zero-initialised, trained in fp32 as exports are fp16) on clips and on single frames at
    their times; the result exports and generates."""
    from vidsynth.pipelines.loading import load
    from vidsynth.training.model_card import write_model_card

    base = Trainer(t2v_config(tmp_path / "base", trained_vae, sample_every=0)).train()
    assert base.exported is not None
    # the VAE comes with the model it continues, wherever vae_path points
    config = t2v_config(tmp_path / "ft", tmp_path / "absent", sample_every=0, image_batch_size=2)
    config.model.init_from = str(base.exported)
    config.model.unet = {
        **config.model.unet,
        "frame_embedding": True,
        "frame_embedding_text": True,
        "position_embedding": True,
        "temporal_position_embedding": True,
    }
    trainer = Trainer(config)
    unet = trainer.unwrapped
    assert unet.config.frame_embedding and unet.config.frame_embedding_text
    assert unet.config.position_embedding and unet.transformer_in.frame_positions
    assert unet.dtype == torch.float32
    assert not unet.frame_embedding.mlp.linear_2.weight.any()
    assert not unet.position_embedding.proj.weight.any()
    result = trainer.train()
    # they learned something
    assert unet.frame_embedding.mlp.linear_2.weight.abs().max() > 0
    assert unet.position_embedding.proj.weight.abs().max() > 0
    pipe = load(result.exported)
    assert pipe.unet.config.frame_embedding and pipe.unet.config.position_embedding
    assert pipe.unet.config.temporal_position_embedding and pipe.unet.transformer_in.frame_positions
    clip = pipe("a red circle moving right", seed=0, num_inference_steps=2)
    assert clip.frames.shape == (4, 32, 32, 3)

    report = {"accuracy": {}, "counts": {}, "seconds_per_video": 1.0, "settings": {}}
    card = write_model_card(result.exported, report, title="tiny").read_text()
    assert "Frame embedding" in card and "Position embedding" in card
    assert "Temporal position embedding" in card
    assert "\n- VAE: `vidsynth train" in card  # the VAE's run, recorded by the model it continued
    runs = [line for line in card.splitlines() if line.startswith(("- UNet:", "- UNet,"))]
    base_line, tuned_line = runs
    assert base_line.startswith("- UNet: ") and "— 4 steps" in base_line
    assert tuned_line.startswith("- UNet, fine-tuned from it: ")


def test_a_finetune_resumes_when_its_init_folder_already_has_the_added_modules(
    tmp_path, trained_vae
):
    """A fine-tune that added a frame embedding registers it after every other module; once its
    own export replaces the model folder it started from (as when it becomes the bundled
    model), a rebuilt UNet registers the embedding in its place. Resuming must still give each
    parameter its own optimizer and EMA state (matched by name), not a neighbour's."""
    import shutil

    base = Trainer(t2v_config(tmp_path / "base", trained_vae, sample_every=0)).train()
    config = t2v_config(tmp_path / "ft", trained_vae, sample_every=0)
    config.model.init_from = str(base.exported)
    config.model.unet = {**config.model.unet, "frame_embedding": True}
    first = Trainer(config)
    tuned = first.train(max_steps=2)
    names = [n for n, _ in first.unwrapped.named_parameters()]
    assert names[-1].startswith("frame_embedding.")  # added last
    shutil.rmtree(base.exported)
    shutil.copytree(first.export(tmp_path / "export"), base.exported)

    again = Trainer(config)
    rebuilt = [n for n, _ in again.unwrapped.named_parameters()]
    assert rebuilt != names and sorted(rebuilt) == sorted(names)  # another order
    tensors, _ = again.store.load(tuned.output_dir / "checkpoints" / "step-0000002")
    saved_state = tensors["optimizer"]["state"]
    saved_shadow = tensors["ema"]["shadow_params"]
    assert again.resume() and again.step == 2
    params = dict(again.unwrapped.named_parameters())
    for name in ("frame_embedding.mlp.linear_2.weight", "conv_in.weight"):
        state = again.optimizer.state[params[name]]
        assert torch.equal(state["exp_avg"], saved_state[names.index(name)]["exp_avg"])
        shadow = again.ema.shadow_params[rebuilt.index(name)]
        assert torch.equal(shadow, saved_shadow[names.index(name)])
    assert again.train().step == 4  # and trains on
    # Its export still names the model the run started from, not the folder's new contents.
    record = json.loads((tuned.output_dir / "final" / "training.json").read_text())
    assert record["init"]["step"] == base.step and "init" not in record["init"]


def _two_slot_planner(right: int, still: int, lone: bool = False):
    """A two-slot planner on the world's palette that reads a red object moving right
    (normal speed) in slot `right` and a blue one standing still in slot `still`; `lone`:
    only the red one, moving right."""
    from vidsynth.models.motion_planner import MotionPlanner
    from vidsynth.training.data import world_palette
    from vidsynth.training.planner import world_motions
    from vidsynth.world.spec import COLOURS

    book = world_motions()
    palette = world_palette()
    planner = MotionPlanner(book, hidden_size=384, width=8, heads=2, slots=2, colours=palette)
    motions = [0, 0, 0]
    motions[1 + right], motions[1 + still] = book.index([0.02, 0.0, 0.0, 0.0]), 0
    colours = [0, 0]
    colours[right], colours[still] = COLOURS.index("red"), COLOURS.index("blue")
    if lone:
        motions[0], colours[still] = motions[1 + right], len(COLOURS)
    real = planner.forward

    def forward(context):
        motion, colour = real(context)
        fixed_m = torch.nn.functional.one_hot(torch.tensor(motions), len(book)) * 50.0
        fixed_c = torch.nn.functional.one_hot(torch.tensor(colours), len(COLOURS) + 1) * 50.0
        return motion + fixed_m, colour + fixed_c

    planner.forward = forward
    return planner.eval()


def _picks_the_first_frame_its_scorer_likes(pipe) -> None:
    """`candidates` first frames per clip (the scorer's own number by default), the first from
    the clip's own noise; the one the scorer scores highest is kept."""
    from vidsynth.pipelines.text_to_video import FIRST_FRAME_STREAM
    from vidsynth.sampling.noise import derive_seed

    assert pipe.check_params(1).candidates == 3
    one = pipe.check_params(1, candidates=1)
    stream = derive_seed(5, FIRST_FRAME_STREAM)
    drawn = []
    for j in range(3):
        noise = pipe._noise([stream if j == 0 else derive_seed(stream, j)], one, 1)
        drawn.append(pipe._from_noise(["a red circle"], [""], noise, one, None, image=True))
    assert pipe.first_frame(["a red circle"], [""], [5], one).equal(drawn[0][:, :, 0])
    seen = []

    def likes(j):
        def forward(images, context):
            seen.append(images.shape)
            return (torch.arange(len(images)) % 3 == j).float()

        return forward

    for j in (2, 0, 1):
        pipe.scorer.forward = likes(j)
        first = pipe.first_frame(["a red circle"] * 2, [""] * 2, [5, 5], pipe.check_params(2))
        assert torch.allclose(first[0], drawn[j][0, :, 0], atol=1e-4)
        assert torch.allclose(first[1], first[0], atol=1e-4)  # a clip depends on its seed only
    assert seen[0] == (6, 3, 32, 32)  # every candidate decoded and scored
    del pipe.scorer.forward
    clip = pipe.batch(["a red circle"], seeds=[5])[0]
    assert clip.info["candidates"] == 3


def test_a_finetune_that_follows_planned_motion_moves_its_first_frame_and_keeps_the_planner(
    tmp_path, trained_vae, capsys, monkeypatch
):
    """model.unet.first_frame_motion: the UNet is given each clip's first frame animated by the
    clip's true motion; the base model's planner goes with the export, whose pipeline animates
    the first frame by the planner's motion for the prompt. `vidsynth train-planner` retrains it;
    a folder without a planner is refused by name. The base's frame scorer goes with the export
    too, and `vidsynth train-scorer` retrains it."""
    import shutil

    from vidsynth.cli import main
    from vidsynth.errors import ModelNotFound
    from vidsynth.models.first_frame import (
        first_frame_concat,
        motion_guide,
        motion_path,
        warp_frames,
    )
    from vidsynth.models.frame_scorer import FrameScorer
    from vidsynth.models.motion_planner import MotionPlanner
    from vidsynth.models.vae import encode_video
    from vidsynth.pipelines.loading import load
    from vidsynth.pipelines.params import GenerationParams
    from vidsynth.training.export import add_part
    from vidsynth.training.planner import world_motions

    base = Trainer(t2v_config(tmp_path / "base", trained_vae, sample_every=0)).train().exported
    planner = MotionPlanner(world_motions(), hidden_size=384, width=8, heads=2)
    with torch.no_grad():  # always the second entry: left, slowly
        planner.head[-1].bias.copy_(torch.arange(16) == 1)
        planner.head[-1].bias.mul_(100)
    add_part(base, "planner", planner, {"steps": 0})
    scorer = FrameScorer(image_size=32, channels=(8, 8), groups=4, candidates=5)
    add_part(base, "scorer", scorer, {"steps": 0})
    index = json.loads((base / "model_index.json").read_text())
    index["_vidsynth"]["defaults"]["candidates"] = 3  # the base's own number wins over 5
    (base / "model_index.json").write_text(json.dumps(index))
    config = t2v_config(tmp_path / "ft", trained_vae, sample_every=0, first_frame_dropout=0.0)
    config.model.init_from = str(base)
    config.model.unet = {
        **config.model.unet,
        "first_frame": True,
        "frame_embedding": True,
        "first_frame_motion": True,
    }
    trainer = Trainer(config)
    assert trainer.unwrapped.config.first_frame_motion and trainer.planner is not None
    latents = torch.randn(2, 4, 4, 8, 8)
    motion = torch.tensor([[0.25, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    centre = torch.tensor([[0.3, 0.4], [0.5, 0.5]])
    batch = {  # clips of one object each: a second row that names none
        "motion": torch.stack([motion, torch.zeros(2, 4)], dim=1),
        "centre": torch.stack([centre, torch.zeros(2, 2)], dim=1),
        "colour": torch.tensor([[0, -1], [3, -1]]),
    }
    video = torch.rand(2, 3, 4, 32, 32) * 2 - 1
    given = trainer._first_frame_input(
        latents, torch.Generator().manual_seed(0), images=False, video=video, batch=batch
    )
    guide = motion_guide(motion, 2, 4, centre)
    want = first_frame_concat(latents[:, :, 0], latents, guide=guide)
    assert torch.allclose(given, want, atol=1e-5)  # one object moves the whole frame
    assert not torch.allclose(given[0, :4, 1], latents[0, :, 0])  # clip 0 moves, 1 stays
    assert torch.allclose(given[1, :4, 3], latents[1, :, 0], atol=1e-5)
    from vidsynth.training.trainer import _batches

    batch = next(_batches(config, 0, 0, 0))  # the world's clips come with a guide per object
    assert batch["motion"].shape[1:] == (2, 4) and batch["centre"].shape[1:] == (2, 2)
    assert batch["colour"].shape[1:] == (2,)
    result = trainer.train()
    index = json.loads((result.exported / "model_index.json").read_text())
    assert index["planner"] == ["vidsynth", "MotionPlanner"]
    assert json.loads((result.exported / "planner" / "training.json").read_text()) == {"steps": 0}
    assert index["scorer"] == ["vidsynth", "FrameScorer"]  # the frame scorer goes with it too

    pipe = load(result.exported)
    _picks_the_first_frame_its_scorer_likes(pipe)
    pipe.scorer = None  # one first frame per clip from here on
    seen = {}
    forward, plan, draw = pipe.unet.forward, pipe.plan_motion, pipe.first_frame

    def spy(sample, t, context, **kwargs):
        seen["concat"] = kwargs["concat"]
        return forward(sample, t, context, **kwargs)

    pipe.unet.forward = spy
    pipe.plan_motion = lambda *a, **k: seen.setdefault("guide", plan(*a, **k))
    pipe.first_frame = lambda *a, **k: seen.setdefault("first", draw(*a, **k))
    pipe.batch(["a red circle moving left slowly"], seeds=[3])
    # the planner's velocity from frame 0 on (offset as a whole to keep the object in view);
    # a planner without slots plans one object, which moves the whole frame
    (guide,) = seen["guide"]
    assert guide.mask is None
    steps = guide.shift - guide.shift[:, :1]
    assert torch.allclose(steps, motion_path(torch.tensor([[-0.01, 0.0]]), 1, 4), atol=1e-6)
    assert (guide.scale == 1).all() and not guide.angle.any()
    # the conditional half: the first frame moved (in pixels, each frame encoded again)
    clip = seen["concat"][:1, :4].float()
    image = pipe.decode(seen["first"][:, :, None])[:, :, 0]
    moved = encode_video(pipe.vae, warp_frames(image * 2 - 1, guide).clamp(-1, 1))
    assert torch.allclose(clip, moved.float(), atol=1e-3)

    # a planner with a slot per object: two objects, each found by its colour on the decoded
    # first frame, each moved by its own guide about its own centre
    frame = torch.full((1, 3, 32, 32), 0.5)
    frame[0, :, 4:10, 4:10] = torch.tensor([0.86, 0.16, 0.16])[:, None, None]  # red
    frame[0, :, 20:26, 8:14] = torch.tensor([0.16, 0.35, 0.9])[:, None, None]  # blue
    pipe.decode = lambda latents: frame[:, :, None]
    pipe.plan_motion = plan
    params = GenerationParams(
        num_frames=4, height=32, width=32, num_inference_steps=2, guidance_scale=1.0, fps=8.0
    )
    for right, still in ((0, 1), (1, 0)):  # named in either order
        pipe.planner = _two_slot_planner(right, still)
        guides = pipe.plan_motion(["a red and a blue square"], params, torch.zeros(1, 4, 8, 8))
        red, blue = guides[right], guides[still]
        assert torch.allclose(red.centre, torch.tensor([[7 / 32, 7 / 32]]))
        assert torch.allclose(blue.centre, torch.tensor([[11 / 32, 23 / 32]]))
        assert red.mask[0, 4:10, 4:10].all() and red.mask.sum() == 36
        assert blue.mask[0, 20:26, 8:14].all() and blue.mask.sum() == 36
        assert torch.allclose(red.shift[0, :, 0], torch.tensor([0.0, 0.02, 0.04, 0.06]))
        assert not blue.shift.any() and (blue.scale == 1).all()
    # a caption of one object: one guide, the whole frame moving, about the object found
    pipe.planner = _two_slot_planner(0, 1, lone=True)
    (only,) = pipe.plan_motion(["a red square"], params, torch.zeros(1, 4, 8, 8))
    assert only.mask is None and torch.allclose(only.shift[0, :, 0], red.shift[0, :, 0])

    plan = ["train-planner", str(result.exported), "--steps", "2", "--batch-size", "4"]
    assert main([*plan, "--name-weight", "150"]) == 0
    assert not (result.exported / "planner-checkpoints").exists()  # removed once written
    record = json.loads((result.exported / "planner" / "training.json").read_text())
    assert record["steps"] == 2 and record["command"].startswith("vidsynth train-planner")
    assert record["command"].endswith("--name-weight 150")
    config = json.loads((result.exported / "planner" / "config.json").read_text())
    assert config["name_weight"] == 150
    from vidsynth.training.model_card import write_model_card

    report = {"accuracy": {}, "counts": {}, "seconds_per_video": 1.0, "settings": {}}
    card = write_model_card(result.exported, report, title="t").read_text()
    assert "- Motion planner (planned layout" in card
    assert "log-probabilities plus 150× the cosine" in card  # its name_weight
    assert f"- Motion planner: `{record['command']}` — 2 steps" in card
    assert main(["train-scorer", str(result.exported), "--steps", "2", "--batch-size", "4"]) == 0
    assert not (result.exported / "scorer-checkpoints").exists()  # removed once written
    record = json.loads((result.exported / "scorer" / "training.json").read_text())
    assert record["steps"] == 2 and record["command"].startswith("vidsynth train-scorer")
    assert json.loads((result.exported / "scorer" / "config.json").read_text())["candidates"] == 4
    card = write_model_card(result.exported, report, title="t").read_text()
    assert "keeps the one it scores\n  highest (default 4)" in card
    assert f"- Frame scorer: `{record['command']}` — 2 steps" in card

    # `vidsynth tune-scorer`, with a stand-in for the judge: a tiny random model draws nothing
    # the judge finds right, so nothing would be left to rank
    import vidsynth.training.scorer_tuning as tuning

    monkeypatch.setattr(tuning, "judged_quality", lambda frame, target: float(frame.sum() % 2))
    tune = ["tune-scorer", str(result.exported), "--prompts", "20", "--steps", "2"]
    assert main([*tune, "--batch-size", "2"]) == 0
    assert not (result.exported / "scorer-tuning").exists()  # removed once written
    tuned = json.loads((result.exported / "scorer" / "training.json").read_text())
    assert tuned["base"] == record and tuned["command"].startswith("vidsynth tune-scorer")
    assert (tuned["prompts"], tuned["held_out"], tuned["candidates"]) == (20, 2, 4)
    card = write_model_card(result.exported, report, title="t").read_text()
    assert f"- Frame scorer: `{record['command']}` — 2 steps" in card  # how it began
    assert "- Frame scorer, tuned on the model's own first frames: `vidsynth tune-scorer" in card
    assert main(["train-planner", str(tmp_path / "nothing")]) == 2
    assert "is not a model folder" in capsys.readouterr().err
    shutil.rmtree(result.exported / "planner")
    with pytest.raises(ModelNotFound, match="no planner/ folder"):
        load(result.exported)


TINY_IMAGE_UNET = tiny_image_unet_config()


def t2i_config(out, vae_path, **train):
    return parse_config(
        {
            "task": "text-to-image",
            "output_dir": str(out),
            "data": {"size": 32, "num_frames": 4},
            "model": {
                "unet": TINY_IMAGE_UNET,
                "vae_path": str(vae_path),
                "scheduler": SHAPES_SCHEDULER,
            },
            "train": {
                "steps": 4,
                "batch_size": 3,
                "lr": 1e-3,
                "warmup": 1,
                "save_every": 2,
                **train,
            },
        }
    )


def test_a_text_to_image_run_learns_first_frames_resumes_exactly_and_exports(tmp_path, trained_vae):
    """Task "text-to-image" trains an image stage on the world's first frames: its batches are
    single frames at time 0, a killed run resumes exactly, and the export is the UNet in
    diffusers' layout with the schedule it learned and the latent space it learned in."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file

    from vidsynth.training.trainer import _batches

    config = t2i_config(tmp_path / "a", trained_vae)
    batch = next(_batches(config, 0, 0, 0, image_frame="first"))
    assert batch["video"].shape == (3, 3, 1, 32, 32) and batch["frame"].tolist() == [0, 0, 0]
    straight = Trainer(config)
    assert straight.image_frame() == "first"
    result = straight.train()
    Trainer(t2i_config(tmp_path / "b", trained_vae)).train(max_steps=2)
    again = Trainer(t2i_config(tmp_path / "b", trained_vae))
    assert again.train().step == 4
    a, b = straight.unwrapped.state_dict(), again.unwrapped.state_dict()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key

    folder = result.exported
    weights = load_file(folder / "image_unet" / "diffusion_pytorch_model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float16}
    assert UNet2DConditionModel.from_pretrained(folder / "image_unet").config.in_channels == 4
    schedule = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert schedule["prediction_type"] == "v_prediction"  # as the video UNets default to
    record = json.loads((folder / "training.json").read_text())
    assert record["latent_space"] == latent_space_fingerprint(trained_vae)
    assert record["image_frame"] == "first" and record["samples_seen"] == 12


def test_an_image_stage_draws_the_first_frames_of_the_model_it_joins(tmp_path, trained_vae, capsys):
    """`vidsynth add-image-stage MODEL STAGE` puts a text-to-image run's UNet into a
    text-to-video model with a first-frame input: its first frames are then drawn by the image
    UNet, the clips by the video UNet. A stage of another latent space or noise schedule is
    refused by name, and a fine-tune of the model keeps its image stage."""
    import shutil

    from vidsynth.cli import main
    from vidsynth.pipelines.loading import load

    config = t2v_config(tmp_path / "base", trained_vae, sample_every=0)
    config.model.unet = {**config.model.unet, "first_frame": True, "in_channels": 9}
    base = Trainer(config).train().exported
    stage = train(t2i_config(tmp_path / "stage", trained_vae)).exported

    bad = tmp_path / "bad"
    shutil.copytree(stage, bad)
    record = json.loads((bad / "training.json").read_text())
    (bad / "training.json").write_text(json.dumps({**record, "latent_space": "0"}))
    assert main(["add-image-stage", str(base), str(bad)]) != 0
    assert "latent space" in capsys.readouterr().err
    (bad / "training.json").write_text(json.dumps(record))
    schedule = bad / "scheduler" / "scheduler_config.json"
    schedule.write_text(json.dumps({**json.loads(schedule.read_text()), "beta_schedule": "linear"}))
    assert main(["add-image-stage", str(base), str(bad)]) != 0
    assert "differ in beta_schedule" in capsys.readouterr().err
    assert main(["add-image-stage", str(base), str(tmp_path)]) != 0
    assert "not an image stage" in capsys.readouterr().err
    assert not (base / "image_unet").exists()

    assert main(["add-image-stage", str(base), str(stage)]) == 0
    index = json.loads((base / "model_index.json").read_text())
    assert index["image_unet"] == ["diffusers", "UNet2DConditionModel"]
    assert json.loads((base / "image_unet" / "training.json").read_text()) == record
    from vidsynth.training.model_card import write_model_card

    report = {"accuracy": {}, "counts": {}, "seconds_per_video": 1.0, "settings": {}}
    card = write_model_card(base, report, title="t").read_text()
    assert "UNet2DConditionModel (16/32 channels" in card
    assert "- Image stage: `vidsynth train" in card and "4 steps × batch 3 (12 first frames" in card

    pipe = load(base)
    calls = []
    image_forward, video_forward = pipe.image_unet.forward, pipe.unet.forward

    def image_spy(sample, t, context, **kwargs):
        calls.append(("image", sample.shape[0], sample.shape[2]))
        return image_forward(sample, t, context, **kwargs)

    def video_spy(sample, t, context, **kwargs):
        calls.append(("video", sample.shape[0], sample.shape[2], kwargs["independent_frames"]))
        return video_forward(sample, t, context, **kwargs)

    pipe.image_unet.forward, pipe.unet.forward = image_spy, video_spy
    clip = pipe("a red circle moving right", seed=3)
    # 2 guided steps of the first frame (uncond and cond), then 2 of the 4-frame clip
    assert calls == [("image", 2, 1)] * 2 + [("video", 2, 4, False)] * 2
    assert clip.frames.shape == (4, 32, 32, 3)
    pipe.image_unet.forward, pipe.unet.forward = image_forward, video_forward
    again = pipe("a red circle moving right", seed=3)
    assert np.array_equal(again.frames, clip.frames)  # a clip depends on its prompt and seed

    finetune = t2v_config(tmp_path / "ft", trained_vae, sample_every=0)
    finetune.model.init_from = str(base)
    finetune.model.unet = config.model.unet
    trainer = Trainer(finetune)
    assert trainer.image_unet is not None
    kept = trainer.export(tmp_path / "kept")
    assert json.loads((kept / "image_unet" / "training.json").read_text()) == record
    assert load(kept).image_unet is not None


def test_a_video_models_unet_can_learn_its_first_frames_alone(tmp_path, trained_vae):
    """Task "text-to-image" with model.init_from a video model without an image stage: a copy
    of its video UNet learns first frames alone. Added to the model, it draws the first frames
    (temporal layers bypassed, "no first frame" given), the video UNet the clips."""
    from vidsynth.cli import main
    from vidsynth.models.unet3d import UNet3DModel
    from vidsynth.pipelines.loading import load

    config = t2v_config(tmp_path / "base", trained_vae, sample_every=0)
    config.model.unet = {**config.model.unet, "first_frame": True, "in_channels": 9}
    base = Trainer(config).train().exported
    values = t2i_config(tmp_path / "stage", trained_vae).to_dict()
    values["model"]["init_from"] = str(base)
    with pytest.raises(InvalidParameter, match=r"leave model\.unet out"):
        parse_config(values)  # the UNet comes from the model: a size for it would be ignored
    values["model"]["unet"] = {}
    stage_config = parse_config(values)
    trainer = Trainer(stage_config)
    assert isinstance(trainer.unwrapped, UNet3DModel)
    start = {k: v.clone() for k, v in trainer.unwrapped.state_dict().items()}
    stage = trainer.train().exported
    record = json.loads((stage / "training.json").read_text())
    assert record["init"]["step"] == 4  # the video model it started from
    assert record["latent_space"] == latent_space_fingerprint(base)
    learned = UNet3DModel.from_pretrained(stage / "image_unet").state_dict()
    # it learned: the spatial weights moved from the video UNet's
    weight = "down_blocks.0.attentions.0.proj_in.weight"
    assert not torch.allclose(learned[weight].float(), start[weight], atol=1e-4)

    assert main(["add-image-stage", str(base), str(stage)]) == 0
    index = json.loads((base / "model_index.json").read_text())
    assert index["image_unet"] == ["diffusers", "UNet3DConditionModel"]
    from vidsynth.training.model_card import write_model_card

    report = {"accuracy": {}, "counts": {}, "seconds_per_video": 1.0, "settings": {}}
    card = write_model_card(base, report, title="t").read_text()
    assert "a copy of the UNet3D that went on learning first frames alone" in card
    pipe = load(base)
    assert isinstance(pipe.image_unet, UNet3DModel) and pipe.image_unet is not pipe.unet
    calls = []

    def spy(name, forward):
        def run(sample, t, context, **kwargs):
            flag = kwargs["concat"][:, -1, 0].mean().item()  # 1 where a first frame is given
            calls.append((name, sample.shape[2], kwargs["independent_frames"], flag))
            return forward(sample, t, context, **kwargs)

        return run

    pipe.image_unet.forward = spy("image", pipe.image_unet.forward)
    pipe.unet.forward = spy("video", pipe.unet.forward)
    pipe("a red circle moving right", seed=1)
    assert calls == [("image", 1, True, 0.0)] * 2 + [("video", 4, False, 1.0)] * 2


def test_every_config_in_the_repo_parses():
    """The configs users run (the bundled models' and the experiments') stay valid."""
    from pathlib import Path

    configs = sorted((Path(__file__).parents[2] / "configs").glob("*.toml"))
    assert any(p.name == "shapes-first-frames.toml" for p in configs)
    for path in configs:
        config = load_config(path)
        assert config.task and config.train.steps > 0, path
