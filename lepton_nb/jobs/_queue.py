"""Queued jobs: validated and written to the store first, run later by the detached runner.

``submit`` goes through :func:`lepton_nb.jobs.runner.prepare` (the one validation of notebook,
kernel and parameters) and stores the record as ``queued`` with its output path; the runner
process (:mod:`lepton_nb.jobs._dispatcher`) starts it when a slot is free. A record is therefore
in the store before anything runs, so no submission is lost when the submitting process dies.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lepton_nb.jobs._output_paths import OutputExistsError, check_output
from lepton_nb.jobs.models import ErrorInfo, JobRecord
from lepton_nb.jobs.runner import default_output, prepare
from lepton_nb.jobs.store import JobStore, open_store


def queued_record(
    notebook: str | Path,
    parameters: dict[str, Any] | None = None,
    *,
    output: str | Path | None = None,
    output_dir: str | Path | None = None,
    kernel: str | None = None,
    timeout: float | None = None,
    cwd: str | Path | None = None,
    seed: int | None = None,
    html: bool = True,
    profile: str | None = None,
    overwrite: bool = False,
) -> JobRecord:
    """A validated ``queued`` record with its output path (nothing written yet).

    The output is checked here (:func:`lepton_nb.jobs._output_paths.check_output`): an existing file
    is refused unless ``overwrite``, and so is a folder, the notebook, a non-``.ipynb`` name.
    """
    rec, path = prepare(notebook, parameters, kernel=kernel, timeout=timeout, cwd=cwd, seed=seed)
    if output is not None:
        out = Path(output).expanduser().resolve()
    elif output_dir is not None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path(output_dir).expanduser().resolve() / f"{path.stem}-{stamp}-{rec.id[-6:]}.ipynb"
    else:
        out = default_output(path, rec.id)
    out = check_output(path, out, overwrite=overwrite, html=html)
    rec.status, rec.output, rec.html_copy, rec.profile = "queued", str(out), html, profile
    rec.overwrite = overwrite
    return rec


def failed_record(notebook: str, error: Exception, **extra: Any) -> JobRecord:
    """The record of a firing that could not even be queued (say, its notebook was deleted)."""
    now = time.time()
    return JobRecord(
        notebook=notebook,
        notebook_sha256="",
        status="failed",
        started=now,
        ended=now,
        duration_s=0.0,
        error=ErrorInfo(reason="invalid", ename=type(error).__name__, evalue=str(error)),
        **extra,
    )


def submit(
    notebook: str | Path,
    parameters: dict[str, Any] | None = None,
    *,
    store: JobStore | str | Path | None = None,
    rerun_of: str | None = None,
    **options: Any,
) -> JobRecord:
    """Validate and queue a job; the runner process starts it (see :func:`ensure_runner`)."""
    rec = queued_record(notebook, parameters, **options)
    rec.rerun_of = rerun_of
    db = open_store(store)
    if not rec.overwrite and rec.output in db.active_outputs():
        raise OutputExistsError(
            f"{rec.output} is the output of a job still queued or running; choose another"
        )
    return db.put(rec)


__all__ = ["failed_record", "queued_record", "submit"]
