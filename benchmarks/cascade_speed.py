"""How fast and how big the default cascade (base → TSR → SSR) is, end to end: `vidsynth
generate` in a fresh process each time (imports, three model loads, sampling, MP4 encode).

The cascade issue's budget on 2 CPU cores: ≤ 30 s for the whole command. Reports, as medians
over --repeats, the command's wall time, each stage's time (load + run) and the peak RSS the
command prints (the process's maximum resident set). Run on an otherwise idle machine:

    python benchmarks/cascade_speed.py --repeats 3
    python benchmarks/cascade_speed.py --cascade my-chain.toml --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "a red circle moving right on a white background"
STAGE = re.compile(r"^stage (\S+) \(.*\): (\d+) frames (\d+)x(\d+) at ([\d.]+) fps, ([\d.]+) s")
RSS = re.compile(r"^peak RSS: (\d+) MiB")


def run_once(seed: int, cascade: str | None, threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.mp4"
        cmd = [sys.executable, "-m", "vidsynth.cli", "generate", PROMPT, "-o", str(out)]
        cmd += ["--seed", str(seed), "--quiet"] + (["--cascade", cascade] if cascade else [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"vidsynth generate failed:\n{proc.stderr}")
        assert out.stat().st_size > 0
    stages, rss, shape = {}, None, None
    for line in proc.stderr.splitlines():
        if m := STAGE.match(line):
            stages[m.group(1)] = float(m.group(6))
            shape = f"{m.group(2)} frames {m.group(3)}x{m.group(4)} at {m.group(5)} fps"
        elif m := RSS.match(line):
            rss = int(m.group(1))
    if not stages:
        raise SystemExit("no stage lines: is the default cascade installed? (pass --cascade)")
    return {"wall_s": wall, "stages_s": stages, "peak_rss_mib": rss, "output": shape}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cascade", default=None, help="cascade file (default: the bundled one)")
    parser.add_argument("--threads", type=int, default=None, help="OMP threads (default: all)")
    args = parser.parse_args()
    runs = [run_once(seed, args.cascade, args.threads) for seed in range(args.repeats)]
    names = list(runs[0]["stages_s"])
    report = {
        "cpus": os.cpu_count(),
        "threads": args.threads,
        "output": runs[0]["output"],
        "command_s_median": statistics.median(r["wall_s"] for r in runs),
        "command_s_max": max(r["wall_s"] for r in runs),
        "stage_s_median": {n: statistics.median(r["stages_s"][n] for r in runs) for n in names},
        "peak_rss_mib_max": max(r["peak_rss_mib"] or 0 for r in runs),
    }
    print(f"output              {report['output']}")
    print(
        f"vidsynth generate   {report['command_s_median']:.1f} s median, max "
        f"{report['command_s_max']:.1f} s (budget 30 s)"
    )
    for name, seconds in report["stage_s_median"].items():
        print(f"  stage {name:<12}{seconds:.1f} s median (load + run)")
    print(f"peak RSS            {report['peak_rss_mib_max']} MiB")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
