"""Cascades as data: parsing and checking cascade files, running base → TSR → SSR on tiny
random models, freeing each stage before the next, and the bundled default."""

from __future__ import annotations

import gc
import json
import shutil
import weakref

import numpy as np
import pytest

import vidsynth
from vidsynth.errors import InvalidParameter
from vidsynth.pipelines import cascade as cascade_module
from vidsynth.pipelines import loading
from vidsynth.pipelines.cascade import Cascade, default_cascade, resolve_cascade, run_cascade
from vidsynth.sampling.noise import derive_seed


@pytest.fixture(scope="module")
def chain(tiny_model, tiny_tsr_model, tiny_ssr_model) -> Cascade:
    return Cascade.from_dict(
        {
            "name": "tiny",
            "stages": [
                {
                    "name": "base",
                    "kind": "text-to-video",
                    "model": str(tiny_model),
                    "params": {"num_frames": 2},
                },
                {"name": "tsr", "kind": "temporal-sr", "model": str(tiny_tsr_model)},
                {
                    "name": "ssr",
                    "kind": "spatial-sr",
                    "model": str(tiny_ssr_model),
                    "params": {"num_inference_steps": 1},
                },
            ],
        }
    )


def test_base_tsr_ssr_on_tiny_models(chain):
    seen = []
    out = run_cascade(chain, "a red circle", seed=3, progress=lambda s, i, n: seen.append(s))
    video = out.video
    assert video.frames.shape == (4, 128, 128, 3)  # 2 → 4 frames, 32 → 128 pixels
    assert video.fps == 16 and video.seed == 3
    assert [r.name for r in out.stages] == ["base", "tsr", "ssr"]
    assert [r.frames for r in out.stages] == [(2, 32, 32), (4, 32, 32), (4, 128, 128)]
    assert all(r.seconds >= r.load_seconds >= 0 for r in out.stages)
    assert out.peak_rss_mib > 0 and out.seconds > 0
    assert {"base denoise", "tsr denoise", "ssr decode"} <= set(seen)
    assert [s["name"] for s in video.info["stages"]] == ["base", "tsr", "ssr"]
    json.dumps(video.info)
    again = run_cascade(chain, "a red circle", seed=3)
    assert np.array_equal(again.video.frames, video.frames)


def test_a_cascade_is_its_stages_run_by_hand(chain, tiny_model, tiny_tsr_model, tiny_ssr_model):
    out = run_cascade(chain, "a blue star", seed=11).video
    base = vidsynth.load(tiny_model, device="cpu")("a blue star", seed=11, num_frames=2)
    tsr = vidsynth.load(tiny_tsr_model)(base.frames, "a blue star", seed=derive_seed(11, 1), fps=16)
    ssr = vidsynth.load(tiny_ssr_model)(
        tsr.frames, "a blue star", seed=derive_seed(11, 2), fps=16, num_inference_steps=1
    )
    assert np.array_equal(out.frames, ssr.frames)


def test_each_stage_is_freed_before_the_next_loads(chain):
    alive: list[weakref.ref] = []

    def loader(model, **kwargs):
        gc.collect()
        assert all(ref() is None for ref in alive), "a finished stage's model is still alive"
        pipe = vidsynth.load(model, **kwargs)
        alive.append(weakref.ref(pipe.unet))
        return pipe

    run_cascade(chain.select("base,ssr"), "x", seed=0, loader=loader)
    assert len(alive) == 2
    gc.collect()
    assert all(ref() is None for ref in alive)


def test_stage_selection(chain):
    assert chain.select("all") is chain
    assert chain.select("base").stage_names == ["base"]
    assert chain.select(["ssr", "base"]).stage_names == ["base", "ssr"]  # cascade order
    with pytest.raises(InvalidParameter, match=r"unknown stage.*'sr'.*base, tsr, ssr"):
        chain.select("base,sr")
    with pytest.raises(InvalidParameter, match="must include 'base'"):
        chain.select("tsr,ssr")
    base = chain.with_base(num_inference_steps=2, height=None).stages[0]
    assert base.params == {"num_frames": 2, "num_inference_steps": 2}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "needs a `stages` list"),
        ({"stages": []}, "at least one stage"),
        ({"stages": [{"kind": "spatial-sr", "model": "m"}]}, "starts with a text-to-video"),
        ({"stages": [{"kind": "upscale", "model": "m"}]}, "kind must be one of"),
        ({"stages": [{"kind": "text-to-video"}]}, "needs a model"),
        (
            {"stages": [{"kind": "text-to-video", "model": "m", "params": {"strength": 1}}]},
            "text-to-video does not take strength",
        ),
        (
            {"stages": [{"kind": "text-to-video", "model": "m"}] * 2},
            "only the first stage is text-to-video",
        ),
        ({"stages": [{"kind": "text-to-video", "model": "m", "seed": 1}]}, "unknown key.*seed"),
        ({"stages": [], "stagez": []}, "unknown cascade key.*stagez"),
    ],
)
def test_bad_cascades_are_named(data, message):
    with pytest.raises(InvalidParameter, match=message):
        Cascade.from_dict(data)


def test_cascade_files(tmp_path, tiny_model):
    toml = tmp_path / "mine.toml"
    toml.write_text(
        '[[stages]]\nkind = "text-to-video"\nmodel = "./base"\nparams = { num_frames = 2 }\n'
    )
    c = resolve_cascade(toml)
    assert c.name == "mine" and c.stages[0].model == str(tmp_path / "base")
    js = tmp_path / "mine.json"
    js.write_text(json.dumps({"name": "j", "stages": [{"kind": "text-to-video", "model": "m"}]}))
    assert resolve_cascade(js).stages[0].name == "text-to-video"
    (tmp_path / "bad.toml").write_text("stages = [")
    with pytest.raises(InvalidParameter, match="not a valid cascade file"):
        resolve_cascade(tmp_path / "bad.toml")
    with pytest.raises(InvalidParameter, match=r"no cascade file at 'nope'.*shapes-256"):
        resolve_cascade("nope")
    with pytest.raises(vidsynth.ModelNotFound):  # a missing model fails before any stage runs
        run_cascade(Cascade.from_dict({"stages": [{"kind": "text-to-video", "model": "/no"}]}), "")


def test_default_cascade_needs_its_models_installed(tmp_path, monkeypatch, chain):
    bundled = resolve_cascade("shapes-256")
    assert bundled.stage_names == ["base", "tsr", "ssr"]
    assert [s.kind for s in bundled.stages] == ["text-to-video", "temporal-sr", "spatial-sr"]
    monkeypatch.setattr(loading, "bundled_models_dir", lambda: tmp_path)
    assert default_cascade() is None
    for stage, tiny in zip(bundled.stages, chain.stages, strict=True):
        shutil.copytree(tiny.model, tmp_path / stage.model)
        assert (default_cascade() is None) == (stage.name != "ssr")
    assert default_cascade() == bundled
    assert cascade_module.DEFAULT_CASCADE == "shapes-256"


def test_a_video_to_video_stage(tiny_model, tiny_minilm_model):
    """Zeroscope's recipe as a cascade: re-render the base clip at another size."""
    chain = Cascade.from_dict(
        {
            "stages": [
                {"kind": "text-to-video", "model": str(tiny_model), "params": {"num_frames": 2}},
                {
                    "name": "refine",
                    "kind": "video-to-video",
                    "model": str(tiny_minilm_model),
                    "params": {"strength": 0.5, "width": 48, "height": 40},
                },
            ]
        }
    )
    out = run_cascade(chain, "a red circle", seed=1)
    assert out.video.frames.shape == (2, 40, 48, 3) and out.video.fps == 8
    assert out.video.info["strength"] == 0.5
