"""Executing one job with papermill: a kernel we can watch, stop and seed.

The kernel manager class is made per job so it can carry the job's environment (seed, job id)
into the kernel and hand the live kernel to the watchdog. The watchdog thread writes heartbeats,
enforces the whole-job timeout and honours cancel requests (from this process or, through the
store, from any other) by killing the kernel process; papermill then stops and still saves what
ran. papermill writes to a hidden partial file that is renamed into place at the end, so an
interrupted run never leaves a truncated notebook at the output path.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from jupyter_client.manager import AsyncKernelManager

from lepton_nb.jobs._html import render
from lepton_nb.jobs._link import PROGRESS, WorkerLink
from lepton_nb.jobs._output_paths import html_path, partial_path, place
from lepton_nb.jobs.models import ErrorInfo, JobRecord
from lepton_nb.jobs.record import read_records
from lepton_nb.jobs.store import HEARTBEAT_S, JobStore

# Seed the kernel at start-up; quiet its log (ipykernel warns on stderr about local TCP).
KERNEL_ARGS = [
    "--IPKernelApp.exec_lines=import lepton_nb.jobs._seed",
    "--IPKernelApp.log_level=ERROR",
]
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# jobs running in this process, so cancel() can stop them without a store round trip
ACTIVE: dict[str, _Watchdog] = {}


class _JobKernelManager(AsyncKernelManager):
    job_env: ClassVar[dict[str, str]] = {}
    job_cwd: ClassVar[str | None] = None
    watchdog: ClassVar[_Watchdog | None] = None

    async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
        env = dict(kw.pop("env", None) or os.environ)
        env.update(self.job_env)
        if self.job_cwd:
            kw["cwd"] = self.job_cwd
        if self.ipykernel:
            kw["extra_arguments"] = [*(kw.get("extra_arguments") or []), *KERNEL_ARGS]
        await super().start_kernel(env=env, **kw)
        if self.watchdog is not None:
            self.watchdog.attach(self)


class _Watchdog(threading.Thread):
    def __init__(
        self, job_id: str, store: JobStore | WorkerLink | None, timeout: float | None
    ) -> None:
        super().__init__(name=f"lepton-job-{job_id}", daemon=True)
        self.job_id, self.store, self.timeout = job_id, store, timeout
        self.reason: str | None = None  # why we killed the kernel: "timeout" | "cancelled"
        self._km: AsyncKernelManager | None = None
        self._done = threading.Event()
        self._t0 = time.monotonic()

    def attach(self, km: AsyncKernelManager) -> None:
        self._km = km
        if self.reason is not None:  # stop requested while the kernel was starting
            self._kill()

    def stop_job(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self._kill()

    def _kill(self) -> None:
        proc = getattr(getattr(self._km, "provisioner", None), "process", None)
        pid = getattr(proc, "pid", None)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def run(self) -> None:
        last_beat = time.monotonic()
        while not self._done.wait(0.5):
            now = time.monotonic()
            if self.timeout is not None and now - self._t0 > self.timeout:
                self.stop_job("timeout")
            if self.store is not None and now - last_beat >= HEARTBEAT_S:
                if self.store.beat(self.job_id):
                    self.stop_job("cancelled")
                last_beat = now

    def finish(self) -> None:
        self._done.set()


def _watched_engine() -> str:
    """Register (once) a papermill engine that notes which cell each job is running, for the
    progress its heartbeats carry (:data:`lepton_nb.jobs._link.PROGRESS`)."""
    from papermill.engines import NBClientEngine, papermill_engines

    if "lepton" in papermill_engines._engines:
        return "lepton"

    class LeptonEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kw: Any) -> Any:
            job_id = getattr(kw.get("kernel_manager_class"), "job_env", {}).get("LEPTON_JOB_ID")
            start = nb_man.cell_start

            def cell_start(cell: Any, cell_index: int | None = None, **k: Any) -> Any:
                if job_id and cell_index is not None:
                    PROGRESS[job_id] = {"cell": cell_index + 1, "cells": len(nb_man.nb.cells)}
                return start(cell, cell_index, **k)

            nb_man.cell_start = cell_start
            try:
                return super().execute_managed_notebook(nb_man, kernel_name, **kw)
            finally:
                PROGRESS.pop(job_id or "", None)

    papermill_engines.register("lepton", LeptonEngine)
    return "lepton"


def _kernel_manager_class(
    env: dict[str, str], cwd: str | None, watchdog: _Watchdog
) -> type[AsyncKernelManager]:
    attrs = {"job_env": env, "job_cwd": cwd, "watchdog": watchdog}
    return type("LeptonJobKernelManager", (_JobKernelManager,), attrs)


def _error_from(exc: BaseException, nb: Any, reason: str | None) -> ErrorInfo:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        tb = _ANSI.sub("", "\n".join(exc.traceback or []))
        return ErrorInfo(
            reason=reason or "error",
            cell_index=_source_index(nb, exc.cell_index),
            execution_count=exc.exec_count,
            ename=exc.ename,
            evalue=exc.evalue,
            traceback=tb[-4000:],
        )
    # papermill marks even the interrupted cell completed; it is the last one that started
    cell = None
    for i, c in enumerate((nb or {}).get("cells", [])):
        if c.get("metadata", {}).get("papermill", {}).get("start_time"):
            cell = _source_index(nb, i)
    if reason is None:
        reason = "kernel died" if type(exc).__name__ == "DeadKernelError" else "error"
    return ErrorInfo(reason=reason, cell_index=cell, ename=type(exc).__name__, evalue=str(exc))


def _source_index(nb: Any, index: int) -> int:
    """Index in the user's notebook of executed cell ``index`` (papermill inserts cells)."""

    def tags(c: Any) -> list[str]:
        return list(c.get("metadata", {}).get("tags", []))

    # papermill counts before adding its error banner cells; drop those, then the injected cell
    cells = [c for c in (nb or {}).get("cells", []) if "papermill-error-cell-tag" not in tags(c)]
    return index - sum(1 for c in cells[:index] if "injected-parameters" in tags(c))


_preload_lock = threading.Lock()
_preloaded = False


def _preload() -> None:
    """Import nbconvert and the lexer the HTML copy uses, once per process, under a lock.

    Several jobs may run in threads of one process (a Dask worker with several threads);
    pygments loads lexers lazily and not thread-safely, so these first imports must happen
    before any job of this process starts its kernel.
    """
    global _preloaded
    with _preload_lock:
        if _preloaded:
            return
        import nbconvert  # noqa: F401
        from pygments.lexers import get_lexer_by_name

        get_lexer_by_name("python3")
        _preloaded = True


def _render_html(nb: Any) -> str:
    import copy

    info = nb.get("metadata", {}).get("language_info", {})
    if info.get("pygments_lexer") in ("ipython3", "ipython"):
        # IPython's lexer costs a quarter CPU-second of imports per process; pygments' Python
        # lexer colours the same code (magics aside) for the HTML copy of a job.
        nb = copy.deepcopy(nb)
        nb.metadata.language_info.pygments_lexer = "python3"
    return render(nb)


def _write_html(nb: Any, path: Path, overwrite: bool) -> bool:
    body = _render_html(nb)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(body, encoding="utf-8")
    if place(tmp, path, overwrite=overwrite):
        return True
    tmp.unlink(missing_ok=True)
    return False


def execute(
    rec: JobRecord,
    notebook: Path,
    output: Path,
    store: JobStore | WorkerLink | None,
    html: bool = True,
    overwrite: bool = False,
) -> JobRecord:
    """Run ``notebook`` as job ``rec``; the record is saved as it starts, beats and ends.

    ``output`` was checked by :func:`lepton_nb.jobs._output_paths.check_output`; without
    ``overwrite`` a file that appeared there while the job ran is still not replaced.
    """
    import nbformat
    import papermill

    if html:
        _preload()
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(output, rec.id)
    rec.status, rec.started = "running", time.time()
    rec.heartbeat, rec.pid, rec.output = rec.started, os.getpid(), str(output)
    rec.partial = str(partial)  # what a lost job leaves behind
    if store is not None:
        store.put(rec)
    watchdog = _Watchdog(rec.id, store, rec.timeout)
    ACTIVE[rec.id] = watchdog
    seed = rec.seed if rec.seed is not None else 0
    env = {"LEPTON_SEED": str(seed), "PYTHONHASHSEED": str(seed % 2**32), "LEPTON_JOB_ID": rec.id}
    if rec.profile:  # ln.launch_cluster() in the notebook attaches to the job's cluster
        env["LEPTON_PROFILE"] = rec.profile
    if rec.cluster:
        env["LEPTON_CLUSTER_ADDRESS"] = rec.cluster
    km_class = _kernel_manager_class(env, rec.cwd, watchdog)
    failure: BaseException | None = None
    watchdog.start()
    try:
        papermill.execute_notebook(
            str(notebook),
            str(partial),
            parameters=rec.parameters,
            kernel_name=rec.kernel,
            progress_bar=False,
            kernel_manager_class=km_class,
            engine_name=_watched_engine(),
        )
    except Exception as e:  # noqa: BLE001 - any kernel/engine failure is recorded, never lost
        failure = e
    except BaseException:  # Ctrl-C / worker shutdown: say so in the record, then stop
        watchdog.stop_job("cancelled")
        rec.status, rec.ended = "cancelled", time.time()
        rec.error = ErrorInfo(reason="interrupted")
        if store is not None:
            store.put(rec)
        raise
    finally:
        watchdog.finish()
        ACTIVE.pop(rec.id, None)
    nb = None
    if partial.exists():
        try:
            nb = nbformat.read(partial, as_version=4)
        except (OSError, ValueError) as e:  # unreadable: keep it aside, never at the output
            rec.warnings.append(f"the executed notebook could not be read ({e}); see {partial}")
    if nb is not None:
        rec.records = read_records(nb)
        if place(partial, output, overwrite=overwrite):
            rec.partial = None
        else:
            rec.output = str(partial)
            rec.warnings.append(
                f"{output} appeared while the job ran and was not replaced; the executed "
                f"notebook is at {partial}"
            )
    else:
        rec.output = None
        if not partial.exists():
            rec.partial = None
    if failure is not None:
        rec.error = _error_from(failure, nb, watchdog.reason)
        rec.status = "cancelled" if watchdog.reason == "cancelled" else "failed"
    elif watchdog.reason is not None:  # killed right as the last cell finished
        rec.error = ErrorInfo(reason=watchdog.reason)
        rec.status = "cancelled" if watchdog.reason == "cancelled" else "failed"
    else:
        rec.status = "succeeded"
    if nb is not None and html:
        target = html_path(output)
        try:
            if _write_html(nb, target, overwrite):
                rec.html = str(target)
            else:
                rec.warnings.append(f"{target} appeared while the job ran; no HTML copy written")
        except Exception as e:  # noqa: BLE001 - a rendering problem must not fail the job
            rec.warnings.append(f"HTML rendering failed: {type(e).__name__}: {e}")
    rec.ended = time.time()
    rec.duration_s = rec.ended - rec.started
    rec.heartbeat = rec.ended
    if store is not None:
        store.put(rec)
    return rec


__all__ = ["ACTIVE", "KERNEL_ARGS", "execute"]
