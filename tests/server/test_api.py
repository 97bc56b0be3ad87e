"""The /v1 API on a tiny model: jobs end to end, limits, cancellation, the page's files."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from conftest import submit, wait_done, wait_for
from vidsynth.server.app import create_app


def test_a_job_runs_and_its_video_is_served_with_ranges(client):
    from vidsynth.io.video import read_video

    r = submit(client, prompt="a red circle moving right", seed=7, steps=3, frames=4)
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] in ("queued", "running") and job["seed"] == 7
    assert job["params"]["width"] == 32  # the model's default, filled in at submission

    done = wait_done(client, job["id"])
    assert done["status"] == "succeeded", done
    assert done["progress"] == {"stage": "done", "step": 3, "total": 3}
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]
    assert done["attempts"] == 1 and done["error"] is None and done["position"] is None

    video = client.get(done["video_url"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.headers["accept-ranges"] == "bytes"
    part = client.get(done["video_url"], headers={"Range": "bytes=4-11"})
    assert part.status_code == 206 and part.content == video.content[4:12] == b"ftypisom"
    assert part.headers["content-range"] == f"bytes 4-11/{len(video.content)}"
    past = client.get(done["video_url"], headers={"Range": f"bytes={10**9}-"})
    assert past.status_code == 416
    download = client.get(done["video_url"] + "?download=true")
    assert "attachment" in download.headers["content-disposition"]

    path = client.app.state.settings.outputs_dir / f"{job['id']}.mp4"
    frames, fps = read_video(path)
    assert frames.shape == (4, 32, 32, 3) and fps == 8


def test_progress_events_until_the_end(client):
    job = submit(client, steps=6).json()
    # TestClient hands the stream over once it ends: it ends with the job
    r = client.get(job["events_url"])
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [
        (block.split("\n")[0].removeprefix("event: "), json.loads(block.split("data: ", 1)[1]))
        for block in r.text.strip().split("\n\n")
        if "data: " in block
    ]
    kinds = [k for k, _ in events]
    assert kinds[-1] == "end" and set(kinds[:-1]) <= {"progress"}
    assert events[-1][1]["status"] == "succeeded"
    steps = [e["progress"]["step"] for k, e in events if e["progress"]["stage"] == "denoise"]
    assert steps == sorted(steps)


def test_history_pages_newest_first_and_models_health(client):
    ids = [submit(client, prompt=str(i), steps=1).json()["id"] for i in range(5)]
    for i in ids:
        wait_done(client, i)
    first = client.get("/v1/jobs?limit=2").json()
    assert [j["id"] for j in first["jobs"]] == ids[::-1][:2]
    rest = client.get(f"/v1/jobs?limit=10&cursor={first['next_cursor']}").json()
    assert [j["id"] for j in rest["jobs"]] == ids[::-1][2:] and rest["next_cursor"] is None

    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["workers"] == 1
    (model,) = client.get("/v1/models").json()["models"]
    assert model["tasks"] == ["text-to-video"] and model["defaults"]["frames"] == 4
    assert model["limits"]["max_queue"] == 100 and model["limits"]["max_candidates"] == 16
    assert model["defaults"]["candidates"] == 1
    assert model["first_frames"] is False  # the tiny model draws none
    assert model["defaults"]["guidance_interval"] == [0.0, None]
    assert model["defaults"]["first_frame_guidance_interval"] == [0.0, None]
    assert model["defaults"]["clip_strength"] == 1.0  # from pure noise


def test_a_job_records_its_guidance_interval_and_first_frames(client):
    """Resolved at submission like every parameter, so a job re-run makes the same video."""
    plain = submit(client, prompt="a red circle", seed=1, steps=4, guidance=5.0).json()
    assert plain["params"]["candidates"] == 1
    assert plain["params"]["guidance_interval"] == [0.0, None]
    assert plain["params"]["clip_strength"] == 1.0
    part = submit(
        client, prompt="a red circle", seed=1, steps=4, guidance=5.0, guidance_interval=[0.7]
    ).json()
    assert part["params"]["guidance_interval"] == [0.7, None]
    assert part["params"]["first_frame_guidance_interval"] == [0.0, None]
    videos = []
    for job in (plain, part):
        done = wait_done(client, job["id"])
        assert done["status"] == "succeeded", done
        videos.append(client.get(done["video_url"]).content)
    assert videos[0] != videos[1]  # the last steps ran unguided


def test_idempotency_key_returns_the_same_job(client):
    key = {"Idempotency-Key": "retry-me-1"}
    a = submit(client, headers=key, prompt="once", steps=1)
    b = submit(client, headers=key, prompt="once", steps=1)
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] == b.json()["id"] and b.headers["idempotent-replayed"] == "true"
    assert len(client.get("/v1/jobs").json()["jobs"]) == 1
    c = submit(client, headers=key, prompt="something else", steps=1)
    assert c.status_code == 409 and "Idempotency-Key" in c.json()["detail"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"task": "video-to-music"}, "unknown task 'video-to-music'"),
        ({"params": {"prompt": "x"}}, "missing 'task'"),
        ({"task": "text-to-video", "params": {"frames": 65}}, "frames=65 is more than"),
        ({"task": "text-to-video", "params": {"width": 2048}}, "width=2048 is more than"),
        ({"task": "text-to-video", "params": {"steps": -3}}, "params.steps: Input should be"),
        ({"task": "text-to-video", "params": {"steps": 201}}, "steps=201 is more than"),
        ({"task": "text-to-video", "params": {"steps": "5"}}, "params.steps"),
        ({"task": "text-to-video", "params": {"height": 36}}, "multiple of 8"),
        ({"task": "text-to-video", "params": {"prompt": "x" * 2001}}, "at most 2000"),
        ({"task": "text-to-video", "params": {"colour": "red"}}, "params.colour: Extra"),
        ({"task": "text-to-video", "params": {"model": "other"}}, "not served here"),
        ({"task": "text-to-video", "params": {"seed": 2**70}}, "params.seed"),
        ({"task": "text-to-video", "params": {"candidates": 17}}, "candidates=17 is more than"),
        # the tiny model has no frame scorer
        ({"task": "text-to-video", "params": {"candidates": 2}}, "needs a model that draws"),
        ({"task": "text-to-video", "params": {"guidance_interval": [2, 1]}}, "hi must be"),
        (
            {"task": "text-to-video", "params": {"first_frame_guidance_interval": [2, 1]}},
            "first_frame_guidance_interval's hi must be",
        ),
        ({"task": "text-to-video", "params": {"guidance_interval": ["1"]}}, "params.guidance"),
        # the tiny model draws no first frame to start a clip from
        ({"task": "text-to-video", "params": {"clip_strength": 0.5}}, "starts each clip from"),
        ({"task": "text-to-video", "params": {"clip_strength": 0}}, "params.clip_strength"),
        ({"task": "text-to-video", "params": {"first_frame_steps": 8}}, "sets the steps of"),
        ({"task": "text-to-video", "params": {"first_frame_steps": 0}}, "first_frame_steps"),
        ({"task": "text-to-video", "params": {"guidance_interval": []}}, "params.guidance"),
    ],
)
def test_bad_requests_get_a_clear_422(client, body, message):
    r = client.post("/v1/jobs", json=body)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]


def test_bad_json_and_wrong_content_type(client):
    r = client.post("/v1/jobs", content=b'{"task": ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"].startswith("body: invalid JSON")
    r = client.post("/v1/jobs", content=b'{"task": "text-to-video"}')
    assert r.status_code == 422 and "Content-Type: application/json" in r.json()["detail"]
    nan = b'{"task": "text-to-video", "params": {"guidance": NaN}}'
    r = client.post("/v1/jobs", content=nan, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "finite" in r.json()["detail"]


def test_body_size_limit_413(client):
    big = {"task": "text-to-video", "params": {"prompt": "x" * 70_000}}
    r = client.post("/v1/jobs", json=big)
    assert r.status_code == 413 and "limit of 65536 bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit counts what streams in
        for _ in range(20):
            yield b"x" * 8192

    r = client.post("/v1/jobs", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_ids_cannot_reach_the_file_system(client):
    for bad in ("..", "..%2F..%2Fetc%2Fpasswd", "0" * 31 + "g", "%2e%2e", "A" * 32):
        r = client.get(f"/v1/jobs/{bad}/video")
        assert r.status_code in (404, 422), (bad, r.status_code)
    assert client.get(f"/v1/jobs/{'0' * 32}").status_code == 404
    assert client.get("/static/../store.py").status_code == 404
    assert client.get("/v1/jobs?cursor=../1").status_code == 422


def test_full_queue_answers_429_with_retry_after(make_settings):
    with TestClient(create_app(make_settings(limits={"max_queue": 2}))) as c:
        pool = c.app.state.pool
        pool.pause()
        a, b = submit(c, steps=1), submit(c, steps=1)
        assert (a.status_code, b.status_code) == (202, 202)
        assert b.json()["position"] == 2
        full = submit(c, steps=1)
        assert full.status_code == 429 and int(full.headers["retry-after"]) >= 1
        assert "queue is full" in full.json()["detail"]
        pool.resume()
        assert wait_done(c, b.json()["id"])["status"] == "succeeded"
        assert submit(c, steps=1).status_code == 202


def test_cancel_queued_and_running_jobs(client):
    pool = client.app.state.pool
    pool.pause()
    queued = submit(client, steps=1).json()
    r = client.delete(f"/v1/jobs/{queued['id']}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert client.delete(f"/v1/jobs/{queued['id']}").status_code == 409
    pool.resume()

    long = submit(client, steps=200, frames=8).json()  # several seconds if left to run
    wait_for(client, long["id"], lambda j: j["progress"]["step"] >= 2)
    t0 = time.monotonic()
    assert client.delete(f"/v1/jobs/{long['id']}").json()["status"] == "cancelled"
    # the worker drops it at its next step: the next job starts at once, not seconds later
    nxt = submit(client, steps=1).json()
    assert wait_done(client, nxt["id"], timeout=5)["status"] == "succeeded"
    assert time.monotonic() - t0 < 3
    final = client.get(f"/v1/jobs/{long['id']}").json()
    assert final["status"] == "cancelled" and final["video_url"] is None
    assert client.get(f"/v1/jobs/{long['id']}/video").status_code == 404


def test_openapi_documents_the_api(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/events", "/v1/health"):
        assert path in paths
    assert {"get", "delete"} <= set(paths["/v1/jobs/{job_id}"])
    assert "429" in paths["/v1/jobs"]["post"]["responses"]
    assert "TextToVideoParams" in spec["components"]["schemas"]


def test_the_page_and_its_files(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    for element in ('id="prompt"', 'id="dice"', 'id="progress"', 'id="player"', 'id="gallery"'):
        assert element in page.text


def test_trusted_hosts_when_set(make_settings):
    settings = make_settings(allowed_hosts=("127.0.0.1", "localhost"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as c:
        assert c.get("/v1/health").status_code == 200
        assert c.get("/v1/health", headers={"host": "evil.example"}).status_code == 400
