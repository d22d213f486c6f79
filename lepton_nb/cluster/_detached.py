"""A cluster in a process of its own, detached from the Jupyter server that asked for it.

The server starts ``python -m lepton_nb.cluster._detached ID OPTIONS`` in a new session (like
the job runner: a SIGKILL of the server's process group never reaches it). That process
launches the cluster, writes its ledger entry (scheduler, dashboard, its processes, the TLS
credentials folder, the launch options) once the workers are up, and keeps the cluster until
SIGTERM or until the scheduler is gone; then it closes the cluster and removes its entry and
credentials. A launch that fails writes ``<id>.failed`` (the error's class and message) beside
the ledger entries, so the server can answer with the same error.

The server only holds a Client. Scale and adapt travel as scheduler operations
(``lepton_scale`` / ``lepton_adapt``) that this process adds to a scheduler it runs, which only
a client holding the cluster's TLS credentials can call. Stopping is SIGTERM (a graceful close),
then SIGKILL of the recorded processes after a grace (:func:`stop`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lepton_nb.cluster import _ledger
from lepton_nb.cluster._ledger import LedgerEntry, ProcessRef
from lepton_nb.errors import ClusterError, LeptonError

__all__ = ["OWNER", "adapt", "scale", "spawn", "stop", "wait_ready"]

OWNER = "Jupyter server"
_REFRESH_S = 2.0  # how often the entry's worker pids are brought up to date
_GPU: dict[str, Any] = {"auto": "auto", "on": True, "off": False}  # LaunchRequest.gpu


def _failed_path(cluster_id: str) -> Path:
    return _ledger.ledger_dir() / f"{cluster_id}.failed"


def spawn(
    cluster_id: str,
    options: dict[str, Any],
    credentials: Path | None,
    profile: dict[str, Any] | None = None,
) -> subprocess.Popen[bytes]:
    """Start the detached process of cluster ``cluster_id`` (call :func:`wait_ready` next).

    ``profile``: the raw settings of ``options["profile"]`` as the caller's dask config has
    them, so the process launches what the server validated (a profile set in the server's
    process only, too). They travel on stdin: argv is visible to every user (``ps``), and a
    profile may hold a password."""
    folder = _ledger.ledger_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    cmd = [sys.executable, "-m", "lepton_nb.cluster._detached", cluster_id]
    if credentials is not None:
        cmd += ["--credentials", str(credentials)]
    with open(folder / f"{cluster_id}.log", "ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=out, stdin=subprocess.PIPE, start_new_session=True
        )
    assert proc.stdin is not None
    with proc.stdin:
        proc.stdin.write(json.dumps({"options": options, "profile": profile}).encode())
    # reap it when it exits while this process lives (no zombie counted as alive)
    threading.Thread(target=proc.wait, name=f"lepton-cluster-{cluster_id}", daemon=True).start()
    return proc


def wait_ready(cluster_id: str, proc: subprocess.Popen[bytes], timeout: float) -> LedgerEntry:
    """The ledger entry once the cluster is up; its error if the launch failed."""
    failed = _failed_path(cluster_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = _ledger.read(cluster_id)
        if entry is not None:
            return entry
        if failed.exists() or proc.poll() is not None:
            time.sleep(0.2)  # the report is written just before the exit
            raise _reported_error(cluster_id, proc)
        time.sleep(0.2)
    proc.kill()
    raise ClusterError(
        f"cluster {cluster_id} did not start within {timeout:.0f} s; see "
        f"{_ledger.ledger_dir() / (cluster_id + '.log')}"
    )


def _reported_error(cluster_id: str, proc: subprocess.Popen[bytes]) -> LeptonError:
    from lepton_nb import errors

    failed = _failed_path(cluster_id)
    log = _ledger.ledger_dir() / f"{cluster_id}.log"
    try:
        report = json.loads(failed.read_text(encoding="utf-8"))
        failed.unlink()
    except (OSError, ValueError):
        return ClusterError(
            f"the process of cluster {cluster_id} exited (code {proc.poll()}) before the "
            f"cluster was up; see {log}"
        )
    with contextlib.suppress(OSError):  # the report says it all
        log.unlink()
    cls = getattr(errors, str(report.get("error")), None)
    if not (isinstance(cls, type) and issubclass(cls, LeptonError)):
        cls = ClusterError
    return cls(str(report.get("message")))


def stop(entry: LedgerEntry, grace: float = 15.0) -> None:
    """SIGTERM the cluster's process (it closes the cluster), SIGKILL what lives after
    ``grace`` seconds, then drop its ledger entry and credentials."""
    head = entry.processes[:1]
    for ref in head:
        if ref.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(ref.pid, signal.SIGCONT)  # a stopped process cannot handle SIGTERM
                os.kill(ref.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and entry.alive():
        time.sleep(0.2)
    for ref in entry.processes:
        if ref.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(ref.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and entry.alive():
        time.sleep(0.1)
    _ledger.forget(entry.id)
    _ledger.remove_runtime_credentials(entry.credentials)
    with contextlib.suppress(OSError):  # kept only while it may explain a failed launch
        (_ledger.ledger_dir() / f"{entry.id}.log").unlink()


def scale(client: Any, cluster_id: str, n: int) -> None:
    _call(client, cluster_id, "lepton_scale", n=n)


def adapt(client: Any, cluster_id: str, minimum: int, maximum: int) -> None:
    _call(client, cluster_id, "lepton_adapt", minimum=minimum, maximum=maximum)


def _call(client: Any, cluster_id: str, op: str, **kw: Any) -> None:
    reply = client.sync(getattr(client.scheduler, op), **kw)
    if reply is None:  # the scheduler has no such operation: it runs elsewhere
        raise ClusterError(
            f"cluster {cluster_id}'s scheduler does not run in its Lepton process (a remote "
            "or gateway profile), so the sidebar cannot resize it; use the tool that runs it"
        )
    if isinstance(reply, dict) and reply.get("status") == "error":
        raise ClusterError(f"cluster {cluster_id} refused {op}: {reply.get('message')}")


# -- the detached process -----------------------------------------------------------------
def _processes(cluster: Any) -> list[ProcessRef]:
    """This process first (it holds the scheduler and nannies), then the worker processes
    of a scheduler it runs (a remote scheduler's workers are not ours to kill)."""
    scheduler = getattr(cluster._cluster, "scheduler", None)
    workers = getattr(scheduler, "workers", None) or {}
    try:
        pids = sorted(int(ws.pid) for ws in list(workers.values()) if getattr(ws, "pid", 0))
    except RuntimeError:  # the scheduler's loop changed the dict meanwhile: next time
        pids = []
    return [ref for ref in map(ProcessRef.of, [os.getpid(), *pids]) if ref is not None]


class _Record:
    """The ledger entry this process keeps current: worker pids as they change, and the
    options after a scale or adapt (so a re-attaching server shows what was asked last)."""

    def __init__(self) -> None:
        self.entry: LedgerEntry | None = None
        self._lock = threading.Lock()

    def update(self, **fields: Any) -> None:
        with self._lock:
            if self.entry is None:
                return
            self.entry = self.entry.model_copy(update=fields)
            with contextlib.suppress(OSError):
                _ledger.write(self.entry)

    def options(self) -> dict[str, Any]:
        with self._lock:
            return dict(self.entry.options) if self.entry is not None else {}


def _add_operations(cluster: Any, record: _Record) -> None:
    scheduler = getattr(cluster._cluster, "scheduler", None)
    handlers = getattr(scheduler, "handlers", None)
    if not isinstance(handlers, dict):
        return  # the scheduler runs elsewhere (gateway, remote)

    async def lepton_scale(n: int) -> dict[str, str]:
        await asyncio.to_thread(cluster.scale, n)  # off the scheduler's loop, as a client would
        options = record.options()
        options.pop("adapt", None)
        record.update(options={**options, "n_workers": n})
        return {"status": "OK"}

    async def lepton_adapt(minimum: int, maximum: int) -> dict[str, str]:
        await asyncio.to_thread(cluster.adapt, minimum=minimum, maximum=maximum)
        adapt = {"minimum": minimum, "maximum": maximum}
        record.update(options={**record.options(), "adapt": adapt})
        return {"status": "OK"}

    handlers["lepton_scale"] = lepton_scale
    handlers["lepton_adapt"] = lepton_adapt


def serve(cluster_id: str, options: dict[str, Any], credentials: Path | None) -> int:
    from lepton_nb.cluster._launch import launch_cluster
    from lepton_nb.cluster._tls import remove_credentials

    halt = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: halt.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closing terminal is not a stop
    extra: dict[str, Any] = {"credentials": credentials} if credentials is not None else {}
    try:
        # Port 0: several servers (and test runs) on one host must not fight over :8787.
        cluster = launch_cluster(
            n_workers=options.get("n_workers"),
            threads_per_worker=options.get("threads_per_worker"),
            gpu=_GPU[options.get("gpu", "auto")],
            profile=options.get("profile"),
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            **extra,
        )
        if options.get("n_workers"):  # report the workers asked for, not a mid-startup list
            cluster.wait_for_workers(options["n_workers"], timeout=120)
    except LeptonError as e:
        remove_credentials(credentials)
        _report(cluster_id, type(e).__name__, str(e))
        return 1
    try:
        _ledger.forget(cluster.ledger_id)  # launch_cluster listed it under an id of its own
        cluster.ledger_id = cluster_id
        cluster.owned_credentials = credentials  # removed when the cluster closes
        record = _Record()
        _add_operations(cluster, record)  # before the entry: the server may resize at once
        record.entry = _ledger.register(
            cluster, origin="server", owner=OWNER, processes=_processes(cluster), options=options
        )
        _watch(cluster, record, halt)
    finally:
        cluster.close()
        _ledger.forget(cluster_id)
        remove_credentials(credentials)
        with contextlib.suppress(OSError):  # a clean end: nothing in it to explain
            (_ledger.ledger_dir() / f"{cluster_id}.log").unlink()
    return 0


def _watch(cluster: Any, record: _Record, halt: threading.Event) -> None:
    """Until SIGTERM or the scheduler's end, keep the entry's worker pids current."""
    refreshed, pids = time.monotonic(), [p.pid for p in _processes(cluster)]
    while not halt.wait(0.5):
        if cluster.closed or cluster.client.status != "running":
            return
        if time.monotonic() - refreshed > _REFRESH_S:
            refreshed = time.monotonic()
            procs = _processes(cluster)
            if [p.pid for p in procs] != pids:
                pids = [p.pid for p in procs]
                record.update(processes=procs)


def _report(cluster_id: str, error: str, message: str) -> None:
    path = _failed_path(cluster_id)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"error": error, "message": message}), encoding="utf-8")
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lepton_nb.cluster._detached",
        description='reads {"options": {...}, "profile": {...} | null} (JSON) on stdin',
    )
    p.add_argument("cluster_id")
    p.add_argument("--credentials", type=Path, default=None)
    args = p.parse_args(argv)
    given = json.loads(sys.stdin.read())
    options, profile = given["options"], given.get("profile")
    if profile is not None and options.get("profile"):
        import dask.config

        dask.config.update(
            dask.config.config,
            {"lepton": {"profiles": {options["profile"]: profile}}},
            priority="new",
        )
    return serve(args.cluster_id, options, args.credentials)


if __name__ == "__main__":
    sys.exit(main())
