"""The durable job queue: one SQLite database (WAL mode) holding every job and its history.

A job is committed (and fsynced, `synchronous=FULL`) before its submission is answered, so an
accepted job survives a SIGKILL or a power cut. Jobs found `running` when the store opens were
interrupted by a crash; `recover()` queues them again to re-run from the start.

One connection behind a lock: every statement is short, and progress lives in memory, not
here, so writes are a handful per job.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidsynth.errors import VidsynthError

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
ACTIVE = (QUEUED, RUNNING)
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- submission order: queue order and history order
    id TEXT NOT NULL UNIQUE,
    task TEXT NOT NULL,
    params TEXT NOT NULL,                   -- JSON, defaults resolved at submission
    seed INTEGER,
    status TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    request_hash TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    output TEXT                             -- file name under the outputs folder
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
"""


class StoreLocked(VidsynthError):
    """Another server already uses this data folder."""


class QueueFull(Exception):
    """The queue holds its maximum of active jobs."""

    def __init__(self, active: int) -> None:
        super().__init__(f"the queue is full ({active} jobs waiting or running)")
        self.active = active


class IdempotencyConflict(Exception):
    """An Idempotency-Key was reused with a different request."""


@dataclass(frozen=True)
class Job:
    """One row of the jobs table."""

    seq: int
    id: str
    task: str
    params: dict[str, Any]
    seed: int | None
    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    attempts: int
    error: str | None
    output: str | None

    @property
    def done(self) -> bool:
        return self.status not in ACTIVE

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        return cls(
            seq=row["seq"],
            id=row["id"],
            task=row["task"],
            params=json.loads(row["params"]),
            seed=row["seed"],
            status=row["status"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            attempts=row["attempts"],
            error=row["error"],
            output=row["output"],
        )


class JobStore:
    """Jobs in `<data_dir>/jobs.sqlite3`; holds an exclusive lock on the folder while open."""

    def __init__(self, db_path: Path) -> None:
        db_path = Path(db_path)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        # flock, not a pid file: the kernel drops it when the process dies, even by SIGKILL.
        self._lock_file = open(db_path.with_suffix(".lock"), "w")  # noqa: SIM115 (held open)
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StoreLocked(
                f"another vidsynth server is using {db_path.parent}; stop it or pass another "
                "--data-dir"
            ) from None
        self._lock = threading.RLock()
        # autocommit mode; transactions are explicit (BEGIN IMMEDIATE) where they matter
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a 202 means the job is on disk
        self._db.execute("PRAGMA busy_timeout=5000")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise VidsynthError(
                f"{db_path} was written by a newer vidsynth (schema {version}); upgrade vidsynth"
            )
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._lock_file.close()  # releases the flock

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, args: tuple = ()) -> Job | None:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return Job.from_row(row) if row else None

    # -- submission --------------------------------------------------------------------------
    def submit(
        self,
        task: str,
        params: dict[str, Any],
        *,
        seed: int | None,
        max_active: int,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
    ) -> tuple[Job, bool]:
        """Add a job; returns (job, created). A known idempotency key returns its job."""
        with self._write() as db:
            if idempotency_key is not None:
                row = db.execute(
                    "SELECT * FROM jobs WHERE idempotency_key = ?", (idempotency_key,)
                ).fetchone()
                if row is not None:
                    if row["request_hash"] != request_hash:
                        raise IdempotencyConflict(
                            "this Idempotency-Key was already used with a different request"
                        )
                    return Job.from_row(row), False
            active = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status IN (?, ?)", ACTIVE
            ).fetchone()[0]
            if active >= max_active:
                raise QueueFull(active)
            job_id = uuid.uuid4().hex
            db.execute(
                "INSERT INTO jobs (id, task, params, seed, status, idempotency_key, "
                "request_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    task,
                    json.dumps(params),
                    seed,
                    QUEUED,
                    idempotency_key,
                    request_hash,
                    time.time(),
                ),
            )
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row), True

    # -- reading -----------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        return self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))

    def page(self, limit: int, before: int | None = None) -> list[Job]:
        """Newest first; `before` is the `seq` to continue below (a cursor)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                (before if before is not None else 2**63 - 1, limit),
            ).fetchall()
        return [Job.from_row(r) for r in rows]

    def position(self, job: Job) -> int | None:
        """1 for the next job to start, 2 behind it, ...; None unless queued."""
        if job.status != QUEUED:
            return None
        with self._lock:
            ahead = self._db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status = ? AND seq < ?", (QUEUED, job.seq)
            ).fetchone()[0]
        return ahead + 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {s: 0 for s in STATUSES} | {r[0]: r[1] for r in rows}

    def mean_run_seconds(self, last: int = 20) -> float | None:
        """Mean wall time of the latest finished jobs (for Retry-After), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT AVG(finished_at - started_at) FROM (SELECT * FROM jobs "
                "WHERE status = ? AND started_at IS NOT NULL ORDER BY seq DESC LIMIT ?)",
                (SUCCEEDED, last),
            ).fetchone()
        return row[0]

    # -- the workers' side -------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Queue again the jobs a crash left `running`; returns their ids."""
        with self._write() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM jobs WHERE status = ?", (RUNNING,))]
            db.execute(
                "UPDATE jobs SET status = ?, started_at = NULL WHERE status = ?", (QUEUED, RUNNING)
            )
        return ids

    def claim(self) -> Job | None:
        """Take the oldest queued job and mark it running (atomic: workers never share one)."""
        with self._write() as db:
            row = db.execute(
                "SELECT seq FROM jobs WHERE status = ? ORDER BY seq LIMIT 1", (QUEUED,)
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = ?, started_at = ?, attempts = attempts + 1 WHERE seq = ?",
                (RUNNING, time.time(), row[0]),
            )
            return Job.from_row(db.execute("SELECT * FROM jobs WHERE seq = ?", row).fetchone())

    def _end_running(self, job_id: str, status: str, **fields: Any) -> bool:
        """Move a running job to `status`; False if it is no longer running (cancelled)."""
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._write() as db:
            cur = db.execute(
                f"UPDATE jobs SET status = ?, {sets} WHERE id = ? AND status = ?",
                (status, *fields.values(), job_id, RUNNING),
            )
            return cur.rowcount == 1

    def finish(self, job_id: str, output: str) -> bool:
        return self._end_running(job_id, SUCCEEDED, output=output, finished_at=time.time())

    def fail(self, job_id: str, error: str) -> bool:
        return self._end_running(job_id, FAILED, error=error, finished_at=time.time())

    def requeue(self, job_id: str) -> bool:
        """Put a running job back at its place in the queue (a graceful shutdown)."""
        return self._end_running(job_id, QUEUED, started_at=None)

    def cancel(self, job_id: str) -> tuple[Job | None, str | None]:
        """Cancel a queued or running job; returns (job now, status before)."""
        with self._write() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None, None
            before = row["status"]
            if before in ACTIVE:
                db.execute(
                    "UPDATE jobs SET status = ?, finished_at = ? WHERE id = ?",
                    (CANCELLED, time.time(), job_id),
                )
                row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row), before
