import json

import pytest

import vidsynth
from vidsynth.errors import ModelNotFound
from vidsynth.pipelines import loading


def test_missing_default_model_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(loading, "bundled_models_dir", lambda: tmp_path)
    with pytest.raises(ModelNotFound, match="bundled default model"):
        vidsynth.load()


def test_folder_without_model_index(tmp_path):
    with pytest.raises(ModelNotFound, match=r"no model_index\.json"):
        vidsynth.load(tmp_path)


def test_unknown_name_is_not_sent_to_a_hub(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr(loading, "_download", no_network)
    with pytest.raises(ModelNotFound, match="neither a bundled model"):
        vidsynth.load("no-such-model")


def test_hub_failure_is_one_clear_message(monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(ModelNotFound, match="could not get 'org/model'"):
        vidsynth.load("org/model")


def test_fp16_variant_folder_loads(tiny_model, tmp_path):
    """Hub checkpoints often ship only *.fp16.safetensors; they must load as they are."""
    import shutil

    import torch
    from diffusers import TextToVideoSDPipeline

    ref = TextToVideoSDPipeline.from_pretrained(tiny_model)
    ref.to(torch.float16).save_pretrained(tmp_path / "m", variant="fp16")
    shutil.copy(tiny_model / "model_index.json", tmp_path / "m" / "model_index.json")
    pipe = vidsynth.load(tmp_path / "m", device="cpu", dtype="fp32")
    assert pipe.dtype == torch.float32
    assert pipe("x", seed=0, num_inference_steps=1).frames.shape == (4, 32, 32, 3)


def test_model_defaults_come_from_model_index(tiny_model):
    pipe = vidsynth.load(tiny_model, device="cpu")
    index = json.loads((tiny_model / "model_index.json").read_text())
    assert pipe.defaults.num_frames == index["_vidsynth"]["defaults"]["num_frames"]


def test_bad_device_and_dtype(tiny_model):
    with pytest.raises(ValueError, match="dtype"):
        vidsynth.load(tiny_model, device="cpu", dtype="fp8")
    with pytest.raises(ValueError, match="device"):
        vidsynth.load(tiny_model, device="toaster")


def test_modelscope_style_entry(tiny_model, tmp_path):
    from vidsynth.io.video import probe_video

    run = vidsynth.pipeline("text-to-video-synthesis", model=tiny_model, device="cpu")
    out = run({"text": "a red circle moving right"}, output_video=str(tmp_path / "v.mp4"))
    assert probe_video(out["output_video"])["codec"] == "h264"
    with pytest.raises(ValueError, match='"text"'):
        run({"prompt": "x"})
