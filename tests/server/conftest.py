"""Studio fixtures: an app on a tiny model (TestClient), and a real server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from vidsynth.server.app import create_app
from vidsynth.server.settings import Limits, Settings

TERMINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture
def make_settings(tiny_model: Path, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for the tiny model in a fresh data folder; keyword overrides, `limits=`."""

    def make(**overrides: Any) -> Settings:
        limits = overrides.pop("limits", {})
        base = {"data_dir": tmp_path / "studio", "model": str(tiny_model), "threads": 1}
        return Settings(**(base | overrides), limits=Limits(**limits))

    return make


@pytest.fixture
def client(make_settings) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings())) as c:
        yield c


def wait_for(client: Any, job_id: str, until: Callable[[dict], bool], timeout: float = 30) -> dict:
    """Poll a job until `until(job)`; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if until(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting on job {job_id}: {job}")
        time.sleep(0.02)


def wait_done(client: Any, job_id: str, timeout: float = 30) -> dict:
    return wait_for(client, job_id, lambda j: j["status"] in TERMINAL, timeout)


def submit(client: Any, headers: dict | None = None, **params: Any) -> Any:
    return client.post(
        "/v1/jobs", json={"task": "text-to-video", "params": params}, headers=headers or {}
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    settings: Settings
    app: Any


@pytest.fixture
def live_server(make_settings) -> Iterator[LiveServer]:
    """The app on uvicorn on a loopback port, in a thread of this process."""
    import uvicorn

    settings = make_settings()
    app = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # the kernel picks a free port; no race with other tests
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", settings, app)
    server.should_exit = True
    thread.join(15)
