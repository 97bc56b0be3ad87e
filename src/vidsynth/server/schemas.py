"""The API's request and response bodies (pydantic); FastAPI documents them in /openapi.json."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from vidsynth.sampling.noise import MAX_SEED

# Numbers are strict: `"steps": true` or `"steps": "5"` is a mistake worth a 422, not a guess.
_int = {"strict": True}
_float = {"strict": True, "allow_inf_nan": False}


class TextToVideoParams(BaseModel):
    """Parameters of a text-to-video job; absent ones take the model's defaults."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field("", description='what the video shows ("" for unconditional)')
    negative_prompt: str | None = Field(None, description="what the video should not show")
    seed: int | None = Field(
        None, ge=-1, le=MAX_SEED, description="random seed; null or -1 picks one", **_int
    )
    steps: int | None = Field(None, ge=1, le=1000, description="denoising steps", **_int)
    guidance: float | None = Field(None, ge=0, le=100, description="guidance scale", **_float)
    frames: int | None = Field(None, ge=1, le=4096, description="number of frames", **_int)
    fps: float | None = Field(None, ge=0.1, le=240, description="frames per second", **_float)
    width: int | None = Field(None, ge=8, le=8192, description="multiple of 8", **_int)
    height: int | None = Field(None, ge=8, le=8192, description="multiple of 8", **_int)
    candidates: int | None = Field(
        None,
        ge=1,
        le=64,
        description="first frames drawn per clip, the model's frame scorer keeping the likest",
        **_int,
    )
    guidance_interval: list[Annotated[float, Field(**_float)] | None] | None = Field(
        None,
        min_length=1,
        max_length=2,
        description="[lo] or [lo, hi]: the noise levels sigma where guidance applies (hi null: "
        "no upper bound)",
    )
    first_frame_guidance_interval: list[Annotated[float, Field(**_float)] | None] | None = Field(
        None,
        min_length=1,
        max_length=2,
        description="the same for the first frames, drawn as images before the clip by a model "
        "that has a first-frame stage",
    )
    first_frame_steps: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="a model with a first-frame stage: the first frames' denoising steps",
        **_int,
    )
    clip_strength: float | None = Field(
        None,
        gt=0,
        le=1,
        description="a model with a first-frame stage: the share of the steps a clip is drawn "
        "over, from its first frame animated by the planned motion (1: from pure noise)",
        **_float,
    )
    model: str | None = Field(None, description="a model id from /v1/models (default: served)")


class TextToVideoJob(BaseModel):
    """Submit a text-to-video job."""

    model_config = ConfigDict(extra="forbid")

    task: Literal["text-to-video"]
    params: TextToVideoParams = Field(default_factory=TextToVideoParams)


# One member today; video-to-video, image-to-video, long-video and story join the union, and
# the `task` field picks the member (an unknown task is a clear 422).
JobRequest = Annotated[
    Union[TextToVideoJob],  # noqa: UP007 (a one-member union; `X | Y` once there are two)
    Field(discriminator="task"),
]


class Progress(BaseModel):
    stage: str = Field(description="queued, loading, denoise, decode, save or done")
    step: int
    total: int


class JobView(BaseModel):
    """A job as the API shows it."""

    id: str
    task: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    position: int | None = Field(None, description="1 = next to run; null unless queued")
    progress: Progress
    params: dict[str, Any] = Field(description="the parameters with defaults filled in")
    seed: int | None = Field(None, description="the seed used (fixed at submission)")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = Field(description="times a worker started it (> 1 after a crash)")
    error: str | None = None
    video_url: str | None = Field(None, description="set once the job has succeeded")
    events_url: str


class JobPage(BaseModel):
    jobs: list[JobView]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for older jobs")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    workers: int = Field(description="workers with a loaded model")
    queued: int
    running: int


class ModelInfo(BaseModel):
    id: str
    tasks: list[str]
    device: str
    first_frames: bool = Field(
        False,
        description="whether the model draws each clip's first frame as an image before the "
        "clip (then first_frame_guidance_interval applies)",
    )
    defaults: dict[str, Any]
    limits: dict[str, Any]


class ModelList(BaseModel):
    models: list[ModelInfo]


class ErrorBody(BaseModel):
    detail: str
