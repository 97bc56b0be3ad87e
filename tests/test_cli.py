"""The command line, run as users run it (a subprocess) where it matters."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from vidsynth.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vidsynth.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_generate_writes_a_playable_h264_mp4(tiny_model, tmp_path):
    """The issue's acceptance: generate with a tiny random model folder, then decode the MP4."""
    from vidsynth.io.video import probe_video, read_video

    out = tmp_path / "out.mp4"
    proc = run_cli(
        "generate",
        "a red circle moving right",
        "-o",
        str(out),
        "--model",
        str(tiny_model),
        "--seed",
        "42",
        "--frames",
        "5",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(out)  # the path is printed last
    assert "seed: 42" in proc.stderr
    info = probe_video(out)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    frames, fps = read_video(out)
    assert frames.shape == (5, 32, 32, 3) and fps == pytest.approx(8.0)


def test_random_seed_is_printed_and_reproduces(tiny_model, tmp_path, capsys):
    assert (
        main(
            [
                "generate",
                "x",
                "-o",
                str(tmp_path / "a"),
                "--model",
                str(tiny_model),
                "--seed",
                "-1",
                "-q",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    seed = int(err.split("seed: ")[1].split()[0])
    assert (
        main(
            [
                "generate",
                "x",
                "-o",
                str(tmp_path / "b"),
                "--model",
                str(tiny_model),
                "--seed",
                str(seed),
                "-q",
            ]
        )
        == 0
    )
    from vidsynth.io.video import read_video

    a, _ = read_video(tmp_path / "a")
    b, _ = read_video(tmp_path / "b")
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--height", "30"], "height=30 must be a multiple of 8"),
        (["--steps", "0"], "num_inference_steps must be between 1"),
        (["--scheduler", "zzz"], "unknown scheduler"),
        (["--model", "/no/such/dir"], "no model folder at"),
        (["--candidates", "0"], "candidates must be between 1"),
        (["--candidates", "2"], "candidates=2 needs a model that draws a first frame"),
        (["--guidance-interval", "1,0.5"], "guidance_interval's hi must be a number above"),
        (["--guidance-interval", "-1"], "guidance_interval's lo must be between 0"),
        (["--first-frame-guidance-interval", "-1"], "first_frame_guidance_interval's lo must"),
    ],
)
def test_bad_input_is_one_line_not_a_traceback(tiny_model, tmp_path, capsys, args, message):
    argv = ["generate", "x", "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_model), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unknown_output_format_fails_before_loading(capsys, tmp_path):
    assert main(["generate", "x", "-o", str(tmp_path / "o.avi2"), "--model", "/nope"]) == 2
    assert "unsupported video format" in capsys.readouterr().err


def test_help_reads_well():
    proc = run_cli("--help")
    assert proc.returncode == 0 and "generate" in proc.stdout
    proc = run_cli("generate", "--help")
    for flag in (
        "--negative-prompt",
        "--seed",
        "--steps",
        "--guidance",
        "--frames",
        "--fps",
        "--height",
        "--width",
        "--scheduler",
        "--device",
        "--dtype",
    ):
        assert flag in proc.stdout


def test_two_stage_refine_is_generate_then_v2v(tiny_model, tiny_minilm_model, tmp_path):
    """Zeroscope's recipe as one command: the base clip, upscaled and re-rendered by a second
    model, is exactly what `generate` followed by `v2v` with the same seed gives."""
    from vidsynth.io.video import read_video

    def run(*args: str | object) -> None:
        assert main([str(a) for a in args] + ["--seed", "5", "-q"]) == 0

    prompt, two_stage, base, refined = "a red circle", *(tmp_path / n for n in "abc")
    run(
        "generate",
        prompt,
        "-o",
        two_stage,
        "--model",
        tiny_model,
        "--refine-model",
        tiny_minilm_model,
        "--refine-size",
        "48x40",
        "--refine-strength",
        0.7,
    )
    run("generate", prompt, "-o", base, "--model", tiny_model)
    run(
        "v2v",
        base,
        "-o",
        refined,
        "--prompt",
        prompt,
        "--model",
        tiny_minilm_model,
        "--strength",
        0.7,
        "--width",
        48,
        "--height",
        40,
    )
    a, _ = read_video(two_stage)
    b, _ = read_video(refined)
    c, _ = read_video(base)
    assert a.shape == (4, 40, 48, 3) and c.shape == (4, 32, 32, 3)
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--refine-size", "64x64"], "--refine-size needs --refine-model"),
        (["--refine-model", "MODEL", "--refine-strength", "0"], "strength must be above 0"),
        (["--refine-model", "MODEL", "--refine-size", "60x64"], "must be a multiple of 8"),
        (["--refine-model", "/no/such/dir"], "no model folder at"),
    ],
)
def test_bad_refine_options_fail_before_the_base_stage(tiny_model, tmp_path, capsys, args, message):
    args = [str(tiny_model) if a == "MODEL" else a for a in args]
    argv = ["generate", "x", "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_model), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert "seed:" not in err  # nothing was generated


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--weight", "0"], "--weight must be positive"),
        (["--sure", "0.5"], "--sure is a log-likelihood, 0 or below"),
        (["--guidance", "0"], "--guidance is a step above 0, got 0"),
        (["--own-prompts", "-1"], "--own-prompts must be 0 or more"),
        ([], "has no frame scorer"),
    ],
)
def test_train_shape_reader_refuses_by_name(tiny_model, tmp_path, capsys, args, message):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    assert main(["train-shape-reader", str(folder), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (folder / "shape_reader").exists()
