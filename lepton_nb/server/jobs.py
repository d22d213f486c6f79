"""JobManager: jobs submitted through the server, queued in the store, run by the runner process.

The server never runs a notebook itself: ``submit`` validates through the job runner's own
preparation (:func:`lepton_nb.jobs._queue.submit`), writes a ``queued`` record, and makes sure the
detached runner (:mod:`lepton_nb.jobs._dispatcher`) is up. So a server restart, even a SIGKILL,
loses nothing: the records are in the store and the runner lives in its own session. What this
manager adds is the server's view: notebook paths confined to the root, outputs under it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lepton_nb.errors import JobError
from lepton_nb.jobs import _dispatcher, _queue
from lepton_nb.jobs import runner as job_api
from lepton_nb.jobs.models import JobRecord
from lepton_nb.jobs.store import JobStore
from lepton_nb.server._models import JobFilter, JobInfo, JobSubmit
from lepton_nb.server._paths import confine, relative
from lepton_nb.server.settings import LeptonSettings


class JobManager:
    def __init__(self, root_dir: str | Path, settings: LeptonSettings | None = None) -> None:
        self.root = Path(root_dir).expanduser().resolve()
        self.settings = settings or LeptonSettings()
        self.store = JobStore(self.settings.store())
        self.output_dir = self.settings.resolved_output_dir(self.root)

    def recover(self) -> None:
        """At start-up: records of dead processes become ``lost``; queued ones get a runner.

        The limit is stored first, so a runner that outlived the previous server adopts a
        changed ``max_parallel_jobs`` at its next tick."""
        _dispatcher.set_max_parallel(self.store, self.settings.max_parallel_jobs)
        _dispatcher.mark_lost(self.store)
        if self.store.queued_ids():
            self.kick()

    def kick(self) -> None:
        """Make sure a runner serves the store (it exits by itself when idle)."""
        _dispatcher.ensure_runner(
            self.store, self.settings.max_parallel_jobs, self.settings.runner_idle_exit
        )

    # -- queries ---------------------------------------------------------------------------
    def list(self, filters: JobFilter | None = None) -> list[JobInfo]:
        filters = filters or JobFilter()
        recs = job_api.list_jobs(status=filters.status, store=self.store)
        rows = [self.info(r) for r in recs]
        if filters.notebook:
            rows = [r for r in rows if filters.notebook in r.notebook]
        return rows[: filters.limit]

    def get(self, job_id: str) -> JobInfo:
        return self.info(self.store.get(job_id))

    # -- commands --------------------------------------------------------------------------
    def submit(self, request: JobSubmit) -> JobInfo:
        from lepton_nb.jobs._schedules import check_profile

        notebook = confine(self.root, request.notebook)
        profile = request.profile or self.settings.default_profile or None
        check_profile(profile)
        output = confine(self.root, request.output, must_exist=False) if request.output else None
        rec = _queue.submit(
            notebook,
            request.parameters,
            output=output,
            output_dir=self.output_dir,
            store=self.store,
            profile=profile,
            overwrite=request.overwrite,
        )
        self.kick()
        return self.info(rec)

    def rerun(self, job_id: str) -> JobInfo:
        old = self.store.get(job_id)
        # The original may come from the CLI, outside this root: the server runs only its own.
        notebook = confine(self.root, old.notebook)
        same: dict[str, Any] = {"seed": old.seed, "kernel": old.kernel, "timeout": old.timeout}
        if old.cwd and relative(self.root, old.cwd) is not None:
            same["cwd"] = old.cwd  # a working directory outside the root is not reused
        rec = _queue.submit(
            notebook,
            old.parameters,
            output_dir=self.output_dir,
            store=self.store,
            rerun_of=old.id,
            profile=old.profile,
            **same,
        )
        if rec.notebook_sha256 != old.notebook_sha256:
            rec.warnings.append(f"the notebook changed since job {old.id} (sha256 differs)")
            self.store.put(rec)
        self.kick()
        return self.info(rec)

    def cancel(self, job_id: str) -> JobInfo:
        rec = self.store.get(job_id)
        if rec.status not in ("queued", "running", "lost"):
            raise JobError(f"job {rec.id} already finished ({rec.status}); nothing to cancel")
        return self.info(job_api.cancel(rec.id, store=self.store))

    # -- presentation ----------------------------------------------------------------------
    def info(self, rec: JobRecord) -> JobInfo:
        """The REST view: root-relative paths (None outside the root) and a one-line error."""
        return JobInfo(
            id=rec.id,
            status=rec.status,
            notebook=relative(self.root, rec.notebook) or rec.notebook,
            notebook_abs=rec.notebook,
            parameters=rec.parameters,
            records=rec.records,
            output_path=relative(self.root, rec.output),
            html_path=relative(self.root, rec.html),
            created=rec.created,
            started=rec.started,
            ended=rec.ended,
            duration_s=rec.duration_s,
            error=rec.error.describe() if rec.error else None,
            error_info=rec.error.model_dump() if rec.error else None,
            seed=rec.seed,
            kernel=rec.kernel,
            cwd=rec.cwd,
            timeout=rec.timeout,
            rerun_of=rec.rerun_of,
            schedule_id=rec.schedule_id,
            profile=rec.profile,
            cluster=rec.cluster,
            warnings=rec.warnings,
        )


__all__ = ["JobManager"]
