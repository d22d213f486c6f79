"""jobs.run / get / list / rerun / cancel / compare: the public job API."""

from __future__ import annotations

import builtins
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_nb._storage import is_url
from lepton_nb.errors import JobError
from lepton_nb.jobs import _provenance
from lepton_nb.jobs._execute import ACTIVE, execute
from lepton_nb.jobs._output_paths import check_output
from lepton_nb.jobs._output_urls import check_output_url, execute_to_url
from lepton_nb.jobs._params import (
    check_parameters,
    choose_seed,
    kernel_missing,
    notebook_kernel,
    resolve_notebook,
)
from lepton_nb.jobs.models import ACTIVE as ACTIVE_STATUSES
from lepton_nb.jobs.models import JobRecord, new_job_id
from lepton_nb.jobs.store import JobStore, lepton_home, open_store

if TYPE_CHECKING:
    import pandas as pd

StoreArg = JobStore | str | Path | None


def default_output(notebook: Path, job_id: str) -> Path:
    # Outside the notebook's repository, so running a job never makes the repository dirty.
    return lepton_home() / "outputs" / f"{notebook.stem}-{job_id}.ipynb"


def prepare(
    notebook: str | Path,
    parameters: dict[str, Any] | None = None,
    *,
    kernel: str | None = None,
    timeout: float | None = None,
    cwd: str | Path | None = None,
    seed: int | None = None,
    job_id: str | None = None,
) -> tuple[JobRecord, Path]:
    """Validate everything and build the record of a job that has not started yet."""
    path = resolve_notebook(notebook)
    asked = kernel
    kernel, declared = notebook_kernel(path, kernel)
    params = check_parameters(parameters, declared, path)
    if timeout is not None and timeout <= 0:
        raise JobError(f"timeout={timeout!r} must be a positive number of seconds (or None)")
    work_dir = Path(cwd).expanduser().resolve() if cwd is not None else path.parent
    if not work_dir.is_dir():
        raise JobError(f"cwd {str(work_dir)!r} is not a directory")
    job_seed, source = choose_seed(params, declared, seed)
    rec = JobRecord(
        id=job_id or new_job_id(),
        notebook=str(path),
        notebook_sha256=_provenance.sha256_file(path),
        parameters=params,
        has_parameters_cell=bool(declared),
        notebook_parameters=builtins.list(declared),
        seed=job_seed,
        seed_source=source,  # type: ignore[arg-type]
        kernel=kernel,
        cwd=str(work_dir),
        timeout=timeout,
        git=_provenance.git_info(path),
        **_provenance.environment(),
    )
    if asked is None and kernel_missing(path):
        rec.warnings.append(
            "the notebook has no kernel metadata (metadata.kernelspec); it ran with "
            f"{rec.kernel!r}: pass --kernel NAME (CLI) or kernel= to choose another"
        )
    if not declared:
        rec.warnings.append(
            "the notebook has no cell tagged 'parameters'; parameters were injected at the top"
            if params
            else "the notebook has no cell tagged 'parameters'"
        )
    return rec, path


def run(
    notebook: str | Path,
    parameters: dict[str, Any] | None = None,
    output: str | Path | None = None,
    kernel: str | None = None,
    timeout: float | None = None,
    cwd: str | Path | None = None,
    *,
    store: StoreArg = None,
    seed: int | None = None,
    html: bool = True,
    job_id: str | None = None,
    storage_options: dict[str, Any] | None = None,
    overwrite: bool = False,
    profile: str | None = None,
) -> JobRecord:
    """Execute ``notebook`` with papermill as a recorded job and return its :class:`JobRecord`.

    A job that runs but fails (an exception in a cell, a timeout, a dead kernel, a cancel) comes
    back with ``status`` ``failed``/``cancelled`` and ``error`` filled in; call
    ``record.raise_for_status()`` to turn that into an exception. Bad input (missing notebook,
    unknown parameter, an output that exists) raises before anything runs. ``timeout`` bounds
    the whole job (seconds). An existing ``output`` (or its ``.html`` neighbour) is replaced only
    with ``overwrite=True``. ``output`` may be an fsspec URL (``s3://bucket/runs/a.ipynb``, with
    ``storage_options=``). With ``profile`` (a cluster profile) the notebook runs as a Dask task
    on a worker of that profile's cluster (see :mod:`lepton_nb.jobs._oncluster`).
    """
    rec, path = prepare(
        notebook, parameters, kernel=kernel, timeout=timeout, cwd=cwd, seed=seed, job_id=job_id
    )
    run_job = execute
    if profile is not None:
        from lepton_nb.cluster import get_profile
        from lepton_nb.jobs._oncluster import execute_on_profile

        get_profile(profile)  # an unknown profile is bad input: refused before anything runs
        rec.profile, run_job = profile, execute_on_profile  # type: ignore[assignment]
    if is_url(output):
        check_output_url(str(output), storage_options, overwrite)
        return execute_to_url(
            rec, path, str(output), storage_options, open_store(store), html, run_job
        )
    out = check_output(path, output or default_output(path, rec.id), overwrite=overwrite, html=html)
    return run_job(rec, path, out, open_store(store), html=html, overwrite=overwrite)


def get(job_id: str, *, store: StoreArg = None) -> JobRecord:
    """The record of job ``job_id`` (a unique part of an id is enough)."""
    return open_store(store).get(job_id)


def list_jobs(
    notebook: str | Path | None = None,
    status: str | None = None,
    *,
    store: StoreArg = None,
    limit: int | None = None,
) -> builtins.list[JobRecord]:
    """Job records, newest first; ``status`` may also be ``lost`` (running, heartbeat stale)."""
    from lepton_nb.jobs.models import STATUSES

    if status is not None and status not in STATUSES:
        raise JobError(f"unknown status {status!r}; choose one of: {', '.join(STATUSES)}")
    nb = None
    if notebook is not None:
        p = Path(notebook).expanduser()
        nb = str(p.resolve()) if p.exists() else str(notebook)
    return open_store(store).list(notebook=nb, status=status, limit=limit)


def rerun(
    job_id: str,
    *,
    output: str | Path | None = None,
    store: StoreArg = None,
    html: bool = True,
    overwrite: bool = False,
) -> JobRecord:
    """Run job ``job_id`` again: same notebook, parameters, seed, kernel and cwd; a new record."""
    db = open_store(store)
    old = db.get(job_id)
    rec, path = prepare(
        old.notebook,
        old.parameters,
        kernel=old.kernel,
        timeout=old.timeout,
        cwd=old.cwd,
        seed=old.seed,
    )
    rec.rerun_of = old.id
    if rec.notebook_sha256 != old.notebook_sha256:
        rec.warnings.append(f"the notebook changed since job {old.id} (sha256 differs)")
    out = check_output(path, output or default_output(path, rec.id), overwrite=overwrite, html=html)
    return execute(rec, path, out, db, html=html, overwrite=overwrite)


def cancel(job_id: str, *, store: StoreArg = None, wait: float = 15.0) -> JobRecord:
    """Stop a queued or running job; its record ends as ``cancelled``."""
    db = open_store(store)
    rec = db.get(job_id)
    if rec.status not in (*ACTIVE_STATUSES, "lost"):
        raise JobError(f"job {rec.id} already finished ({rec.status}); nothing to cancel")
    db.request_cancel(rec.id)
    local = ACTIVE.get(rec.id)
    if local is not None:
        local.stop_job("cancelled")
    if rec.status != "running":  # queued (not started) or lost (nobody will answer)

        def mark(r: JobRecord) -> None:
            if r.status in ("queued", "running"):
                r.status, r.ended = "cancelled", time.time()

        db.update(rec.id, mark)
        return db.get(rec.id)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        rec = db.get(rec.id)
        if rec.status not in ACTIVE_STATUSES:
            return rec
        time.sleep(0.2)
    raise JobError(
        f"cancel of job {rec.id} was requested but it has not stopped after {wait:.0f}s; "
        "its runner will stop it at its next heartbeat"
    )


def compare(a: str | JobRecord, b: str | JobRecord, *, store: StoreArg = None) -> pd.DataFrame:
    """Parameters, recorded values and provenance of two jobs side by side.

    Rows are indexed by (section, name); ``differs`` flags the rows whose values differ.
    """
    import pandas as pd

    db = open_store(store)
    ra = a if isinstance(a, JobRecord) else db.get(a)
    rb = b if isinstance(b, JobRecord) else db.get(b)

    def fields(r: JobRecord) -> dict[tuple[str, str], Any]:
        out: dict[tuple[str, str], Any] = {}
        out.update({("parameter", k): v for k, v in r.parameters.items()})
        out.update({("record", k): v for k, v in r.records.items()})
        job = {
            "status": r.status,
            "seed": r.seed,
            "notebook": r.notebook,
            "notebook_sha256": r.notebook_sha256,
            "git_commit": r.git.commit if r.git else None,
            "git_dirty": r.git.dirty if r.git else None,
            "duration_s": round(r.duration_s, 3) if r.duration_s is not None else None,
            "host": r.host,
        }
        out.update({("job", k): v for k, v in job.items()})
        out.update({("package", k): v for k, v in r.packages.items()})
        return out

    fa, fb = fields(ra), fields(rb)
    keys = builtins.list(dict.fromkeys([*fa, *fb]))
    missing = "<missing>"
    rows = []
    for key in keys:
        va, vb = fa.get(key, missing), fb.get(key, missing)
        differs = va != vb and key != ("job", "duration_s")
        rows.append((*key, va, vb, differs))
    df = pd.DataFrame(rows, columns=["section", "name", ra.id, rb.id, "differs"])
    return df.set_index(["section", "name"])


__all__ = [
    "StoreArg",
    "cancel",
    "compare",
    "default_output",
    "get",
    "list_jobs",
    "prepare",
    "rerun",
    "run",
]
