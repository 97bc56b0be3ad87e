"""Workers: threads in the server process, each with its own loaded model, one job at a time.

Why threads and not worker processes: torch does its heavy work with the GIL released, so the
event loop stays responsive while a job runs (a test holds /v1/health under 100 ms during
generation); progress and cancellation are plain shared memory, with no IPC to get wrong; and
durability does not depend on the workers at all, since every state change goes through the
SQLite store first. A crash of the whole process loses nothing: on restart `recover()` queues
the interrupted jobs again.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidsynth.errors import VidsynthError
from vidsynth.server.settings import Settings
from vidsynth.server.store import Job, JobStore
from vidsynth.server.tasks import TASKS

log = logging.getLogger("vidsynth.server")

VIDEO_SUFFIX = ".mp4"  # H.264 + faststart: plays and seeks in every browser


class JobCancelled(Exception):
    """Raised from the progress hook: the job was cancelled; stop at this step."""


class ShuttingDown(Exception):
    """Raised from the progress hook: the server is stopping; the job goes back to the queue."""


@dataclass(frozen=True)
class LiveProgress:
    stage: str
    step: int
    total: int


def output_path(outputs_dir: Path, job_id: str) -> Path:
    """Where a job's video lives. Ids are hex (checked by the API), so no path escapes."""
    return outputs_dir / f"{job_id}{VIDEO_SUFFIX}"


def sweep_outputs(outputs_dir: Path, interrupted: Iterable[str] = ()) -> int:
    """Delete what a crash left in the outputs folder; returns how many files went.

    Call it with the store open (its lock keeps any other server off this folder) and before
    the workers start. A kill inside `save` leaves a hidden, half-written temporary file
    (`.<id>.mp4.<hex>.tmp.mp4`, never served: the API serves `<id>.mp4` only); a kill between
    the rename and the store's commit leaves the video of a job that will run again anyway.
    """
    removed = 0
    if not outputs_dir.is_dir():
        return 0
    stale = [p for p in outputs_dir.iterdir() if p.name.startswith(".") and ".tmp" in p.name]
    stale += [output_path(outputs_dir, job_id) for job_id in interrupted]
    for path in stale:
        try:
            if path.is_dir():  # _atomic_dir's temporary folders, should a task ever write one
                shutil.rmtree(path)
            else:
                path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def _fsync_dir(folder: Path) -> None:
    """Make a rename into `folder` durable: without it a power cut can undo the rename while
    the store, already committed, says the job succeeded."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WorkerPool:
    """N worker threads sharing one job store."""

    def __init__(
        self,
        store: JobStore,
        settings: Settings,
        load: Callable[..., Any] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._load = load
        self._threads: list[threading.Thread] = []
        self._pipes: list[Any] = []
        self.load_errors: list[str] = []
        self._loaded = threading.Semaphore(0)
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._paused = threading.Event()
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._progress: dict[str, LiveProgress] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the workers; each loads its own model (`wait_ready` waits for that)."""
        self._set_threads()
        self.settings.outputs_dir.mkdir(parents=True, exist_ok=True)
        for n in range(self.settings.workers):
            thread = threading.Thread(target=self._main, name=f"vidsynth-worker-{n}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _set_threads(self) -> None:
        import torch

        threads = self.settings.threads
        if threads is None and "OMP_NUM_THREADS" not in os.environ:
            # intra-op threads are process-wide: share the cores among the workers
            threads = max(1, (os.cpu_count() or 1) // max(1, self.settings.workers))
        if threads is not None:
            torch.set_num_threads(threads)

    def wait_ready(self) -> None:
        """Block until every worker has loaded its model (or failed to)."""
        for _ in self._threads:
            self._loaded.acquire()
        if not self._pipes:
            raise VidsynthError(f"no worker could load the model: {'; '.join(self.load_errors)}")

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the workers; a running job stops at its next step and goes back to the queue.

        Returns whether all stopped in time (a job left running is recovered at the next start).
        """
        self._stopping.set()
        self.notify()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    @property
    def reference(self) -> Any:
        """A loaded pipeline, for checking parameters and reporting defaults (read-only use)."""
        return self._pipes[0]

    @property
    def ready_workers(self) -> int:
        return len(self._pipes)

    # -- what the API calls ------------------------------------------------------------------
    def notify(self) -> None:
        """Wake an idle worker: a job was queued."""
        with self._wake:
            self._wake.notify_all()

    def cancel(self, job_id: str) -> None:
        """Stop a running job (already marked cancelled in the store) at its next step."""
        with self._lock:
            self._cancelled.add(job_id)

    def progress(self, job_id: str) -> LiveProgress | None:
        return self._progress.get(job_id)

    def pause(self) -> None:
        """Start no new jobs (tests use it to hold jobs in the queue)."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()
        self.notify()

    # -- the worker thread -------------------------------------------------------------------
    def _main(self) -> None:
        try:
            if self._load is None:
                import vidsynth

                self._load = vidsynth.load
            s = self.settings
            pipe = self._load(s.model, device=s.device, dtype=s.dtype)
        except Exception as err:  # a worker without a model reports why, and stops
            log.error("%s could not load the model: %s", threading.current_thread().name, err)
            self.load_errors.append(str(err))
            self._loaded.release()
            return
        self._pipes.append(pipe)
        self._loaded.release()
        while not self._stopping.is_set():
            job = None if self._paused.is_set() else self.store.claim()
            if job is None:
                with self._wake:
                    # notify() wakes us at once; the timeout is a safety net, not the mechanism
                    self._wake.wait(timeout=1.0)
                continue
            self._run(pipe, job)

    def _run(self, pipe: Any, job: Job) -> None:
        log.info("job %s started (attempt %d)", job.id, job.attempts)
        self._progress[job.id] = LiveProgress("loading", 0, job.params.get("steps", 0))

        def progress(stage: str, step: int, total: int) -> None:
            if job.id in self._cancelled:
                raise JobCancelled
            if self._stopping.is_set():
                raise ShuttingDown
            self._progress[job.id] = LiveProgress(stage, step, total)

        path = output_path(self.settings.outputs_dir, job.id)
        try:
            result = TASKS[job.task].run(pipe, job.params, job.seed, progress)
            self._progress[job.id] = LiveProgress("save", 1, 1)
            result.save(path)  # atomic: a temp file, fsync, os.replace
            _fsync_dir(path.parent)
            if self.store.finish(job.id, path.name):
                log.info("job %s succeeded", job.id)
            else:  # cancelled while saving
                path.unlink(missing_ok=True)
        except JobCancelled:
            log.info("job %s cancelled", job.id)
        except ShuttingDown:
            self.store.requeue(job.id)
            log.info("job %s back in the queue (shutting down)", job.id)
        except VidsynthError as err:
            self.store.fail(job.id, str(err))
            log.info("job %s failed: %s", job.id, err)
        except Exception as err:  # one bad job must not take its worker down
            log.exception("job %s failed", job.id)
            self.store.fail(job.id, f"internal error: {type(err).__name__}: {err}")
        finally:
            with self._lock:
                self._cancelled.discard(job.id)
            self._progress.pop(job.id, None)
