"""The model card's evaluation table, written from a `vidsynth eval --json` report."""

from __future__ import annotations

from vidsynth.training.model_card import eval_table

ATTRIBUTES = ("colour", "shape", "motion", "background", "all_correct")


def report(**intervals: dict[str, tuple[float, float]]) -> dict:
    acc = {"colour": 1.0, "shape": 0.698, "motion": 0.885, "background": 1.0, "all_correct": 0.479}
    out = {"accuracy": {"two_objects": acc}, "counts": {"two_objects": 48}}
    if intervals:
        out["intervals"] = intervals
    return out


def test_eval_table_marks_targets_and_gives_each_figure_its_range():
    spans = {a: (0.6, 0.78) for a in ATTRIBUTES}
    lines = eval_table(report(two_objects=spans))
    assert lines[2] == "| two_objects | 48 | 100.0% ✓ | 69.8% ✗ | 88.5% ✓ | 100.0% ✓ | 47.9% |"
    assert lines[3] == "| ↳ 95% range | | 60–78 | 60–78 | 60–78 | 60–78 | 60–78 |"


def test_eval_table_of_a_report_without_ranges_has_none():
    lines = eval_table(report())
    assert len(lines) == 3 and not any("range" in line for line in lines)
