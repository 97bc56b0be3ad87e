"""`vidsynth eval`: the fixed prompt set, the report, the model card."""

from __future__ import annotations

import json

import pytest

import vidsynth
from vidsynth.errors import InvalidParameter
from vidsynth.evaluation.prompts import KINDS, prompt_set
from vidsynth.evaluation.text_to_video import accuracy_interval, evaluate
from vidsynth.world.parse import parse_caption


def test_prompt_set_is_fixed_and_parseable():
    ps = prompt_set("v1")
    assert ps == prompt_set("v1")
    assert {p.kind for p in ps} == set(KINDS)
    assert len({p.seed for p in ps}) == len(ps)
    for p in ps:
        target = parse_caption(p.target)
        assert len(target.objects) == (2 if p.kind == "two_objects" else 1)
        if p.kind != "paraphrase":
            assert p.prompt == p.target


@pytest.mark.parametrize("other", ["val1", "val2"])
def test_validation_sets_are_disjoint_from_the_reported_one_and_each_other(other):
    v1, val = prompt_set("v1"), prompt_set(other)
    assert len(val) == len(v1)
    for reference in (v1, prompt_set("val1" if other == "val2" else "val2")):
        assert not {p.seed for p in reference} & {p.seed for p in val}
        shared = {p.prompt for p in reference} & {p.prompt for p in val}
        assert len(shared) < len(v1) // 10  # a few short canonical captions may coincide
    with pytest.raises(InvalidParameter, match="unknown eval prompt set"):
        prompt_set("v0")


def test_evaluate_reports_every_kind(tiny_minilm_model):
    pipe = vidsynth.load(tiny_minilm_model, device="cpu")
    report = evaluate(pipe, limit=2, num_frames=4, height=32, width=32, num_inference_steps=1)
    assert set(report.accuracy) == set(KINDS)
    assert report.counts == {k: 2 for k in KINDS}
    for acc in report.accuracy.values():
        assert 0.0 <= acc["colour"] <= 1.0
    # random weights draw noise: the judge must not call that correct
    assert all(acc["all_correct"] == 0 for acc in report.accuracy.values())
    assert "seconds per video" in report.table()
    json.dumps(report.to_dict())
    # the motion and shape confusions count every object of every prompt, under its target
    for attribute, table in (
        ("motion", report.motion_confusion),
        ("shape", report.shape_confusion),
    ):
        assert set(table) == set(KINDS)
        for kind, counts in table.items():
            objects = 2 * (2 if kind == "two_objects" else 1)
            assert sum(counts.values()) == objects, counts
            assert all("→" in pair for pair in counts)
            assert f"{attribute}, {kind} (target→detected)" in report.table()
    assert report.to_dict()["shape_confusion"] == report.shape_confusion
    assert report.plan == report.shape_plan == {}  # no motion planner, no plan figures
    # every figure has its range, which holds it
    assert set(report.intervals) == set(KINDS)
    for kind, acc in report.accuracy.items():
        assert set(report.intervals[kind]) == set(acc)
        for attribute, (lo, hi) in report.intervals[kind].items():
            assert 0.0 <= lo <= acc[attribute] <= hi <= 1.0
    assert report.table().count("95% range") == len(KINDS)


def test_accuracy_interval_is_wilsons():
    # Wilson's interval for 5 of 10 at 95%: 0.5 ± 0.2634 (z = 1.96)
    lo, hi = accuracy_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    # at the edges it stays in [0, 1] and still has a width, where p ± z·sqrt(p(1-p)/n) has none
    assert accuracy_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    lo, hi = accuracy_interval(96, 96)
    assert hi == 1.0 and lo == pytest.approx(0.9615, abs=1e-4)
    # more verdicts, a narrower range
    narrow = accuracy_interval(67, 96)
    wide = accuracy_interval(33, 48)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def test_the_plan_report_tells_planner_misses_from_unet_misses():
    from types import SimpleNamespace

    from vidsynth.evaluation.text_to_video import plan_report

    ones = [p for p in prompt_set("v1") if p.kind == "canonical"][:4]
    two = [p for p in prompt_set("v1") if p.kind == "two_objects"][:1]
    wants = [parse_caption(p.target).objects[0].motion for p in ones]
    other = "rotating" if wants[3] != "rotating" else "still"
    planned = [[(None, w)] for w in wants[:3]] + [[(None, other)]]
    judged = [True, False, True, True]  # the UNet missed one right plan, got one wrong one
    results = {
        "canonical": [SimpleNamespace(checks={"motion": [m]}) for m in judged],
        "two_objects": [
            SimpleNamespace(checks={"motion": m}) for m in ([True, True], [True, False], [True] * 2)
        ],
    }
    objects = parse_caption(two[0].target).objects
    both = [(o.colour, o.motion) for o in objects]
    plans = [
        both[::-1],  # right in either order: each object is found by its colour
        [both[0], (both[1][0], other if both[1][1] != other else "still")],  # a motion wrong
        [both[0]],  # one object where there are two
    ]
    report = plan_report([*ones, *two * 3], [*planned, *plans], results)
    assert report["two_objects"] == {
        "n": 3.0,
        "right": pytest.approx(1 / 3),
        "motion_if_right": 1.0,
        "motion_if_wrong": 0.5,
    }
    assert report["canonical"] == {
        "n": 4.0,
        "right": 0.75,
        "motion_if_right": pytest.approx(2 / 3),
        "motion_if_wrong": 1.0,
    }


def test_the_shape_plan_report_pairs_each_object_by_its_colour():
    from types import SimpleNamespace

    from vidsynth.evaluation.text_to_video import plan_report, shape_plan_is_right

    two = next(p for p in prompt_set("v1") if p.kind == "two_objects")
    a, b = parse_caption(two.target).objects
    other = "star" if b.shape != "star" else "circle"
    plans = [
        {b.colour: b.shape, a.colour: a.shape},  # right, whichever order it was read in
        {a.colour: a.shape, b.colour: other},  # one shape wrong
        {a.colour: a.shape},  # one object where there are two
    ]
    judged = [[True, True], [True, False], [True, True]]
    results = {"two_objects": [SimpleNamespace(checks={"shape": j}) for j in judged]}
    report = plan_report([two] * 3, plans, results, shape_plan_is_right, "shape")
    assert report == {
        "two_objects": {
            "n": 3.0,
            "right": pytest.approx(1 / 3),
            "shape_if_right": 1.0,
            "shape_if_wrong": 0.5,
        }
    }
