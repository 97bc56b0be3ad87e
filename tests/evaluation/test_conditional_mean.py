"""`vidsynth eval --mode mean`: the conditional-mean probe reads a model's x0 at t = T."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import vidsynth
from vidsynth.cli import main
from vidsynth.errors import InvalidParameter
from vidsynth.evaluation.conditional_mean import CONTRASTS, data_mean, probe
from vidsynth.models.parameterization import alpha_sigma, training_target
from vidsynth.world.judge import judge
from vidsynth.world.parse import parse_caption
from vidsynth.world.renderer import render
from vidsynth.world.sampling import place_target

CLIPS = 4
PAIR = {"left/right": CONTRASTS["left/right"]}


def _answer_with(pipe, mean_for) -> None:
    """Make the pipeline's UNet predict, at any step, the output whose x0 is `mean_for(prompt)`."""
    unet, scheduler = pipe.unet, pipe.scheduler()
    prompts = [p for pair in CONTRASTS.values() for p in pair]
    encoded = {p: pipe.encode_prompts([p])[0] for p in prompts}

    def forward(sample, timestep, context, **_):
        alpha, sigma = alpha_sigma(scheduler.alphas_cumprod, timestep)
        outs = []
        for x, a, s, c in zip(sample, alpha, sigma, context, strict=True):
            prompt = next(p for p, e in encoded.items() if torch.equal(e, c))
            x0 = mean_for(prompt).to(x.dtype)
            eps = (x - a * x0) / s
            outs.append(training_target(x0, eps, a, s, unet.config.prediction_type))
        return torch.stack(outs)

    unet.forward = forward


def test_a_model_whose_estimate_is_the_data_mean_scores_one_and_a_blind_one_zero(
    tiny_minilm_model,
):
    pipe = vidsynth.load(tiny_minilm_model, device="cpu")
    geometry = dict(frames=pipe.defaults.num_frames, size=pipe.defaults.height, fps=8.0)
    means = {
        p: data_mean(pipe.vae, p, clips=CLIPS, **geometry) for pair in PAIR.values() for p in pair
    }

    _answer_with(pipe, means.__getitem__)
    (oracle,) = probe(pipe, PAIR, clips=CLIPS, seeds=2).contrasts
    assert oracle.data > 0
    assert oracle.ratio == pytest.approx(1.0, abs=1e-3)
    assert oracle.share == pytest.approx(1.0, abs=1e-3)

    blind = sum(means.values()) / len(means)
    _answer_with(pipe, lambda prompt: blind)
    report = probe(pipe, PAIR, clips=CLIPS, seeds=2)
    assert report.contrasts[0].ratio == pytest.approx(0.0, abs=1e-3)
    assert report.contrasts[0].share == pytest.approx(0.0, abs=1e-3)

    # a difference of the right length pointing the wrong way: ratio 1, share -1
    _answer_with(pipe, lambda prompt: 2 * blind - means[prompt])
    (flipped,) = probe(pipe, PAIR, clips=CLIPS, seeds=2).contrasts
    assert flipped.ratio == pytest.approx(1.0, abs=1e-3)
    assert flipped.share == pytest.approx(-1.0, abs=1e-3)
    assert report.contrasts[0].data == pytest.approx(oracle.data)  # the same rendered clips
    assert "left/right" in report.table()
    json.dumps(report.to_dict())

    with pytest.raises(InvalidParameter, match="clips and seeds"):
        probe(pipe, PAIR, clips=0)


def test_the_data_mean_of_a_direction_leans_that_way():
    """The data side, in pixels: rendered clips of "moving right" have their mass left of
    centre at the start and right of it at the end, "moving left" the reverse."""
    for caption, sign in (("a red circle moving right", 1), ("a red circle moving left", -1)):
        target = parse_caption(caption)
        rng = np.random.default_rng(0)
        scenes = [place_target(rng, target) for _ in range(32)]
        clips = np.stack([render(s, 32, 16, 8.0) for s in scenes]).astype(np.float32)
        redness = clips[..., 0] - clips[..., 2]  # (N, F, H, W)
        columns = redness.mean((0, 2))  # (F, W)
        x = np.arange(32)
        centre = (columns * x).sum(1) / columns.sum(1)
        assert sign * (centre[-1] - centre[0]) > 5  # pixels, of 32
        # every scene shows its target, from its own start
        assert all(judge(render(s, 64, 16, 8.0), target).strict_correct for s in scenes[:4])
        assert len({round(s.objects[0].start_x, 6) for s in scenes}) == len(scenes)


def test_cli_mean_mode(tiny_minilm_model, capsys, tmp_path):
    out = tmp_path / "mean.json"
    args = ["eval", "--mode", "mean", "--model", str(tiny_minilm_model), "--clips", "2"]
    code = main([*args, "--json", str(out)])
    assert code == 0
    table = capsys.readouterr().out
    for name in CONTRASTS:
        assert name in table
    report = json.loads(out.read_text())
    assert set(report["contrasts"]) == set(CONTRASTS)
    assert report["settings"]["clips"] == 2
