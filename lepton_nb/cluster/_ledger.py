"""The per-user list of running clusters, so every cluster shows in one list.

``launch_cluster`` (in any kernel, script or the Jupyter server) writes one JSON file per
cluster under ``$LEPTON_HOME/clusters/``: scheduler address, dashboard, who launched it (the
notebook, from ``JPY_SESSION_NAME`` that jupyter-server gives its kernels) and the process.
``Cluster.close`` removes it; entries whose scheduler no longer answers are pruned by readers
(a killed kernel cannot clean up after itself). Files, not the job store: a kernel launching a
cluster must not need the jobs database, and one file per entry never conflicts.
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


def ledger_dir() -> Path:
    from lepton_nb.jobs.store import lepton_home

    return lepton_home() / "clusters"


def register(cluster: Any, origin: Origin | None = None, owner: str | None = None) -> LedgerEntry:
    """Record ``cluster`` (a lepton_nb Cluster); the entry id is kept on it as ``ledger_id``."""
    session = os.environ.get("JPY_SESSION_NAME")
    entry = LedgerEntry(
        id=getattr(cluster, "ledger_id", None) or uuid.uuid4().hex[:12],
        scheduler_address=cluster.scheduler_address,
        dashboard_link=cluster.dashboard_link,
        kind=cluster.kind,
        origin=origin or ("kernel" if session else "process"),
        owner=owner if owner is not None else session,
    )
    folder = ledger_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{entry.id}.tmp"
    tmp.write_text(entry.model_dump_json(), encoding="utf-8")
    os.replace(tmp, folder / f"{entry.id}.json")
    cluster.ledger_id = entry.id
    return entry


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
        if entry is None or (prune and not answers(entry.scheduler_address)):
            if prune:
                with contextlib.suppress(OSError):
                    path.unlink()
            continue
        out.append(entry)
    return sorted(out, key=lambda e: e.created)
