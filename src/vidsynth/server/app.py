"""The studio's FastAPI app: the /v1 REST API over the job store, and the web page at /."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from vidsynth import __version__
from vidsynth.errors import InvalidParameter
from vidsynth.pipelines.params import check_guidance_interval, interval_json
from vidsynth.server.middleware import BodySizeLimit
from vidsynth.server.schemas import (
    ErrorBody,
    Health,
    JobPage,
    JobRequest,
    JobView,
    ModelInfo,
    ModelList,
    Progress,
)
from vidsynth.server.settings import Settings
from vidsynth.server.store import (
    ACTIVE,
    RUNNING,
    SUCCEEDED,
    IdempotencyConflict,
    Job,
    JobStore,
    QueueFull,
)
from vidsynth.server.tasks import TASKS
from vidsynth.server.worker import WorkerPool, output_path, sweep_outputs

log = logging.getLogger("vidsynth.server")

STATIC_DIR = Path(__file__).parent / "static"
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"  # uuid4 hex: ids never reach the file system unchecked
JobId = Annotated[str, PathParam(pattern=JOB_ID_PATTERN, description="a job id (32 hex digits)")]
SSE_INTERVAL_S = 0.2
SSE_KEEPALIVE_S = 15.0
# The page loads nothing from elsewhere and runs no inline code.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no such job"},
}


class _Runtime:
    """What the lifespan opens and the routes use."""

    store: JobStore
    pool: WorkerPool


def _iso(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def _one_line(errors: list[dict[str, Any]], json_body: bool = True) -> str:
    """pydantic's errors as one readable line: `params.steps: Input should be ...`."""
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if loc[:1] == ["body"]:
            # `body.text-to-video.params.steps` reads better as `params.steps`
            loc = [p for p in loc[1:2] if p not in TASKS] + loc[2:] or ["body"]
        where = ".".join(loc)
        kind, ctx = err.get("type"), err.get("ctx") or {}
        if kind == "json_invalid":
            msg, where = f"invalid JSON ({ctx.get('error', 'cannot parse')})", "body"
        elif not json_body and where == "body":
            msg, where = "send the job as JSON, with Content-Type: application/json", "body"
        elif kind == "union_tag_invalid":
            msg = f"unknown task {ctx.get('tag')!r}; this server runs: {', '.join(TASKS)}"
        elif kind == "union_tag_not_found":
            msg = f"missing 'task' (one of: {', '.join(TASKS)})"
        else:
            msg = err.get("msg", "invalid")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


def create_app(settings: Settings) -> FastAPI:
    """The app for `settings`; its lifespan opens the store and starts the workers."""
    rt = _Runtime()
    limits = settings.limits

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = JobStore(settings.db_path)
        recovered = store.recover()
        if recovered:
            log.warning("re-running %d job(s) interrupted by a crash", len(recovered))
        swept = sweep_outputs(settings.outputs_dir, recovered)
        if swept:
            log.warning("removed %d partial or stale output file(s) left by a crash", swept)
        pool = WorkerPool(store, settings)
        pool.start()
        try:
            await run_in_threadpool(pool.wait_ready)
        except BaseException:
            await run_in_threadpool(pool.stop)
            store.close()
            raise
        rt.store, rt.pool = store, pool
        app.state.store, app.state.pool = store, pool  # for embedders and tests
        yield
        stopped = await run_in_threadpool(pool.stop)
        if stopped:  # a worker still inside a long torch call may yet write to the store
            store.close()

    app = FastAPI(
        title="vidsynth studio",
        version=__version__,
        description=(
            "Text-to-video jobs on a durable queue. Submit with `POST /v1/jobs`, follow "
            "`GET /v1/jobs/{id}/events` (server-sent events), fetch `GET /v1/jobs/{id}/video`."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)
    if settings.allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        json_body = kind == "application/json" or kind.endswith("+json")
        detail = _one_line(exc.errors(), json_body or request.method != "POST")
        return JSONResponse({"detail": detail, "errors": errors}, 422)

    @app.exception_handler(InvalidParameter)
    async def invalid_parameter(request: Request, exc: InvalidParameter) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 422)

    def view(job: Job) -> JobView:
        total = int(job.params.get("steps") or 0)
        if job.status == RUNNING:
            live = rt.pool.progress(job.id)
            progress = (
                Progress(stage=live.stage, step=live.step, total=live.total)
                if live
                else Progress(stage="loading", step=0, total=total)
            )
        elif job.status in ACTIVE:
            progress = Progress(stage="queued", step=0, total=total)
        else:
            progress = Progress(
                stage="done", step=total if job.status == SUCCEEDED else 0, total=total
            )
        return JobView(
            id=job.id,
            task=job.task,
            status=job.status,  # type: ignore[arg-type]
            position=rt.store.position(job),
            progress=progress,
            params=job.params,
            seed=job.seed,
            created_at=_iso(job.created_at),  # type: ignore[arg-type]
            started_at=_iso(job.started_at),
            finished_at=_iso(job.finished_at),
            attempts=job.attempts,
            error=job.error,
            video_url=f"/v1/jobs/{job.id}/video" if job.status == SUCCEEDED else None,
            events_url=f"/v1/jobs/{job.id}/events",
        )

    def get_job(job_id: str) -> Job:
        job = rt.store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job

    def retry_after() -> int:
        """Seconds until a queue slot is likely free: one job's run time over the workers."""
        mean = rt.store.mean_run_seconds()
        if mean is None:
            return 5
        return min(600, max(1, math.ceil(mean / max(1, rt.pool.ready_workers))))

    # -- jobs --------------------------------------------------------------------------------
    @app.post(
        "/v1/jobs",
        status_code=202,
        response_model=JobView,
        tags=["jobs"],
        responses={
            409: {"model": ErrorBody, "description": "Idempotency-Key reused differently"},
            429: {"model": ErrorBody, "description": "queue full; see Retry-After"},
            413: {"model": ErrorBody, "description": "request body too large"},
        },
    )
    def submit_job(
        request: JobRequest,
        idempotency_key: Annotated[
            str | None,
            Header(
                max_length=200,
                pattern=r"^[\x21-\x7e]+$",
                description="retrying with the same key returns the same job",
            ),
        ] = None,
    ) -> JSONResponse:
        """Queue a job. Answers 202 with the job; poll it or follow its events."""
        raw = request.params.model_dump(exclude_none=True)
        params, seed = TASKS[request.task].resolve(rt.pool.reference, raw, limits)
        digest = hashlib.sha256(
            json.dumps(request.model_dump(mode="json"), sort_keys=True).encode()
        ).hexdigest()
        try:
            job, created = rt.store.submit(
                request.task,
                params,
                seed=seed,
                max_active=limits.max_queue,
                idempotency_key=idempotency_key,
                request_hash=digest,
            )
        except QueueFull as err:
            raise HTTPException(
                429,
                f"{err}; retry later",
                headers={"Retry-After": str(retry_after())},
            ) from None
        except IdempotencyConflict as err:
            raise HTTPException(409, str(err)) from None
        if created:
            rt.pool.notify()
        headers = {"Location": f"/v1/jobs/{job.id}"}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(view(job).model_dump(mode="json"), 202, headers=headers)

    @app.get("/v1/jobs", response_model=JobPage, tags=["jobs"])
    def list_jobs(
        limit: Annotated[int, Query(ge=1, le=100, description="jobs per page")] = 20,
        cursor: Annotated[
            str | None, Query(pattern=r"^\d{1,18}$", description="next_cursor of the last page")
        ] = None,
    ) -> JobPage:
        """History, newest first."""
        jobs = rt.store.page(limit + 1, int(cursor) if cursor else None)
        more = len(jobs) > limit
        jobs = jobs[:limit]
        return JobPage(
            jobs=[view(j) for j in jobs], next_cursor=str(jobs[-1].seq) if more else None
        )

    @app.get("/v1/jobs/{job_id}", response_model=JobView, tags=["jobs"], responses=ERRORS)
    def get_job_view(job_id: JobId) -> JobView:
        """A job's status, queue position, progress and timestamps."""
        return view(get_job(job_id))

    @app.delete(
        "/v1/jobs/{job_id}",
        response_model=JobView,
        tags=["jobs"],
        responses={**ERRORS, 409: {"model": ErrorBody, "description": "job already ended"}},
    )
    def cancel_job(job_id: JobId) -> JobView:
        """Cancel a queued or running job; a running one stops at its next denoising step."""
        job, before = rt.store.cancel(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        if before not in ACTIVE:
            raise HTTPException(409, f"job {job_id} has already {before}; nothing to cancel")
        if before == RUNNING:
            rt.pool.cancel(job_id)
        return view(job)

    @app.get(
        "/v1/jobs/{job_id}/events",
        tags=["jobs"],
        responses={
            **ERRORS,
            200: {
                "content": {"text/event-stream": {}},
                "description": "`progress` events carrying the job, then one `end` event",
            },
        },
    )
    async def job_events(job_id: JobId) -> StreamingResponse:
        """Server-sent events: the job (as GET returns it) on every change, until it ends."""
        await run_in_threadpool(get_job, job_id)

        async def stream() -> AsyncIterator[str]:
            yield "retry: 1000\n\n"
            last, quiet_since = "", time.monotonic()
            while True:
                job = await run_in_threadpool(rt.store.get, job_id)
                if job is None:  # cannot happen today (jobs are never deleted); end cleanly
                    return
                data = (await run_in_threadpool(view, job)).model_dump_json()
                if job.done:
                    yield f"event: end\ndata: {data}\n\n"
                    return
                if data != last:
                    yield f"event: progress\ndata: {data}\n\n"
                    last, quiet_since = data, time.monotonic()
                elif time.monotonic() - quiet_since > SSE_KEEPALIVE_S:
                    yield ": keep-alive\n\n"  # proxies close silent connections
                    quiet_since = time.monotonic()
                await asyncio.sleep(SSE_INTERVAL_S)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get(
        "/v1/jobs/{job_id}/video",
        tags=["jobs"],
        response_class=FileResponse,
        responses={
            **ERRORS,
            200: {"content": {"video/mp4": {}}, "description": "the video (H.264 MP4)"},
            206: {"description": "the requested byte range (Range: bytes=...)"},
        },
    )
    def job_video(
        job_id: JobId,
        download: Annotated[bool, Query(description="as an attachment")] = False,
    ) -> FileResponse:
        """The finished video; honours Range requests so players can seek."""
        job = get_job(job_id)
        if job.status != SUCCEEDED:
            raise HTTPException(404, f"job {job_id} has no video: it is {job.status}")
        path = output_path(settings.outputs_dir, job.id)
        if not path.is_file():
            raise HTTPException(404, f"the video of job {job_id} is no longer on disk")
        return FileResponse(
            path,
            media_type="video/mp4",
            filename=f"vidsynth-{job.id[:8]}-seed{job.seed}.mp4" if download else None,
            # a finished job's video never changes
            headers={"Cache-Control": "private, max-age=31536000, immutable"},
        )

    # -- service -----------------------------------------------------------------------------
    @app.get("/v1/health", response_model=Health, tags=["service"])
    def health() -> Health:
        """Liveness and queue depth."""
        counts = rt.store.counts()
        ok = rt.pool.ready_workers == settings.workers
        return Health(
            status="ok" if ok else "degraded",
            version=__version__,
            workers=rt.pool.ready_workers,
            queued=counts["queued"],
            running=counts["running"],
        )

    @app.get("/v1/models", response_model=ModelList, tags=["service"])
    def models() -> ModelList:
        """The model this server runs, its defaults and the server's limits."""
        pipe = rt.pool.reference
        d = pipe.defaults
        return ModelList(
            models=[
                ModelInfo(
                    id=pipe.name,
                    tasks=list(TASKS),
                    device=str(pipe.device),
                    first_frames=pipe.draws_first_frames,
                    defaults={
                        "negative_prompt": d.negative_prompt,
                        "steps": d.num_inference_steps,
                        "guidance": d.guidance_scale,
                        "frames": d.num_frames,
                        "fps": d.fps,
                        "width": d.width,
                        "height": d.height,
                        "candidates": d.candidates or pipe.default_candidates,
                        "guidance_interval": interval_json(
                            check_guidance_interval(d.guidance_interval)
                        ),
                        "first_frame_guidance_interval": interval_json(
                            check_guidance_interval(d.first_frame_guidance_interval)
                        ),
                        "clip_strength": d.clip_strength,
                        "first_frame_steps": d.first_frame_steps,
                    },
                    limits=asdict(limits),
                )
            ]
        )

    # -- the page ----------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html",
            media_type="text/html",
            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
