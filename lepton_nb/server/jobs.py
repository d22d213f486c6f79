"""JobManager: notebook jobs submitted through the server, run off the event loop.

lepton_nb.jobs does the real work (papermill + the SQLite provenance store); this manager adds
what a server needs on top: notebook paths confined to the root, outputs written under the root
so the file browser can open them, and submission that returns at once while the notebook runs
in a background thread.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lepton_nb.errors import ConfigError, JobError, NotFoundError
from lepton_nb.jobs.outputs import OutputExistsError, check_output
from lepton_nb.server._paths import confine, relative
from lepton_nb.server.models import JobFilter, JobSubmit

OUTPUT_DIR = "lepton-outputs"


def _jobs_api() -> Any:
    from lepton_nb import jobs

    missing = [n for n in ("run", "list", "get", "cancel") if not hasattr(jobs, n)]
    if missing:
        raise JobError(
            f"lepton_nb.jobs lacks {', '.join(missing)}: this install has no job runner; "
            "reinstall lepton-nb"
        )
    return jobs


def record_to_dict(record: Any) -> dict[str, Any]:
    """A JobRecord (pydantic, dataclass or dict) as a JSON-safe dict."""
    if hasattr(record, "model_dump"):
        data = record.model_dump(mode="json")
    elif dataclasses.is_dataclass(record) and not isinstance(record, type):
        data = dataclasses.asdict(record)
    elif isinstance(record, dict):
        data = dict(record)
    else:
        data = dict(vars(record))
    return dict(json.loads(json.dumps(data, default=str)))


@dataclasses.dataclass
class _Pending:
    """A submission whose record the jobs store has not produced yet."""

    id: str
    notebook: str
    parameters: dict[str, Any]
    output: str
    submitted: float
    future: Future[Any] | None = None
    status: str = "queued"
    error: str | None = None
    record_id: str | None = None
    rerun_of: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


class JobManager:
    def __init__(self, root_dir: str | Path, max_parallel: int = 1) -> None:
        self.root = Path(root_dir).expanduser().resolve()
        self._pool = ThreadPoolExecutor(max_parallel, thread_name_prefix="lepton-job")
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    # -- queries ---------------------------------------------------------------------------
    def list(self, filters: JobFilter | None = None) -> list[dict[str, Any]]:
        filters = filters or JobFilter()
        rows = [self._present(record_to_dict(r)) for r in _jobs_api().list()]
        seen = {r["id"] for r in rows}
        with self._lock:
            for p in [p for p in self._pending.values() if p.id in seen and p.future]:
                if p.future is not None and p.future.done():  # the store has it now
                    del self._pending[p.id]
            pending = [p for p in self._pending.values() if p.id not in seen]
        rows += [self._pending_row(p) for p in pending]
        if filters.status:
            rows = [r for r in rows if r.get("status") == filters.status]
        if filters.notebook:
            rows = [r for r in rows if filters.notebook in str(r.get("notebook") or "")]
        rows.sort(key=lambda r: float(r.get("created") or r.get("submitted") or 0), reverse=True)
        return rows[: filters.limit]

    def get(self, job_id: str) -> dict[str, Any]:
        try:
            return self._present(record_to_dict(_jobs_api().get(job_id)))
        except KeyError as e:  # NotFoundError is a KeyError
            with self._lock:
                pending = self._pending.get(job_id)
            if pending is not None:  # submitted here, not in the store yet
                return self._pending_row(pending)
            raise NotFoundError(f"no job {job_id!r}; list jobs with GET lepton/api/jobs") from e

    # -- commands --------------------------------------------------------------------------
    def submit(self, request: JobSubmit) -> dict[str, Any]:
        notebook = confine(self.root, request.notebook)
        output = (
            confine(self.root, request.output, must_exist=False)
            if request.output
            else self._default_output(notebook)
        )
        # 400 for a bad output, 409 for an existing one, before anything is written
        output = check_output(notebook, output, overwrite=request.overwrite)
        self._validate(notebook, request.parameters)
        with self._lock:  # two submissions naming one output: the second is refused now
            if not request.overwrite and any(
                p.output == str(output) and (p.future is None or not p.future.done())
                for p in self._pending.values()
            ):
                raise OutputExistsError(
                    f"{request.output!r} is the output of a job still running; choose another"
                )
        output.parent.mkdir(parents=True, exist_ok=True)
        return self._start(
            notebook, request.parameters, output, extra={"overwrite": request.overwrite}
        )

    def rerun(self, job_id: str) -> dict[str, Any]:
        original = self.get(job_id)
        if original.get("record_id") is None and original.get("status") in ("queued", "running"):
            raise JobError(f"job {job_id!r} has not started yet; rerun it once it has a record")
        # The original notebook may live outside this server's root (a job from the CLI).
        notebook = confine(self.root, str(original.get("notebook_abs") or original["notebook"]))
        output = self._default_output(notebook)
        output.parent.mkdir(parents=True, exist_ok=True)
        # Same seed, kernel, timeout and cwd as the original, as jobs.rerun does.
        keys = ("seed", "kernel", "timeout")
        same = {k: original[k] for k in keys if original.get(k) is not None}
        if original.get("cwd") and relative(self.root, original["cwd"]) is not None:
            same["cwd"] = original["cwd"]  # a working directory outside the root is not reused
        return self._start(notebook, dict(original.get("parameters") or {}), output,
                           rerun_of=str(original["id"]), extra=same)

    def _default_output(self, notebook: Path) -> Path:
        # Under the root, so the output opens from the file browser.
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return self.root / OUTPUT_DIR / f"{notebook.stem}-{stamp}-{uuid.uuid4().hex[:6]}.ipynb"

    @staticmethod
    def _validate(notebook: Path, parameters: dict[str, Any]) -> None:
        """Refuse unknown parameters now (400) rather than as a failed job later."""
        from lepton_nb.jobs import params

        try:
            params.check_parameters(parameters, params.notebook_parameters(notebook), notebook)
        except JobError as e:
            raise ConfigError(str(e)) from None

    def cancel(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            pending = self._pending.get(job_id)
        if pending is not None and pending.future is not None and pending.future.cancel():
            pending.status = "cancelled"  # still waiting for a runner thread: never started
            return self._pending_row(pending)
        self.get(job_id)  # a clean 404 for unknown ids
        return self._present(record_to_dict(_jobs_api().cancel(job_id)))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- internals -------------------------------------------------------------------------
    def _start(
        self, notebook: Path, parameters: dict[str, Any], output: Path,
        rerun_of: str | None = None, extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        from lepton_nb.jobs.models import new_job_id

        pending = _Pending(
            id=new_job_id(),
            notebook=str(notebook),
            parameters=parameters,
            output=str(output),
            submitted=time.time(),
            rerun_of=rerun_of,
            extra=dict(extra or {}),
        )
        with self._lock:
            self._pending[pending.id] = pending
        pending.future = self._pool.submit(self._execute, pending)
        return self._pending_row(pending)

    def _execute(self, pending: _Pending) -> None:
        pending.status = "running"
        run = _jobs_api().run
        accepted = inspect.signature(run).parameters
        kwargs: dict[str, Any] = {"parameters": pending.parameters, "output": pending.output}
        kwargs.update({k: v for k, v in pending.extra.items() if k in accepted})
        # With job_id the store's record takes the id the client already holds.
        if "job_id" in accepted:
            kwargs["job_id"] = pending.id
        try:
            record = run(pending.notebook, **kwargs)
        except Exception as e:  # noqa: BLE001 - a worker thread: shown in the job list instead
            pending.status, pending.error = "failed", f"{type(e).__name__}: {e}"
            return
        pending.record_id = str(record_to_dict(record)["id"])
        pending.status = str(getattr(record, "status", "succeeded"))

    def _pending_row(self, p: _Pending) -> dict[str, Any]:
        return {
            "id": p.id,
            "status": p.status,
            "notebook": relative(self.root, p.notebook) or p.notebook,
            "parameters": p.parameters,
            "output_path": relative(self.root, p.output),
            "submitted": p.submitted,
            "error": p.error,
            "record_id": p.record_id,
            "rerun_of": p.rerun_of,
        }

    def _present(self, row: dict[str, Any]) -> dict[str, Any]:
        """Add root-relative paths so the frontend can open the notebook and its output."""
        nb = row.get("notebook") or row.get("notebook_path")
        out = row.get("output") or row.get("output_path")
        if nb:
            row["notebook_abs"] = str(nb)
            row["notebook"] = relative(self.root, nb) or str(nb)
        row["output_path"] = relative(self.root, out) if out else None
        error = row.get("error")
        if isinstance(error, dict):
            row["error_info"] = error
            where = f" in cell {error['cell_index']}" if error.get("cell_index") is not None else ""
            what = f": {error['ename']}: {error.get('evalue')}" if error.get("ename") else ""
            row["error"] = f"{error.get('reason', 'error')}{where}{what}"
        row.setdefault("record_id", row.get("id"))
        return row
