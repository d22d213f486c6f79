"""Jobs with a cluster profile run ON that profile's cluster, as a Dask task on a worker.

The process that runs such a job here (a job process of the runner, or ``jobs.run(profile=)``)
opens the profile's cluster as ``launch_cluster(profile=...)`` does: a ``remote`` profile
connects to its running scheduler; ``local``, ``factory`` and ``gateway`` profiles start a
cluster for the job and stop it afterwards. It submits :func:`worker_job` and watches it:
status, heartbeats and progress come back as Dask events, and a cancel requested in the store
becomes a Dask Event that the worker's watchdog answers by killing the kernel
(:mod:`lepton_nb.jobs._link`). The executed notebook and its HTML copy come back as text and
are placed at the job's output, so the worker needs no file system shared with this machine.
The kernel gets ``LEPTON_PROFILE`` and ``LEPTON_CLUSTER_ADDRESS``, so ``ln.launch_cluster()``
in the notebook attaches to the cluster the job runs on. A profile whose cluster cannot be
opened fails the job with reason ``cluster unavailable`` and what went wrong.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_nb.errors import LeptonError
from lepton_nb.jobs import _provenance as provenance
from lepton_nb.jobs._output_paths import html_path, partial_path, place
from lepton_nb.jobs.models import ErrorInfo, JobRecord
from lepton_nb.jobs.store import JobStore

if TYPE_CHECKING:
    from lepton_nb.cluster import Cluster

RELAY_S = 0.25  # how often heartbeats are applied and cancels forwarded
# A task already running gets this long to kill its kernel after a cancel before it is dropped.
CANCEL_GRACE_S = 10.0


def worker_job(
    rec_json: str, nb_bytes: bytes, nb_path: str, topic: str, html: bool
) -> tuple[dict[str, Any], str | None, str | None]:
    """Runs on a Dask worker: execute one job, return its record, notebook and HTML.

    The worker needs no file system shared with the client: the notebook arrives as bytes,
    the results go back as text, and status, heartbeats, progress and cancels travel through
    Dask (:mod:`lepton_nb.jobs._link`), never through the client's job store."""
    from lepton_nb.jobs._execute import execute
    from lepton_nb.jobs._link import WorkerLink

    rec = JobRecord.model_validate_json(rec_json)
    rec = rec.model_copy(update=provenance.environment())  # where it actually runs
    link = WorkerLink(topic)
    if link.cancel_requested(rec.id):
        rec.status, rec.error = "cancelled", ErrorInfo(reason="cancelled")
        return rec.model_dump(mode="json"), None, None
    tmp = Path(tempfile.mkdtemp(prefix="lepton-job-"))
    try:
        path = Path(nb_path)
        if not path.is_file() or provenance.sha256_file(path) != rec.notebook_sha256:
            path = tmp / Path(nb_path).name
            path.write_bytes(nb_bytes)
        if not rec.cwd or not Path(rec.cwd).is_dir():
            rec.cwd = str(path.parent)
        out = tmp / "out" / f"{path.stem}.ipynb"
        rec = execute(rec, path, out, link, html=html)
        nb_text = out.read_text(encoding="utf-8") if out.exists() else None
        html_file = out.with_suffix(".html")
        html_text = html_file.read_text(encoding="utf-8") if html_file.exists() else None
        return rec.model_dump(mode="json"), nb_text, html_text
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def open_cluster(profile: str) -> Cluster:
    """The cluster of ``profile``, opened as ``launch_cluster(profile=...)`` opens it."""
    from lepton_nb.cluster import CLUSTER_KINDS, get_profile, launch_cluster

    settings = get_profile(profile)
    kind = settings.get("kind") or ("remote" if "address" in settings else "local")
    local = kind in CLUSTER_KINDS.names() and CLUSTER_KINDS.get(kind).local
    # a cluster started for one job must not take the dashboard port of the user's own
    dashboard = "127.0.0.1:0" if local else None
    return launch_cluster(profile=profile, dashboard_address=dashboard)


def execute_on_profile(
    rec: JobRecord,
    notebook: Path,
    output: Path,
    store: JobStore,
    html: bool = True,
    overwrite: bool = False,
) -> JobRecord:
    """Run job ``rec`` on the cluster of ``rec.profile``; the record is saved as it goes.

    ``output`` was checked by :func:`lepton_nb.jobs._output_paths.check_output`, as for ``execute``.
    """
    if not rec.profile:
        raise LeptonError(f"job {rec.id} names no cluster profile to run on")
    rec.status, rec.started = "running", rec.started or time.time()
    rec.pid, rec.host, rec.heartbeat = os.getpid(), socket.gethostname(), time.time()
    rec.output = str(output)
    store.put(rec)
    try:
        cluster = open_cluster(rec.profile)
    except (LeptonError, OSError, TimeoutError, ImportError, ValueError) as e:
        why = f"the cluster of profile {rec.profile!r} could not be opened: {e}"
        return _end(
            rec,
            store,
            "failed",
            ErrorInfo(reason="cluster unavailable", ename=type(e).__name__, evalue=why),
        )
    try:
        return _watch(rec, notebook, output, store, cluster, html, overwrite)
    finally:
        cluster.close()


def _watch(
    rec: JobRecord,
    notebook: Path,
    output: Path,
    store: JobStore,
    cluster: Cluster,
    html: bool,
    overwrite: bool,
) -> JobRecord:
    from lepton_nb.jobs._link import ClientRelay

    client = cluster.client
    rec.cluster = cluster.scheduler_address
    store.put(rec)
    topic = f"lepton-job-{rec.id}"
    relay = ClientRelay(client, topic, store, [rec.id])
    try:
        fut = client.submit(
            worker_job,
            rec.model_dump_json(),
            notebook.read_bytes(),
            str(notebook),
            topic,
            html,
            pure=False,
            key=f"lepton-job-{rec.id}",
        )
        stop_by: float | None = None
        while not fut.done():
            time.sleep(RELAY_S)
            relay.pump()  # heartbeats in; a cancel goes out to the worker as a Dask Event
            started = rec.id in relay.started
            now = store.get(rec.id)  # reported lost: its worker died or went silent
            if now.status == "lost":
                fut.cancel()  # Dask would otherwise wait for a worker to run it again
                return _end(
                    rec,
                    store,
                    "failed",
                    ErrorInfo(
                        reason="worker lost",
                        evalue=f"the Dask worker running it (pid {now.pid} on {now.host}) died or "
                        f"stopped answering; the job was taken off the cluster {rec.cluster}",
                    ),
                )
            # until a worker starts it, this process is what keeps the record alive
            cancel = store.cancel_requested(rec.id) if started else store.beat(rec.id)
            if not cancel:
                continue
            if not started:  # still waiting for a worker thread: drop it from the cluster
                fut.cancel()
                return _end(
                    rec,
                    store,
                    "cancelled",
                    ErrorInfo(reason="cancelled", evalue="cancelled before a worker started it"),
                )
            stop_by = stop_by or time.monotonic() + CANCEL_GRACE_S
            if time.monotonic() > stop_by:
                fut.cancel()
                return _end(
                    rec,
                    store,
                    "cancelled",
                    ErrorInfo(
                        reason="cancelled",
                        evalue=f"the worker did not stop it within {CANCEL_GRACE_S:.0f} s; its "
                        "task was dropped from the cluster",
                    ),
                )
        relay.pump()
        return _collect(fut, rec, output, store, overwrite)
    finally:
        relay.close()


def _collect(fut: Any, rec: JobRecord, output: Path, store: JobStore, overwrite: bool) -> JobRecord:
    if fut.status == "error":  # the task itself failed: its worker died, or Dask gave up
        exc = fut.exception()
        return _end(
            rec,
            store,
            "failed",
            ErrorInfo(reason="worker lost", ename=type(exc).__name__, evalue=str(exc)),
        )
    if fut.status != "finished":
        return _end(
            rec,
            store,
            "failed",
            ErrorInfo(reason="worker lost", evalue=f"its task ended {fut.status} on {rec.cluster}"),
        )
    data, nb_text, html_text = fut.result()
    done = JobRecord.model_validate(data)
    done.output = done.html = done.partial = None
    done.progress, done.cluster = {}, rec.cluster
    if nb_text is not None:
        done.output = _place(nb_text, output, partial_path(output, rec.id), overwrite, done)
    if html_text is not None and done.output == str(output):
        target = html_path(output)
        done.html = _place(
            html_text, target, target.with_name(f".{target.name}.partial"), overwrite, done
        )
    return store.put(done)


def _place(text: str, target: Path, tmp: Path, overwrite: bool, rec: JobRecord) -> str:
    """Write ``text`` to ``target`` without replacing a file that appeared meanwhile."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(text, encoding="utf-8")
    if place(tmp, target, overwrite=overwrite):
        return str(target)
    rec.warnings.append(f"{target} appeared while the job ran and was not replaced; see {tmp}")
    return str(tmp)


def _end(rec: JobRecord, store: JobStore, status: str, error: ErrorInfo) -> JobRecord:
    rec.status, rec.error = status, error  # type: ignore[assignment]
    rec.ended = rec.heartbeat = time.time()
    rec.duration_s = rec.ended - (rec.started or rec.ended)
    rec.output = rec.partial = None
    rec.progress = {}
    return store.put(rec)


__all__ = ["execute_on_profile", "open_cluster", "worker_job"]
