"""benchmarks/studio_load.py runs end to end and its counts add up (so it cannot rot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "studio_load.py"


@pytest.mark.slow
def test_load_script_counts_add_up(tiny_model):
    # 50 steps (~0.5 s a job) against a queue of 2: a burst of 8 must overflow it.
    cmd = [sys.executable, str(SCRIPT), "--clients", "4", "--submissions", "8"]
    cmd += ["--max-queue", "2", "--steps", "50", "--time-limit", "90", "--model", str(tiny_model)]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["submissions"] == 8
    assert report["accepted"] + report["rejected_429"] + report["errors"] == 8
    assert report["errors"] == 0 and report["lost"] == 0
    assert report["rejected_429"] > 0 and report["accepted"] >= 2
    assert report["completed"] == report["accepted"]
    assert 0 <= report["queue_s"]["p50"] <= report["queue_s"]["p95"]
    assert 0 < report["submit_latency_ms"]["p50"] <= report["submit_latency_ms"]["p95"]
    assert "lost" in done.stdout.splitlines()[5]  # the table precedes the JSON line
