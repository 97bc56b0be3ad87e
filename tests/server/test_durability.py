"""Kill a real `vidsynth serve` process with SIGKILL mid-job, restart it: no job is lost.

The server runs as a subprocess (the same command a user types), so nothing of the test's
own process can paper over what a crash leaves on disk.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import TERMINAL, free_port, wait_done, wait_for

# Long enough that the kill lands mid-denoise (~16 ms a step on one core at 8×32×32).
LONG = {"prompt": "a blue star rotating", "seed": 1234, "steps": 200, "frames": 8}
SHORT = {"steps": 5, "frames": 4}
START_TIMEOUT_S = 120


class Server:
    """`python -m vidsynth.cli serve` on a loopback port, its log in a file."""

    def __init__(self, model: Path, data_dir: Path, port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log
        env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        cmd = [sys.executable, "-m", "vidsynth.cli", "serve", "--port", str(port)]
        cmd += ["--data-dir", str(data_dir), "--model", str(model), "--threads", "1"]
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited:\n{self.log()}"
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server did not come up in {START_TIMEOUT_S} s:\n{self.log()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


def rows(db_path: Path) -> dict[str, sqlite3.Row]:
    """The jobs table as a fresh reader sees it after the crash (WAL included)."""
    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    try:
        return {r["id"]: r for r in db.execute("SELECT * FROM jobs")}
    finally:
        db.close()


def decode(path: Path) -> Any:
    from vidsynth.io.video import read_video

    frames, _ = read_video(path)
    return frames


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@pytest.mark.slow
def test_sigkill_mid_job_loses_nothing(tiny_model, tmp_path):
    data = tmp_path / "studio"
    outputs = data / "outputs"
    port = free_port()
    log = tmp_path / "server.log"
    server = Server(tiny_model, data, port, log)
    try:
        server.wait_healthy()
        with httpx.Client(base_url=server.url, timeout=10) as c:

            def post(params: dict, key: str | None = None) -> dict:
                headers = {"Idempotency-Key": key} if key else {}
                body = {"task": "text-to-video", "params": params}
                r = c.post("/v1/jobs", json=body, headers=headers)
                assert r.status_code == 202, r.text
                return r.json()

            done_before = post({"prompt": "finished before the crash", **SHORT})
            assert wait_done(c, done_before["id"])["status"] == "succeeded"
            long = post(LONG, key="long-job")
            queued = [post({"prompt": f"queued {i}", **SHORT}) for i in range(3)]
            at_kill = wait_for(
                c, long["id"], lambda j: j["status"] == "running" and j["progress"]["step"] >= 5
            )
        server.kill()
        killed_at = time.time()
        assert at_kill["progress"]["stage"] == "denoise"  # the kill really was mid-job

        # -- what the crash left on disk --
        before = rows(data / "jobs.sqlite3")
        ids = [done_before["id"], long["id"], *(q["id"] for q in queued)]
        assert set(before) == set(ids)  # every accepted job was committed
        assert before[done_before["id"]]["status"] == "succeeded"
        assert before[long["id"]]["status"] == "running" and before[long["id"]]["attempts"] == 1
        assert all(before[q["id"]]["status"] == "queued" for q in queued)
        # only the finished job has a video, and it is whole; nothing of the killed one exists
        assert sorted(p.name for p in outputs.iterdir()) == [f"{done_before['id']}.mp4"]
        assert decode(outputs / f"{done_before['id']}.mp4").shape == (4, 32, 32, 3)

        # What a kill inside `save` would leave: a hidden, half-written temporary file. It must
        # never be served, and the restart clears it.
        whole = (outputs / f"{done_before['id']}.mp4").read_bytes()
        stale = outputs / f".{long['id']}.mp4.0123456789ab.tmp.mp4"
        stale.write_bytes(whole[: len(whole) // 2])

        # -- restart on the same data folder and port --
        server = Server(tiny_model, data, port, log)
        server.wait_healthy()
        assert "re-running 1 job(s) interrupted by a crash" in server.log()
        assert not stale.exists()
        with httpx.Client(base_url=server.url, timeout=10) as c:
            # a client retrying its submission after the crash gets the same job back
            again = c.post(
                "/v1/jobs",
                json={"task": "text-to-video", "params": LONG},
                headers={"Idempotency-Key": "long-job"},
            )
            assert again.status_code == 202 and again.json()["id"] == long["id"]
            assert again.headers["idempotent-replayed"] == "true"

            final = {i: wait_done(c, i, timeout=120) for i in ids}
            for job_id, job in final.items():
                assert job["status"] == "succeeded", job
                video = c.get(job["video_url"])
                assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
                got = tmp_path / f"{job_id}.mp4"
                got.write_bytes(video.content)
                expect = (job["params"]["frames"], job["params"]["height"], job["params"]["width"])
                assert decode(got).shape == (*expect, 3)
            # the interrupted job ran again, from the start, after the restart; others once
            assert final[long["id"]]["attempts"] == 2
            assert _ts(final[long["id"]]["started_at"]) > killed_at
            assert all(final[i]["attempts"] == 1 for i in ids if i != long["id"])
            assert f"job {long['id']} started (attempt 2)" in server.log()
            assert _ts(final[done_before["id"]]["finished_at"]) < killed_at  # not re-run

            assert not [p for p in outputs.iterdir() if p.name.startswith(".")]
            assert c.get("/v1/health").json()["queued"] == 0
            assert all(j["status"] in TERMINAL for j in c.get("/v1/jobs").json()["jobs"])
    finally:
        server.kill()
