"""The per-user list of running clusters, so every cluster shows in one list.

``launch_cluster`` (in any kernel, script or the Jupyter server) writes one JSON file per
cluster under ``$LEPTON_HOME/clusters/``: scheduler address, dashboard, who launched it (the
notebook, from ``JPY_SESSION_NAME`` that jupyter-server gives its kernels) and the process.
``Cluster.close`` removes it; entries whose scheduler no longer answers are pruned by readers
(a killed kernel cannot clean up after itself). Files, not the job store: a kernel launching a
cluster must not need the jobs database, and one file per entry never conflicts.

Clusters the Jupyter server launches run in a detached process (``cluster/_detached.py``) whose
entry also records its processes (pid and start time, so a reused pid is never taken for it),
its TLS credentials folder and its launch options: a restarted server re-attaches to it, or
shows it orphaned while a process lives but the scheduler does not answer, and can stop it.
An entry of that kind is pruned only once none of its processes lives.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError

Origin = Literal["server", "kernel", "process"]


class ProcessRef(BaseModel):
    """A process by pid and start time (psutil's ``create_time``): pids are reused."""

    pid: int
    started: float

    @classmethod
    def of(cls, pid: int) -> ProcessRef | None:
        import psutil

        try:
            return cls(pid=pid, started=psutil.Process(pid).create_time())
        except psutil.Error:
            return None

    def alive(self) -> bool:
        import psutil

        try:
            proc = psutil.Process(self.pid)
            # a zombie has exited: only its exit status waits for its parent
            return (
                abs(proc.create_time() - self.started) < 1.0
                and proc.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.Error:
            return False


class LedgerEntry(BaseModel):
    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    scheduler_address: str
    dashboard_link: str | None = None
    kind: str = "local"
    origin: Origin = "process"
    owner: str | None = None  # the notebook (path relative to the server root) or a label
    pid: int = Field(default_factory=os.getpid)
    host: str = Field(default_factory=socket.gethostname)
    created: float = Field(default_factory=time.time)
    # the TLS key/cert folder a client needs (0700, in the Jupyter runtime dir), if any
    credentials: str | None = None
    # detached server clusters: the processes to stop, and what was asked at launch
    processes: list[ProcessRef] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)
    name: str | None = None  # a gateway cluster's name (re-attached by name)

    def alive(self) -> bool:
        """Whether any recorded process still runs."""
        return any(p.alive() for p in self.processes)


def ledger_dir() -> Path:
    from lepton_nb.jobs.store import lepton_home

    return lepton_home() / "clusters"


def register(
    cluster: Any, origin: Origin | None = None, owner: str | None = None, **extra: Any
) -> LedgerEntry:
    """Record ``cluster`` (a lepton_nb Cluster); the entry id is kept on it as ``ledger_id``.

    ``extra``: further :class:`LedgerEntry` fields (``processes``, ``options``, ...)."""
    session = os.environ.get("JPY_SESSION_NAME")
    creds = getattr(cluster, "credentials", None)
    entry = LedgerEntry(
        id=getattr(cluster, "ledger_id", None) or uuid.uuid4().hex[:12],
        scheduler_address=cluster.scheduler_address,
        dashboard_link=cluster.dashboard_link,
        kind=cluster.kind,
        origin=origin or ("kernel" if session else "process"),
        owner=owner if owner is not None else session,
        credentials=str(creds) if creds is not None else None,
        name=getattr(cluster, "name", None),
        **extra,
    )
    write(entry)
    cluster.ledger_id = entry.id
    return entry


def write(entry: LedgerEntry) -> None:
    """Write (or replace) ``entry`` atomically: readers never see half a file."""
    folder = ledger_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = folder / f".{entry.id}.tmp"
    tmp.write_text(entry.model_dump_json(), encoding="utf-8")
    os.replace(tmp, folder / f"{entry.id}.json")


def read(entry_id: str) -> LedgerEntry | None:
    try:
        raw = (ledger_dir() / f"{entry_id}.json").read_text(encoding="utf-8")
        return LedgerEntry.model_validate(json.loads(raw))
    except (OSError, ValueError, ValidationError):
        return None


def forget(entry_id: str | None) -> None:
    if entry_id:
        with contextlib.suppress(OSError):
            (ledger_dir() / f"{entry_id}.json").unlink()


def answers(address: str, timeout: float = 0.5) -> bool:
    """Whether something listens at the scheduler's address (a TCP connect, nothing sent)."""
    parts = urlsplit(address)
    if not parts.hostname or not parts.port:
        return False
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            return True
    except OSError:
        return False


def entries(prune: bool = True) -> list[LedgerEntry]:
    """Every recorded cluster, oldest first; dead or unreadable entries are removed."""
    folder = ledger_dir()
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            entry = LedgerEntry.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, ValidationError):
            entry = None
        if entry is None or (prune and _dead(entry)):
            if prune:
                with contextlib.suppress(OSError):
                    path.unlink()
                if entry is not None:
                    remove_runtime_credentials(entry.credentials)
            continue
        out.append(entry)
    return sorted(out, key=lambda e: e.created)


def _dead(entry: LedgerEntry) -> bool:
    if entry.processes:  # a detached server cluster: orphaned while a process lives
        return not entry.alive()
    return not answers(entry.scheduler_address)


def remove_runtime_credentials(folder: str | None) -> None:
    """Remove credentials lepton_nb made in the runtime dir (never a folder a user named)."""
    from lepton_nb.cluster._tls import RUNTIME_SUBDIR, remove_credentials

    if folder and Path(folder).parent.name == RUNTIME_SUBDIR:
        remove_credentials(folder)


__all__ = [
    "LedgerEntry",
    "Origin",
    "ProcessRef",
    "answers",
    "entries",
    "forget",
    "ledger_dir",
    "read",
    "register",
    "remove_runtime_credentials",
    "write",
]
