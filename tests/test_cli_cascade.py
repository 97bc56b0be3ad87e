"""`vidsynth generate` with cascades (--cascade, --stages, the bundled default) and
`vidsynth eval --mode sr|cascade`, on tiny random models."""

from __future__ import annotations

import json
import shutil

import pytest

from vidsynth.cli import main
from vidsynth.pipelines import loading


@pytest.fixture(scope="module")
def cascade_file(tmp_path_factory, tiny_model, tiny_tsr_model, tiny_ssr_model):
    path = tmp_path_factory.mktemp("cascade") / "tiny.toml"
    path.write_text(
        f'name = "tiny"\n'
        f'[[stages]]\nname = "base"\nkind = "text-to-video"\nmodel = "{tiny_model}"\n'
        f"params = {{ num_frames = 2 }}\n"
        f'[[stages]]\nname = "tsr"\nkind = "temporal-sr"\nmodel = "{tiny_tsr_model}"\n'
        f'[[stages]]\nname = "ssr"\nkind = "spatial-sr"\nmodel = "{tiny_ssr_model}"\n'
        f"params = {{ num_inference_steps = 1 }}\n"
    )
    return path


def test_generate_runs_a_cascade_file_and_reports_each_stage(cascade_file, tmp_path, capsys):
    from vidsynth.io.video import read_video

    out = tmp_path / "a"
    argv = ["generate", "a red circle", "-o", str(out), "--cascade", str(cascade_file)]
    assert main([*argv, "--seed", "2", "-q"]) == 0
    captured = capsys.readouterr()
    frames, fps = read_video(out)
    assert frames.shape == (4, 128, 128, 3) and fps == 16
    for stage in ("stage base (text-to-video", "stage tsr (temporal-sr", "stage ssr (spatial-sr"):
        assert stage in captured.err
    assert "peak RSS:" in captured.err and captured.out.strip() == str(out)

    # --stages stops earlier; the base stage's options come from the command line
    assert main([*argv, "--seed", "2", "-q", "--stages", "base,tsr", "--frames", "3"]) == 0
    frames, fps = read_video(out)
    assert frames.shape == (6, 32, 32, 3) and fps == 16


def test_the_default_cascade_runs_once_its_models_are_bundled(
    cascade_file, tmp_path, monkeypatch, capsys
):
    from vidsynth.io.video import read_video
    from vidsynth.pipelines.cascade import resolve_cascade

    out = tmp_path / "o"
    monkeypatch.setattr(loading, "bundled_models_dir", lambda: tmp_path / "models")
    tiny = resolve_cascade(cascade_file)
    shutil.copytree(tiny.stages[0].model, tmp_path / "models" / "shapes-t2v-64")
    # base model only: generate stays the base model alone, as before
    assert main(["generate", "x", "-o", str(out), "--seed", "1", "-q"]) == 0
    assert "cascade" not in capsys.readouterr().err
    assert read_video(out)[0].shape == (4, 32, 32, 3)
    assert main(["generate", "x", "-o", str(out), "-q", "--stages", "base,tsr"]) == 2
    assert "--stages needs a cascade" in capsys.readouterr().err
    shutil.copytree(tiny.stages[1].model, tmp_path / "models" / "shapes-tsr-32")
    shutil.copytree(tiny.stages[2].model, tmp_path / "models" / "shapes-ssr-256")
    argv = ["generate", "x", "-o", str(out), "--seed", "1", "-q", "--frames", "2", "--steps", "1"]
    assert main(argv) == 0
    assert "cascade shapes-256: base (shapes-t2v-64) -> tsr" in capsys.readouterr().err
    assert read_video(out)[0].shape == (4, 128, 128, 3)
    assert main([*argv, "--stages", "base"]) == 0
    assert read_video(out)[0].shape == (2, 32, 32, 3)


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["--stages", "base,nope"], "unknown stage"),
        (["--stages", "tsr"], "must include 'base'"),
        (["--refine-model", "MODEL"], "--refine-model does not combine with a cascade"),
        # --candidates reaches the base stage (whose model has no frame scorer)
        (["--candidates", "2"], "candidates=2 needs a model that draws a first frame"),
        (["--guidance-interval", "2,1"], "guidance_interval's hi must be a number above"),
    ],
)
def test_bad_cascade_options_are_one_line(cascade_file, tiny_model, tmp_path, capsys, args, msg):
    args = [str(tiny_model) if a == "MODEL" else a for a in args]
    argv = ["generate", "x", "-o", str(tmp_path / "o.mp4"), "--cascade", str(cascade_file), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_eval_sr_mode(tiny_ssr_model, tmp_path, capsys):
    report = tmp_path / "sr.json"
    argv = ["eval", "--mode", "sr", "--model", str(tiny_ssr_model), "--clips", "1"]
    argv += ["--frames", "2", "--size", "16", "--steps", "1"]
    assert main([*argv, "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "bicubic" in out and "seconds per clip" in out
    data = json.loads(report.read_text())
    assert data["task"] == "spatial-sr" and data["settings"]["output"] == "2x64x64"
    assert main(["eval", "--mode", "sr"]) == 2
    assert "--mode sr needs --model" in capsys.readouterr().err


def test_eval_cascade_mode(cascade_file, tmp_path, capsys):
    report = tmp_path / "c.json"
    argv = ["eval", "--mode", "cascade", "--cascade", str(cascade_file), "--limit", "1"]
    assert main([*argv, "--kinds", "canonical", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "output: 4 frames 128x128 at 16 fps" in out and "seconds per stage" in out
    data = json.loads(report.read_text())
    assert set(data["settings"]["stage_seconds"]) == {"base", "tsr", "ssr"}
    assert set(data["shape_confusion"]) == set(data["motion_confusion"]) == {"canonical"}


def test_eval_t2v_mode_writes_the_report_and_the_model_card(tiny_minilm_model, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_minilm_model, model)
    argv = ["eval", "--model", str(model), "--limit", "1", "--kinds", "canonical"]
    assert main([*argv, "--model-card", "tiny"]) == 2  # an export's card needs training.json
    assert "--model-card needs" in capsys.readouterr().err
    record = {"step": 3, "samples_seen": 6, "images_seen": 9, "config": {"train": {}}}
    (model / "training.json").write_text(json.dumps(record))
    report = tmp_path / "t2v.json"
    assert main([*argv, "--steps", "1", "--json", str(report), "--model-card", "tiny"]) == 0
    assert "canonical" in capsys.readouterr().out
    data = json.loads(report.read_text())
    assert data["settings"]["num_inference_steps"] == 1
    card = (model / "README.md").read_text()
    assert card.startswith("# tiny") and "6 clips + 9 single frames" in card
