"""Property-based fuzzing of the API with malformed requests: whatever comes in, never a 5xx."""

from __future__ import annotations

import json
import string
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import submit, wait_done
from vidsynth.server.app import create_app
from vidsynth.server.settings import Limits, Settings

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PARAM_NAMES = ["prompt", "negative_prompt", "seed", "steps", "guidance", "frames", "fps"]
PARAM_NAMES += ["width", "height", "model", "scheduler", ""]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
plausible_params = st.dictionaries(st.sampled_from(PARAM_NAMES), json_values, max_size=6)
# values near the edges of what is valid, so the deeper checks (limits, the pipeline's own
# check_params, the memory estimate) run, not only the schema's
near_valid = st.fixed_dictionaries(
    {},
    optional={
        "prompt": st.text(max_size=50),
        "seed": st.integers(-3, 2**64),
        "steps": st.integers(-2, 260),
        "frames": st.integers(-1, 80),
        "width": st.integers(-8, 1100) | st.integers(0, 140).map(lambda n: n * 8),
        "height": st.integers(-8, 1100) | st.integers(0, 140).map(lambda n: n * 8),
        "guidance": st.floats(-1, 150),
        "fps": st.floats(-1, 300) | st.integers(0, 300),
    },
)
tasks = (
    st.just("text-to-video")
    | st.sampled_from(["image-to-video", "", "TEXT-TO-VIDEO"])
    | st.text(max_size=12)
)
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), min_size=1, max_size=300
)


@pytest.fixture(scope="module")
def fuzz_client(tiny_model, tmp_path_factory):
    settings_ = Settings(
        data_dir=tmp_path_factory.mktemp("fuzz") / "studio",
        model=str(tiny_model),
        threads=1,
        limits=Limits(max_queue=20),
    )
    with TestClient(create_app(settings_), raise_server_exceptions=False) as client:
        # a finished job, for the video and cancel endpoints to act on
        done = wait_done(client, submit(client, steps=1).json()["id"])
        client.app.state.pool.pause()  # accepted fuzz jobs (maybe huge) never run
        client.done_id = done["id"]
        yield client


def post_json(client: TestClient, raw: str):
    return client.post("/v1/jobs", content=raw, headers={"content-type": "application/json"})


def no_server_error(response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        assert isinstance(response.json()["detail"], str)  # always one readable message


@FUZZ
@given(body=json_values)
def test_any_json_body(fuzz_client, body):
    raw = json.dumps(body, allow_nan=True)  # NaN and Infinity literals too
    no_server_error(post_json(fuzz_client, raw))


@FUZZ
@given(
    task=tasks,
    params=plausible_params | near_valid,
    extra=st.just({}) | st.dictionaries(st.text(max_size=6), json_values),
)
def test_job_shaped_bodies(fuzz_client, task, params, extra):
    body = {"task": task, "params": params} | extra
    r = post_json(fuzz_client, json.dumps(body, allow_nan=True))
    event(f"HTTP {r.status_code}")  # --hypothesis-show-statistics: some get through to 202
    no_server_error(r)
    assert r.status_code in (202, 409, 413, 422, 429)


@FUZZ
@given(
    body=st.binary(max_size=300),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", "", "*/*"]
    ),
    key=st.none() | header_text,
)
def test_raw_bytes_and_headers(fuzz_client, body, content_type, key):
    headers = {"content-type": content_type}
    if key is not None:
        headers["idempotency-key"] = key.encode("latin-1")  # HTTP allows bytes 0x80-0xff
    no_server_error(fuzz_client.post("/v1/jobs", content=body, headers=headers))


@FUZZ
@given(
    segment=st.text(max_size=40),
    method=st.sampled_from(["GET", "DELETE"]),
    tail=st.sampled_from(["", "/video", "/events", "/../..", "/video?download=maybe"]),
)
def test_any_job_path(fuzz_client, segment, method, tail):
    url = f"/v1/jobs/{quote(segment, safe='')}{tail}"
    no_server_error(fuzz_client.request(method, url))


@FUZZ
@given(limit=st.text(max_size=12), cursor=st.text(max_size=24))
def test_any_history_query(fuzz_client, limit, cursor):
    no_server_error(fuzz_client.get("/v1/jobs", params={"limit": limit, "cursor": cursor}))


@FUZZ
@given(
    value=st.text(alphabet=string.printable, max_size=40)
    | st.from_regex(
        r"bytes=-?[0-9]{0,12}-?[0-9]{0,12}(, ?-?[0-9]{0,6}-[0-9]{0,6}){0,3}", fullmatch=True
    )
)
def test_any_range_header(fuzz_client, value):
    value = value.replace("\n", " ").replace("\r", " ")
    url = f"/v1/jobs/{fuzz_client.done_id}/video"
    no_server_error(fuzz_client.get(url, headers={"range": value}))
