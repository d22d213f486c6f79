"""Pydantic models for the REST edge: request bodies in, JSON-safe dicts out.

Bodies are validated strictly: unknown fields are rejected, so a typo in a client surfaces as a
400 that names the field instead of being silently ignored, and values are not coerced
(``{"n_workers": "2"}`` is a 400, as ``launch_cluster(n_workers="2")`` is an error).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

GPUMode = Literal["auto", "on", "off"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "lost"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LaunchRequest(_Strict):
    """POST clusters: what to launch."""

    n_workers: int | None = Field(default=None, ge=1, le=256)
    threads_per_worker: int | None = Field(default=None, ge=1, le=256)
    gpu: GPUMode = "auto"
    profile: str | None = Field(default=None, min_length=1, max_length=200)
    # TLS with credentials in the user's runtime dir; false only for a trusted single-user box
    secure: bool = True

    def gpu_arg(self) -> bool | Literal["auto"]:
        return {"auto": "auto", "on": True, "off": False}[self.gpu]  # type: ignore[return-value]


class AdaptRequest(_Strict):
    minimum: int = Field(default=0, ge=0)
    maximum: int = Field(default=4, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> AdaptRequest:
        if self.maximum < self.minimum:
            raise ValueError(
                f"adapt needs minimum <= maximum, got minimum={self.minimum}, "
                f"maximum={self.maximum}"
            )
        return self


class ClusterPatch(_Strict):
    """PATCH clusters/{id}: either a fixed size or an adaptive range."""

    n_workers: int | None = Field(default=None, ge=0, le=256)
    adapt: AdaptRequest | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ClusterPatch:
        if (self.n_workers is None) == (self.adapt is None):
            raise ValueError(
                'send exactly one of {"n_workers": N} (scale) or '
                '{"adapt": {"minimum": A, "maximum": B}} (adapt)'
            )
        return self


class WorkerInfo(BaseModel):
    address: str
    host: str | None = None
    name: str | None = None
    nthreads: int | None = None
    memory_limit: int | None = None
    gpu_name: str | None = None
    gpu_memory: int | None = None


class ClusterInfo(BaseModel):
    id: str
    kind: str
    status: Literal["running", "closed"]
    scheduler_address: str | None = None
    dashboard_link: str | None = None
    n_workers: int = 0
    threads: int = 0
    memory: int = 0
    gpus: int = 0
    workers: list[WorkerInfo] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)
    created: float
    # "server": launched here; "kernel"/"process": by a notebook or script (read from the
    # per-user ledger; the sidebar may stop it but not scale it)
    origin: Literal["server", "kernel", "process"] = "server"
    # the dashboard through the Jupyter server (relative to its base URL), or None
    dashboard_proxy: str | None = None
    owner: str | None = None
    pid: int | None = None
    # "running": launched by (or listed from) a live owner; "re-attached": launched by an
    # earlier server, its scheduler answered this one; "orphaned": a process of it lives but
    # its scheduler does not answer (stop it). extension/src/service.ts: ICluster.state
    state: Literal["running", "re-attached", "orphaned"] = "running"
    pids: list[int] = Field(default_factory=list)  # the processes a stop ends (server clusters)
    secure: bool = False
    credentials: str | None = None  # folder of the TLS key/cert (0600), None without TLS
    connect_code: str | None = None  # Python that attaches a notebook to this cluster


class JobSubmit(_Strict):
    """POST jobs: a notebook (relative to the server root) and its parameters."""

    notebook: str = Field(min_length=1, max_length=4096)
    parameters: dict[str, Any] = Field(default_factory=dict)
    output: str | None = Field(default=None, min_length=1, max_length=4096)
    overwrite: bool = False  # replace an existing output (and its .html copy)
    profile: str | None = Field(default=None, min_length=1, max_length=200)


class JobInfo(BaseModel):
    """A job as the REST API returns it (paths relative to the server root where possible).

    extension/src/service.ts declares the same shape as ``IJob``.
    """

    id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled", "lost"]
    notebook: str
    notebook_abs: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    records: dict[str, Any] = Field(default_factory=dict)
    output_path: str | None = None
    html_path: str | None = None
    created: float
    started: float | None = None
    ended: float | None = None
    duration_s: float | None = None
    error: str | None = None
    error_info: dict[str, Any] | None = None
    seed: int | None = None
    kernel: str | None = None
    cwd: str | None = None
    timeout: float | None = None
    rerun_of: str | None = None
    schedule_id: str | None = None
    profile: str | None = None
    cluster: str | None = None  # the scheduler a job with a profile ran on
    warnings: list[str] = Field(default_factory=list)


class ScheduleCreate(_Strict):
    """POST schedules: a notebook under the root, its parameters, a cron in a time zone."""

    notebook: str = Field(min_length=1, max_length=4096)
    parameters: dict[str, Any] = Field(default_factory=dict)
    cron: str = Field(min_length=1, max_length=200)
    timezone: str = Field(default="UTC", min_length=1, max_length=100)
    profile: str | None = Field(default=None, min_length=1, max_length=200)
    name: str = Field(default="", max_length=200)


class SchedulePatch(_Strict):
    """PATCH schedules/{id}: any of these; unknown fields are refused (400)."""

    parameters: dict[str, Any] | None = None
    cron: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, min_length=1, max_length=100)
    profile: str | None = Field(default=None, min_length=1, max_length=200)
    paused: bool | None = None
    name: str | None = Field(default=None, max_length=200)


class ScheduleInfo(BaseModel):
    """A schedule as the REST API returns it (``ISchedule`` in extension/src/service.ts)."""

    id: str
    name: str
    notebook: str
    parameters: dict[str, Any]
    cron: str
    timezone: str
    profile: str | None
    paused: bool
    created: float
    next_fire: float | None
    last_fire: float | None
    last_job: str | None
    last_status: str | None = None


class JobFilter(BaseModel):
    """Query-string filters for GET jobs (query values are text, so ``limit`` is parsed)."""

    model_config = ConfigDict(extra="forbid")

    status: JobStatus | None = None
    notebook: str | None = Field(default=None, max_length=4096)
    limit: int = Field(default=100, ge=1, le=10_000)


__all__ = [
    "AdaptRequest",
    "ClusterInfo",
    "ClusterPatch",
    "GPUMode",
    "JobFilter",
    "JobInfo",
    "JobStatus",
    "JobSubmit",
    "LaunchRequest",
    "ScheduleCreate",
    "ScheduleInfo",
    "SchedulePatch",
    "WorkerInfo",
]
