"""The text-to-video pipeline against diffusers' reference, plus its contract with users."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vidsynth
from vidsynth.errors import InvalidParameter
from vidsynth.pipelines.params import GenerationParams
from vidsynth.pipelines.text_to_video import MemoryBudgetExceeded


@pytest.fixture(scope="module")
def pipe(tiny_model):
    return vidsynth.load(tiny_model, device="cpu")


@pytest.mark.parametrize("scheduler", [None, "dpm++2m", "euler", "unipc"])
def test_matches_diffusers_reference(tiny_model, pipe, scheduler):
    from diffusers import TextToVideoSDPipeline

    ref = TextToVideoSDPipeline.from_pretrained(tiny_model)
    ref.set_progress_bar_config(disable=True)
    if scheduler is not None:
        ref.scheduler = pipe.scheduler(scheduler)
    params = GenerationParams.checked(
        num_frames=3, height=32, width=40, num_inference_steps=4, guidance_scale=7.5, fps=8
    )
    latents = pipe.initial_latents([11], params)
    expected = ref(
        "a red circle moving right",
        negative_prompt="blurry",
        num_frames=3,
        height=32,
        width=40,
        num_inference_steps=4,
        guidance_scale=7.5,
        latents=latents.clone(),
        output_type="np",
    ).frames  # (B, F, H, W, 3) in [0, 1]
    z = pipe.generate_latents(
        ["a red circle moving right"],
        ["blurry"],
        [11],
        params,
        scheduler=scheduler,
        latents=latents.clone(),
    )
    ours = pipe.decode(z, chunk_size=2).permute(0, 2, 3, 4, 1).numpy()
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() < 1e-3


def test_result_contract(pipe, tmp_path):
    result = pipe("a blue square moving up", seed=3)
    assert result.frames.dtype == np.uint8
    assert result.frames.shape == (4, 32, 32, 3)  # the model's defaults
    assert result.seed == 3 and result.fps == 8.0
    path = result.save(tmp_path / "clip.mp4")
    assert path.exists() and path.stat().st_size > 0


def test_same_seed_same_video_whatever_the_batch(pipe):
    alone = pipe("a green star", seed=5, num_inference_steps=2)
    batch = pipe.batch(
        ["a yellow circle", "a green star", ""], seeds=[1, 5, 2], num_inference_steps=2
    )
    assert np.abs(alone.frames.astype(int) - batch[1].frames.astype(int)).max() <= 1
    assert not np.array_equal(batch[0].frames, batch[1].frames)


def test_random_seed_is_reported_and_reproduces(pipe):
    first = pipe("a white triangle", num_inference_steps=2)
    again = pipe("a white triangle", num_inference_steps=2, seed=first.seed)
    assert np.array_equal(first.frames, again.frames)


def test_empty_prompt_is_unconditional(pipe):
    assert pipe("", seed=0, num_inference_steps=2).frames.shape == (4, 32, 32, 3)


@pytest.fixture
def unet_batches(pipe, monkeypatch):
    """The batch size of each UNet call the test makes."""
    batches = []
    real = pipe.unet.forward

    def spy(x, *args, **kwargs):
        batches.append(x.shape[0])
        return real(x, *args, **kwargs)

    monkeypatch.setattr(pipe.unet, "forward", spy)
    return batches


def test_guidance_one_skips_the_unconditional_pass(pipe, unet_batches):
    pipe("a red circle", seed=0, num_inference_steps=2, guidance_scale=1.0)
    pipe("a red circle", seed=0, num_inference_steps=2, guidance_scale=5.0)
    assert unet_batches == [1, 1, 2, 2]


def test_guidance_interval_skips_the_unconditional_pass_outside_it(pipe, unet_batches, monkeypatch):
    batches = unet_batches
    full = pipe("a red circle", seed=0, num_inference_steps=4, guidance_scale=5.0)
    assert batches == [2] * 4 and "guidance_interval" not in full.info
    batches.clear()
    part = pipe("a red circle", seed=0, num_inference_steps=4, guidance_interval=[0.7])
    assert batches[0] == 2 and batches[-1] == 1  # guided at high noise, not at the end
    assert part.info["guidance_interval"] == [0.7, None]  # what reproduces the clip
    # the default interval is the model's own
    monkeypatch.setattr(pipe.defaults, "guidance_interval", [0.7])
    again = pipe("a red circle", seed=0, num_inference_steps=4)
    assert np.array_equal(again.frames, part.frames)
    assert again.info["guidance_interval"] == [0.7, None]
    # this model draws no first frames: their interval changes nothing and is not recorded
    both = pipe("a red circle", seed=0, num_inference_steps=4, first_frame_guidance_interval=[1])
    assert np.array_equal(both.frames, part.frames)
    assert "first_frame_guidance_interval" not in both.info


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"height": 30}, "height=30 must be a multiple of 8"),
        ({"width": 100}, "width=100 must be a multiple of 8"),
        ({"num_inference_steps": 0}, "num_inference_steps must be between 1"),
        ({"num_inference_steps": -3}, "num_inference_steps must be between 1"),
        ({"num_frames": 0}, "num_frames must be between 1"),
        ({"guidance_scale": float("nan")}, "guidance_scale must be a finite number"),
        ({"fps": 0}, "fps must be between"),
        ({"num_frames": 2.5}, "num_frames must be an integer"),
        ({"scheduler": "nope"}, "unknown scheduler 'nope'"),
        ({"candidates": 0}, "candidates must be between 1"),
        ({"candidates": 2}, "candidates=2 needs a model that draws a first frame and has a frame"),
        ({"guidance_interval": [2, 1]}, "guidance_interval's hi must be a number above lo=2"),
        ({"clip_strength": 0, "num_inference_steps": 10}, "clip_strength=0 of 10 steps runs no"),
        ({"clip_strength": 0.05, "num_inference_steps": 10}, "raise it to at least 0.1 or use"),
        ({"clip_strength": 1.5}, "clip_strength must be between 0.0 and 1.0"),
        ({"clip_strength": 0.5}, "clip_strength=0.5 starts each clip from its first frame"),
        ({"first_frame_steps": 0}, "first_frame_steps must be between 1"),
        ({"first_frame_steps": 2.5}, "first_frame_steps must be an integer"),
        ({"first_frame_steps": 8}, "first_frame_steps=8 sets the steps of the first frames"),
    ],
)
def test_bad_parameters_are_named(pipe, kwargs, message):
    with pytest.raises(InvalidParameter, match=message):
        pipe("a red circle", **kwargs)


def test_prompt_must_be_text(pipe):
    with pytest.raises(InvalidParameter, match="prompt must be a string"):
        pipe(["a", "b"])


def test_too_many_frames_for_memory_is_refused_up_front(pipe, monkeypatch):
    monkeypatch.setattr(pipe, "memory_budget", 50 * 2**20)
    pipe("a red circle", num_frames=4, num_inference_steps=1)  # fits
    with pytest.raises(MemoryBudgetExceeded, match="frames at 256x256 need about"):
        pipe("a red circle", num_frames=400, height=256, width=256)


def test_memory_check_counts_the_first_frame_stage(pipe):
    """A model draws its first frames before the clip, by an image stage of its own when it
    has one: a request whose clip fits but whose first frames do not is refused up front."""
    from vidsynth.models.image_unet import ImageUNet
    from vidsynth.models.unet3d import UNet3DConfig, UNet3DModel
    from vidsynth.pipelines.text_to_video import TextToVideoPipeline
    from vidsynth.testing import tiny_image_unet_config, tiny_unet_config

    unet = UNet3DModel(UNet3DConfig.from_dict(tiny_unet_config(first_frame=True, in_channels=9)))
    wide = {**tiny_image_unet_config(cross_attention_dim=32), "block_out_channels": [256, 512]}
    parts = (unet, pipe.vae, pipe.text_encoder, pipe.scheduler_config)
    budget = 20 * 2**20  # the clip needs about 9 MiB, the wide stage's first frame 35
    alone = TextToVideoPipeline(*parts, memory_budget=budget)
    staged = TextToVideoPipeline(
        *parts, memory_budget=budget, image_unet=ImageUNet.from_config(wide)
    )
    size = {"num_frames": 2, "height": 256, "width": 256}
    alone.check_params(1, **size)  # the clip, and its first frame by the same UNet, fit
    with pytest.raises(MemoryBudgetExceeded, match="2 frames at 256x256 need about"):
        staged.check_params(1, **size)


@pytest.mark.parametrize("stage", ["video", "image"])
def test_memory_estimate_is_an_upper_bound(pipe, stage):
    """The estimate must cover the real activation peak, or the check protects nothing."""
    from torch.profiler import ProfilerActivity, profile

    from vidsynth.pipelines.memory import estimate_peak_bytes

    unet = pipe.unet
    f, h, w = 8, 8, 8
    if stage == "image":  # an image stage (diffusers' UNet2D): each frame its own image
        from vidsynth.models.image_unet import ImageUNet
        from vidsynth.testing import tiny_image_unet_config

        unet = ImageUNet.from_config(tiny_image_unet_config(cross_attention_dim=32)).eval()
    x = torch.randn(2, 4, f, h, w)
    ctx = torch.randn(2, 77, 32)
    with (
        torch.inference_mode(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        unet(x, torch.tensor(10), ctx)
    # "[memory]" events are single allocations (+) and frees (-): their running sum is the
    # live tensor memory, its maximum the peak.
    events = sorted(
        (e.time_range.start, e.cpu_memory_usage) for e in prof.events() if e.name == "[memory]"
    )
    live = peak = 0
    for _, delta in events:
        live += delta
        peak = max(peak, live)
    estimate = estimate_peak_bytes(
        unet.config,
        batch=2,
        num_frames=f,
        latent_height=h,
        latent_width=w,
        bytes_per_element=4,
        num_parameters=0,
    )
    assert peak > 0
    assert estimate >= peak, (estimate, peak)


def test_minilm_family_model(tiny_minilm_model):
    pipe = vidsynth.load(tiny_minilm_model, device="cpu")
    assert not pipe.text_encoder.is_clip
    emb = pipe.encode_prompts(["a red circle", ""])
    # BERT pads carry no meaning: they are zeroed
    assert emb[1, 2:].abs().sum() == 0 and emb[0, 0].abs().sum() > 0
    assert pipe("a red circle", seed=0).frames.shape == (4, 32, 32, 3)
