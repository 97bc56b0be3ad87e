"""Load-test the studio: M client threads send N job submissions in all to a real server.

The server is `python -m vidsynth.cli serve` in a subprocess on a loopback port (the command a
user runs, in its own process, so the clients' threads do not share its GIL), with a small
`--max-queue` so that some submissions are refused with 429. The run is bounded twice: by the
number of submissions and by `--time-limit` seconds, submissions and draining together.

Reported:

* accepted (202), rejected_429, errors (any other answer, or no answer);
* completed: accepted jobs that ended `succeeded` with their video served;
* lost: accepted jobs that did not (failed, cancelled, unfinished at the time limit, or
  without a video). It must be 0; the script exits 1 otherwise;
* p50/p95 of the time in queue (started_at - created_at, from GET /v1/jobs/{id}) and of the
  submit latency (POST /v1/jobs round trip, as the client sees it).

A table for people, then one JSON line for machines. Without `--model` it builds a tiny
random-weight model (vidsynth.testing), so the figures measure the server, not the model.

Example::

    python benchmarks/studio_load.py --clients 4 --submissions 40 --max-queue 16
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass
class Tally:
    """What the client threads saw; appended to under `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    next_index: int = 0
    accepted: list[str] = field(default_factory=list)
    rejected_429: int = 0
    errors: list[str] = field(default_factory=list)
    submit_latency_s: list[float] = field(default_factory=list)

    def take(self, total: int) -> int | None:
        """The next submission's index, or None once `total` have been taken."""
        with self.lock:
            if self.next_index >= total:
                return None
            self.next_index += 1
            return self.next_index - 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tiny_model(folder: Path) -> Path:
    """A tiny random model (4 frames at 32×32, 3 steps by default): a job takes ~0.1 s."""
    from vidsynth.testing import save_tiny_model

    return save_tiny_model(
        folder / "model", num_frames=4, height=32, width=32, num_inference_steps=3
    )


@dataclass
class Server:
    proc: subprocess.Popen
    log: Any  # the open log file, closed once the server has stopped


def start_server(args: argparse.Namespace, model: Path, data_dir: Path, port: int) -> Server:
    """`vidsynth serve` in a subprocess; returns it once /v1/health answers."""
    cmd = [sys.executable, "-m", "vidsynth.cli", "serve", "--port", str(port)]
    cmd += ["--data-dir", str(data_dir), "--model", str(model)]
    cmd += ["--max-queue", str(args.max_queue), "--workers", str(args.workers)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 (the server writes it until it stops)
    server = Server(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            log.close()
            raise SystemExit(f"the server exited:\n{(data_dir / 'server.log').read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code == 200:
                return server
        time.sleep(0.1)
    stop_server(server)
    raise SystemExit("the server did not answer /v1/health within 120 s")


def stop_server(server: Server) -> None:
    """Ctrl-C, as a user would stop it; SIGKILL if it does not stop in time."""
    server.proc.send_signal(signal.SIGINT)
    try:
        server.proc.wait(20)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(10)
    server.log.close()


def client(url: str, args: argparse.Namespace, tally: Tally, deadline: float, n: int) -> None:
    """One client: submit until the shared count or the time runs out."""
    with httpx.Client(base_url=url, timeout=args.request_timeout) as http:
        while time.monotonic() < deadline and (i := tally.take(args.submissions)) is not None:
            params = {"prompt": f"load test {i} from client {n}", "seed": i, "steps": args.steps}
            if args.frames:
                params["frames"] = args.frames
            t0 = time.perf_counter()
            try:
                r = http.post("/v1/jobs", json={"task": "text-to-video", "params": params})
            except httpx.HTTPError as err:
                with tally.lock:
                    tally.errors.append(f"{type(err).__name__}: {err}")
                continue
            latency = time.perf_counter() - t0
            with tally.lock:
                tally.submit_latency_s.append(latency)
                if r.status_code == 202:
                    tally.accepted.append(r.json()["id"])
                elif r.status_code == 429:
                    tally.rejected_429 += 1
                else:
                    tally.errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
            if args.interval:
                time.sleep(args.interval)


def drain(url: str, ids: list[str], deadline: float) -> dict[str, dict]:
    """Poll the accepted jobs until all have ended or the time is up; their last views."""
    last: dict[str, dict] = {}
    with httpx.Client(base_url=url, timeout=10) as http:
        pending = list(ids)
        while pending:
            still = []
            for job_id in pending:
                try:
                    r = http.get(f"/v1/jobs/{job_id}")
                    ok = r.status_code == 200
                    last[job_id] = r.json() if ok else {"status": f"HTTP {r.status_code}"}
                except httpx.HTTPError as err:  # a dead server: those jobs count as lost
                    last[job_id] = {"status": f"{type(err).__name__}"}
                if last[job_id]["status"] not in TERMINAL:
                    still.append(job_id)
            pending = still
            if pending:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        for job in last.values():  # a success counts only if its video is served
            if job.get("status") == "succeeded":
                job["video_bytes"] = 0
                with contextlib.suppress(httpx.HTTPError):
                    video = http.get(job["video_url"])
                    job["video_bytes"] = len(video.content) if video.status_code == 200 else 0
    return last


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None}
    p50, p95 = np.percentile(np.asarray(values, dtype=float), [50, 95])
    return {"p50": round(float(p50), 4), "p95": round(float(p95), 4)}


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, load it, drain it, stop it; the report."""
    with tempfile.TemporaryDirectory(prefix="vidsynth-load-") as tmp:
        data_dir = Path(args.data_dir) if args.data_dir else Path(tmp) / "studio"
        data_dir.mkdir(parents=True, exist_ok=True)
        model = Path(args.model) if args.model else tiny_model(Path(tmp))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(args, model, data_dir, port)
        try:
            tally = Tally()
            t0 = time.monotonic()
            deadline = t0 + args.time_limit
            threads = [
                threading.Thread(target=client, args=(url, args, tally, deadline, n))
                for n in range(args.clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            submit_s = time.monotonic() - t0
            final = drain(url, tally.accepted, deadline)
            total_s = time.monotonic() - t0
        finally:
            stop_server(server)

    completed = [
        j for j in final.values() if j.get("status") == "succeeded" and j.get("video_bytes", 0) > 0
    ]
    queue_s = [ts(j["started_at"]) - ts(j["created_at"]) for j in completed]
    run_s = [ts(j["finished_at"]) - ts(j["started_at"]) for j in completed]
    lost = [i for i in tally.accepted if i not in {j["id"] for j in completed}]
    return {
        "clients": args.clients,
        "submissions": tally.next_index,
        "max_queue": args.max_queue,
        "workers": args.workers,
        "steps": args.steps,
        "accepted": len(tally.accepted),
        "rejected_429": tally.rejected_429,
        "errors": len(tally.errors),
        "completed": len(completed),
        "lost": len(lost),
        "lost_statuses": sorted({final.get(i, {}).get("status", "unknown") for i in lost}),
        "queue_s": percentiles(queue_s),
        "run_s": percentiles(run_s),
        "submit_latency_ms": {
            k: (round(v * 1e3, 2) if v is not None else None)
            for k, v in percentiles(tally.submit_latency_s).items()
        },
        "submit_phase_s": round(submit_s, 2),
        "total_s": round(total_s, 2),
        "jobs_per_s": round(len(completed) / total_s, 2) if total_s else None,
        "first_errors": tally.errors[:3],
    }


def table(report: dict[str, Any]) -> str:
    rows = [
        (
            "clients × submissions",
            f"{report['clients']} × {report['submissions']} (max queue "
            f"{report['max_queue']}, {report['workers']} worker(s), {report['steps']} steps)",
        ),
        ("accepted (202)", report["accepted"]),
        ("rejected (429)", report["rejected_429"]),
        ("errors", report["errors"]),
        ("completed", report["completed"]),
        ("lost", report["lost"]),
        ("queue time p50 / p95", f"{report['queue_s']['p50']} s / {report['queue_s']['p95']} s"),
        ("run time p50 / p95", f"{report['run_s']['p50']} s / {report['run_s']['p95']} s"),
        (
            "submit latency p50 / p95",
            f"{report['submit_latency_ms']['p50']} ms / {report['submit_latency_ms']['p95']} ms",
        ),
        ("submitting / in all", f"{report['submit_phase_s']} s / {report['total_s']} s"),
        ("completed per second", report["jobs_per_s"]),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=4, help="client threads (M) [4]")
    p.add_argument("--submissions", type=int, default=40, help="submissions in all (N) [40]")
    p.add_argument("--max-queue", type=int, default=16, help="the server's --max-queue [16]")
    p.add_argument("--time-limit", type=float, default=120, help="seconds for it all [120]")
    p.add_argument("--interval", type=float, default=0.0, help="pause between a client's posts")
    p.add_argument("--steps", type=int, default=3, help="denoising steps per job [3]")
    p.add_argument("--frames", type=int, default=None, help="frames per job [model default]")
    p.add_argument("--workers", type=int, default=1, help="the server's --workers [1]")
    p.add_argument("--threads", type=int, default=1, help="the server's --threads [1]")
    p.add_argument("--model", default=None, help="model folder [a tiny random model]")
    p.add_argument("--data-dir", default=None, help="the server's data folder [a temporary one]")
    p.add_argument("--request-timeout", type=float, default=30, help="seconds per request")
    args = p.parse_args(argv)
    for name in ("clients", "submissions", "max_queue", "steps", "workers"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report = run(parse_args(argv))
    print(table(report))
    print(json.dumps(report, sort_keys=True))
    return 1 if report["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
