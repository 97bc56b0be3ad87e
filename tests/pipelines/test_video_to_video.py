"""Video-to-video (SDEdit) against diffusers' VideoToVideoSDPipeline, plus its user contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import vidsynth
from vidsynth.errors import InvalidParameter, VidsynthError
from vidsynth.pipelines.params import GenerationParams
from vidsynth.pipelines.video_to_video import VideoToVideoPipeline

PROMPT = "a red circle moving right"


@pytest.fixture(scope="module")
def v2v(tiny_model) -> VideoToVideoPipeline:
    return vidsynth.load(tiny_model, device="cpu", task="video-to-video")


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """4 frames 40×32: a gradient with a square moving right (uint8 F×H×W×3)."""
    f, h, w = 4, 32, 40
    y, x = np.mgrid[0:h, 0:w]
    frames = np.empty((f, h, w, 3), dtype=np.uint8)
    for i in range(f):
        frames[i, ..., 0] = x * 255 // (w - 1)
        frames[i, ..., 1] = y * 255 // (h - 1)
        frames[i, ..., 2] = 60
        frames[i, 8:20, 4 + 6 * i : 16 + 6 * i] = (250, 20, 20)
    return frames


def reference(tiny_model, scheduler, monkeypatch):
    """diffusers' VideoToVideoSDPipeline on the same weights, its VAE posterior made
    deterministic: diffusers samples it, vidsynth takes the mean (all randomness is then in
    the one noise draw, which both get)."""
    from diffusers import TextToVideoSDPipeline, VideoToVideoSDPipeline
    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

    monkeypatch.setattr(
        DiagonalGaussianDistribution, "sample", lambda self, generator=None: self.mode()
    )
    ref = VideoToVideoSDPipeline(**TextToVideoSDPipeline.from_pretrained(tiny_model).components)
    ref.set_progress_bar_config(disable=True)
    ref.scheduler = scheduler
    return ref


@pytest.mark.parametrize("scheduler", ["ddim", "dpm++2m", "euler"])
@pytest.mark.parametrize("strength", [0.5, 0.8])
def test_matches_diffusers_reference(tiny_model, v2v, clip, scheduler, strength, monkeypatch):
    steps, seed = 6, 11
    ref = reference(tiny_model, v2v.t2v.scheduler(scheduler), monkeypatch)
    expected = ref(
        PROMPT,
        video=clip.astype(np.float32) / 255,
        strength=strength,
        num_inference_steps=steps,
        guidance_scale=7.5,
        negative_prompt="blurry",
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
    ).frames  # (1, F, H, W, 3) in [0, 1]

    # the noise diffusers drew from that generator, frames first: (F, C, h, w)
    f, h, w = clip.shape[:3]
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn((f, 4, h // 8, w // 8), generator=gen).permute(1, 0, 2, 3)[None]
    params = GenerationParams.checked(
        num_frames=f, height=h, width=w, num_inference_steps=steps, guidance_scale=7.5, fps=8
    )
    init = v2v.encode([clip], h, w)
    z = v2v.generate_latents(
        init,
        [PROMPT],
        ["blurry"],
        [seed],
        params,
        strength=strength,
        scheduler=scheduler,
        noise=noise,
    )
    ours = v2v.t2v.decode(z, chunk_size=3).permute(0, 2, 3, 4, 1).numpy()
    assert ours.shape == expected.shape
    diff = np.abs(ours - expected).max()
    assert diff < 1e-3, diff

    # the public call gives the same clip as uint8
    result = v2v(
        clip,
        PROMPT,
        "blurry",
        strength=strength,
        num_inference_steps=steps,
        guidance_scale=7.5,
        scheduler=scheduler,
        noise=noise,
    )
    u8 = (expected[0] * 255).round()
    assert np.abs(result.frames.astype(float) - u8).max() <= 1


def test_result_contract(v2v, clip):
    stages = []
    result = v2v(
        clip, PROMPT, seed=3, strength=0.5, progress=lambda s, i, n: stages.append((s, i, n))
    )
    assert result.frames.dtype == np.uint8 and result.frames.shape == clip.shape
    assert result.seed == 3 and result.fps == 8.0  # frames have no rate: the model's
    assert result.info["strength"] == 0.5 and result.info["task"] == "video-to-video"
    # 3 steps at strength 0.5 run int(1.5) = 1 step, as diffusers does
    encode = [("encode", 0, 1), ("encode", 1, 1)]
    assert stages == [*encode, ("denoise", 1, 1), ("decode", 0, 1), ("decode", 1, 1)]


def test_file_input_resize_and_fps(v2v, clip, tmp_path):
    from vidsynth.io.video import write_video

    path = write_video(tmp_path / "in.mp4", clip, 12)
    result = v2v(path, PROMPT, seed=0, width=64, height=48)
    assert result.frames.shape == (4, 48, 64, 3)
    assert result.fps == pytest.approx(12.0)  # the input's rate
    pil = [Image.fromarray(f) for f in clip]
    assert v2v(pil, PROMPT, seed=0, fps=5).frames.shape == clip.shape


def test_low_strength_keeps_the_input(v2v, clip):
    from vidsynth.models.vae import decode_to_uint8

    h, w = clip.shape[1:3]
    # what the VAE makes of the input (the tiny VAE is random: not the input itself)
    rec = decode_to_uint8(v2v.t2v.vae, v2v.encode([clip], h, w))[0].numpy().astype(int)

    def change(strength: float) -> float:
        out = v2v(clip, PROMPT, seed=0, strength=strength, num_inference_steps=10)
        return float(np.abs(out.frames.astype(int) - rec).mean())

    assert change(0.1) < 0.75 * change(1.0)


def test_same_seed_same_video_whatever_the_batch(v2v, clip):
    alone = v2v(clip, "a green star", seed=5, strength=0.7)
    batch = v2v.batch(
        [255 - clip, clip, clip],
        ["a yellow circle", "a green star", ""],
        seeds=[1, 5, 2],
        strength=0.7,
    )
    assert np.abs(alone.frames.astype(int) - batch[1].frames.astype(int)).max() <= 1
    assert not np.array_equal(batch[1].frames, batch[2].frames)


def test_minilm_family_model(tiny_minilm_model, clip):
    pipe = VideoToVideoPipeline.from_pipeline(vidsynth.load(tiny_minilm_model, device="cpu"))
    assert pipe(clip, PROMPT, seed=0).frames.shape == clip.shape


def test_cancel_from_progress(v2v, clip):
    def cancel(stage, step, total):
        if stage == "denoise":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        v2v(clip, PROMPT, seed=0, strength=1.0, progress=cancel)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strength": 0}, "strength must be above 0"),
        ({"strength": 1.5}, "strength must be between 0.0 and 1.0"),
        ({"strength": float("nan")}, "strength must be a finite number"),
        ({"strength": 0.1}, "runs no denoising step"),  # 3 steps × 0.1 rounds down to none
        ({"width": 44, "height": 32}, "width=44 must be a multiple of 8"),
        ({"height": 0, "width": 32}, "height must be between 8"),
        ({"num_inference_steps": 0}, "num_inference_steps must be between 1"),
        ({"scheduler": "nope"}, "unknown scheduler 'nope'"),
    ],
)
def test_bad_parameters_are_named(v2v, clip, kwargs, message):
    with pytest.raises(InvalidParameter, match=message):
        v2v(clip, PROMPT, **kwargs)


def test_bad_inputs_are_named(v2v, clip, tmp_path):
    with pytest.raises(InvalidParameter, match=r"is 36x32, which is not a multiple of 8.*32x32"):
        v2v(clip[:, :, :36], PROMPT)
    assert v2v(clip[:, :, :36], PROMPT, width=32, height=32, seed=0).frames.shape[2] == 32
    with pytest.raises(InvalidParameter, match="video not found"):
        v2v(tmp_path / "missing.mp4", PROMPT)
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(VidsynthError, match=r"junk\.mp4.*not a readable video"):
        v2v(tmp_path / "junk.mp4", PROMPT)
    with pytest.raises(InvalidParameter, match="dtype uint8"):
        v2v(clip.astype(np.float32), PROMPT)
    with pytest.raises(InvalidParameter, match="one video per prompt"):
        v2v.batch(clip, [PROMPT])
    with pytest.raises(InvalidParameter, match="2 videos for 1 prompts"):
        v2v.batch([clip, clip], [PROMPT])


def test_unknown_task(tiny_model):
    with pytest.raises(InvalidParameter, match="unknown task 'image-to-video'"):
        vidsynth.load(tiny_model, task="image-to-video")
