"""Model cards: how a bundled model was made and what it scores, written from recorded facts
(the export's training.json and a `vidsynth eval --json` report), never typed by hand."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

TARGETS = {  # issue #3: level-1 canonical, paraphrases, two objects
    "canonical": {"colour": 0.97, "shape": 0.90, "motion": 0.90, "background": 0.97},
    "paraphrase": {"colour": 0.80, "shape": 0.80, "motion": 0.80, "background": 0.80},
    "two_objects": {"colour": 0.70, "shape": 0.70, "motion": 0.70, "background": 0.70},
}


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def _training_lines(name: str, record: dict[str, Any]) -> list[str]:
    cfg = record.get("config", {})
    train = cfg.get("train", {})
    return [
        f"- {name}: `vidsynth train {record.get('config_file', '?')}` — {record.get('step')} "
        f"steps × batch {train.get('batch_size')} ({record.get('samples_seen')} clips), "
        f"{_hours(record.get('train_seconds', 0))} of training on {record.get('device')} "
        f"({record.get('num_processes', 1)} process"
        + (f", {record['torch_threads']} threads" if "torch_threads" in record else "")
        + "), code at commit "
        f"`{(record.get('git_commit') or 'uncommitted')[:12]}`",
    ]


def _vae_lines(record: dict[str, Any] | None) -> list[str]:
    """The VAE's runs, first to last: a fine-tuned VAE records the run it started from."""
    if record is None:
        return []
    lines = _vae_lines(record["init"]) if "init" in record else []
    name = (
        "VAE decoder (encoder frozen)"
        if record.get("config", {}).get("train", {}).get("freeze_encoder")
        else "VAE"
    )
    return lines + _training_lines(name, record)


def write_model_card(
    folder: Path, report: dict[str, Any], *, title: str, hardware: str | None = None
) -> Path:
    """README.md in `folder`, from folder/training.json and an eval report dict."""
    record = json.loads((folder / "training.json").read_text())
    hardware = hardware or f"{platform.machine()} CPU ({os.cpu_count()} cores), {platform.system()}"
    settings = report.get("settings", {})
    index = json.loads((folder / "model_index.json").read_text())
    lines = [
        f"# {title}",
        "",
        "A text-to-video model of vidsynth's shapes world (docs: shared/docs/world.md), trained",
        "from scratch by vidsynth's own training code. It makes `vidsynth generate` work out of",
        "the box on a CPU; it knows coloured shapes moving on flat backgrounds, nothing else.",
        "",
        "## Model",
        f"- {index['_vidsynth']['defaults'].get('num_frames')} frames at "
        f"{index['_vidsynth']['defaults'].get('width')}×"
        f"{index['_vidsynth']['defaults'].get('height')}, "
        f"{index['_vidsynth']['defaults'].get('fps')} fps; diffusers layout, fp16 safetensors.",
        "- Text encoder: the pretrained MiniLM (all-MiniLM-L6-v2) from the "
        f"`{index['_vidsynth']['text_encoder_package']}` package, frozen, token-level states.",
        "- UNet3D (ModelScope architecture at toy width), v-prediction, zero-terminal-SNR cosine",
        "  schedule; VAE: diffusers AutoencoderKL, ×4 spatial compression, 4 latent channels.",
        f"- Sampling defaults: {json.dumps(index['_vidsynth']['defaults'])}",
        "",
        "## How it was made",
        *_vae_lines(record.get("vae")),
        *_training_lines("UNet", record),
        f"- Hardware: {hardware}.",
        "",
        "## Evaluation",
        f"`vidsynth eval --model <this folder>` (prompt set {settings.get('version')}, fixed "
        "seeds"
        + (f", first {settings['limit']} prompts of each kind" if settings.get("limit") else "")
        + "), accuracy of the world's judge:",
        "",
        "| kind | n | colour | shape | motion | background | all correct |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, acc in report["accuracy"].items():
        cells = []
        for attr in ("colour", "shape", "motion", "background"):
            value = acc.get(attr)
            target = TARGETS.get(kind, {}).get(attr)
            mark = "" if target is None or value is None else (" ✓" if value >= target else " ✗")
            cells.append("—" if value is None else f"{100 * value:.1f}%{mark}")
        lines.append(
            f"| {kind} | {report['counts'][kind]} | "
            + " | ".join(cells)
            + f" | {100 * acc['all_correct']:.1f}% |"
        )
    lines += [
        "",
        f"Generation: {report['seconds_per_video']:.2f} s per clip (model loaded, default steps, "
        f"{settings.get('torch_threads', '?')} torch threads) on {hardware}.",
        "✓/✗: against the targets of issue #3 (canonical ≥ 97/90/90/97 %, paraphrases ≥ 80 %,",
        "two objects ≥ 70 % per attribute).",
    ]
    path = folder / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path
