"""The job record: everything needed to say what ran, where, with what, and what came out."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

from lepton_nb.errors import JobError

Status = Literal["queued", "running", "succeeded", "failed", "cancelled", "lost"]
STATUSES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled", "lost")
ACTIVE: tuple[str, ...] = ("queued", "running")


def new_job_id() -> str:
    """Time-ordered and unique across processes: sorts by creation, safe as a file name."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


class ErrorInfo(BaseModel):
    """Where and how a job failed."""

    # "error" | "timeout" | "kernel died" | "cancelled" | "worker lost" | "cluster unavailable"
    reason: str = "error"
    cell_index: int | None = None
    execution_count: int | None = None
    ename: str | None = None
    evalue: str | None = None
    traceback: str | None = None

    def describe(self) -> str:
        where = f" in cell {self.cell_index}" if self.cell_index is not None else ""
        what = f": {self.ename}: {self.evalue}" if self.ename else ""
        if not self.ename and self.evalue:
            what = f": {self.evalue}"
        return f"{self.reason}{where}{what}"


class GitInfo(BaseModel):
    root: str
    commit: str | None  # None in a repository without commits
    dirty: bool
    branch: str | None = None


class JobRecord(BaseModel):
    """One notebook execution; round-trips through ``model_dump()`` / ``model_validate()``."""

    id: str = Field(default_factory=new_job_id)
    notebook: str
    notebook_sha256: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    has_parameters_cell: bool = True
    notebook_parameters: list[str] = Field(default_factory=list)
    output: str | None = None
    html: str | None = None
    partial: str | None = None  # the notebook being written; left behind if the job is lost
    status: Status = "queued"
    created: float = Field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    duration_s: float | None = None
    heartbeat: float | None = None
    progress: dict[str, int] = Field(default_factory=dict)  # {"cell": i, "cells": n}, running
    error: ErrorInfo | None = None
    git: GitInfo | None = None
    python: str = ""
    packages: dict[str, str | None] = Field(default_factory=dict)
    host: str = ""
    platform: str = ""
    pid: int | None = None
    cpu: str = ""
    gpu: list[str] = Field(default_factory=list)
    seed: int | None = None
    seed_source: Literal["parameter", "notebook default", "chosen"] = "chosen"
    records: dict[str, Any] = Field(default_factory=dict)
    kernel: str | None = None
    cwd: str | None = None
    timeout: float | None = None
    sweep_id: str | None = None
    rerun_of: str | None = None
    schedule_id: str | None = None  # the schedule whose firing created this job
    profile: str | None = None  # cluster profile: the job runs on its cluster (LEPTON_PROFILE)
    cluster: str | None = None  # scheduler address of the cluster a profile job ran on
    html_copy: bool = True  # whether the runner renders an HTML copy next to the output
    overwrite: bool = False  # whether the output (and HTML copy) may replace existing files
    warnings: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def raise_for_status(self) -> JobRecord:
        """Raise :class:`JobError` unless the job succeeded (returns self for chaining)."""
        if self.status != "succeeded":
            detail = self.error.describe() if self.error else self.status
            raise JobError(
                f"job {self.id} {self.status}: {detail}; "
                f"executed notebook: {self.output or '(none written)'}"
            )
        return self

    def summary(self) -> str:
        dur = f"{self.duration_s:.1f}s" if self.duration_s is not None else "-"
        return f"{self.id}  {self.status:<9}  {dur:>7}  {self.notebook}"

    def _repr_html_(self) -> str:
        import html

        rows = [
            ("status", self.status + (f" ({self.error.describe()})" if self.error else "")),
            ("notebook", self.notebook),
            ("parameters", self.parameters),
            ("records", self.records),
            ("seed", self.seed),
            ("duration", f"{self.duration_s:.2f} s" if self.duration_s is not None else "-"),
            ("output", self.output),
            ("git", f"{self.git.commit} dirty={self.git.dirty}" if self.git else "-"),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{k}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in rows
        )
        return f"<b>job {html.escape(self.id)}</b><table>{body}</table>"


__all__ = [
    "ACTIVE",
    "STATUSES",
    "ErrorInfo",
    "GitInfo",
    "JobRecord",
    "Status",
    "new_job_id",
]
