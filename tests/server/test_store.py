"""The SQLite job store: order, atomic claims, recovery, cancellation, idempotency, limits."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from vidsynth.server.store import (
    IdempotencyConflict,
    JobStore,
    QueueFull,
    StoreLocked,
)


@pytest.fixture
def store(tmp_path):
    s = JobStore(tmp_path / "jobs.sqlite3")
    yield s
    s.close()


def add(store: JobStore, prompt: str = "p", **kw):
    kw.setdefault("max_active", 100)
    return store.submit("text-to-video", {"prompt": prompt}, seed=1, **kw)[0]


def test_wal_mode_and_first_in_first_out(store, tmp_path):
    jobs = [add(store, str(i)) for i in range(3)]
    mode = sqlite3.connect(tmp_path / "jobs.sqlite3").execute("PRAGMA journal_mode").fetchone()
    assert mode[0] == "wal"
    assert [store.position(j) for j in jobs] == [1, 2, 3]
    first = store.claim()
    assert first.id == jobs[0].id and first.status == "running" and first.attempts == 1
    assert store.position(store.get(jobs[2].id)) == 2
    assert [j.id for j in store.page(10)] == [j.id for j in reversed(jobs)]  # newest first
    assert [j.id for j in store.page(1, before=jobs[1].seq)] == [jobs[0].id]


def test_concurrent_claims_never_share_a_job(store):
    for i in range(40):
        add(store, str(i))
    claimed: list[str] = []

    def worker():
        while (job := store.claim()) is not None:
            claimed.append(job.id)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == len(set(claimed)) == 40


def test_recover_requeues_interrupted_jobs_across_reopen(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    a, b = add(store, "a"), add(store, "b")
    assert store.claim().id == a.id
    store.close()  # as if the process died with `a` running

    store = JobStore(tmp_path / "jobs.sqlite3")
    assert store.recover() == [a.id]
    again = store.claim()
    assert again.id == a.id and again.attempts == 2  # re-run from the start, first in line
    assert store.get(b.id).status == "queued"
    store.close()


def test_cancel_and_finish_race(store):
    job = add(store)
    store.claim()
    now, before = store.cancel(job.id)
    assert (now.status, before) == ("cancelled", "running")
    assert not store.finish(job.id, "x.mp4")  # a worker finishing late does not undo it
    assert store.get(job.id).status == "cancelled"
    assert store.cancel(job.id)[1] == "cancelled"
    assert store.cancel("0" * 32) == (None, None)


def test_idempotency_key(store):
    a, created = store.submit(
        "text-to-video", {}, seed=1, max_active=10, idempotency_key="k", request_hash="h"
    )
    b, again = store.submit(
        "text-to-video", {}, seed=2, max_active=10, idempotency_key="k", request_hash="h"
    )
    assert created and not again and a.id == b.id and b.seed == 1
    with pytest.raises(IdempotencyConflict):
        store.submit(
            "text-to-video", {}, seed=1, max_active=10, idempotency_key="k", request_hash="other"
        )


def test_queue_bound_counts_queued_and_running(store):
    add(store, max_active=2)
    add(store, max_active=2)
    store.claim()
    with pytest.raises(QueueFull):
        add(store, max_active=2)
    assert store.counts()["queued"] == 1 and store.counts()["running"] == 1


def test_one_server_per_data_folder(store, tmp_path):
    with pytest.raises(StoreLocked, match="another vidsynth server"):
        JobStore(tmp_path / "jobs.sqlite3")
