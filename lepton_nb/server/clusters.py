"""ClusterManager: the Dask clusters of this Jupyter server, and every other cluster of the user.

Clusters launched here belong to the server process. Clusters that kernels (or scripts) launched
with ``ln.launch_cluster`` are read from the per-user ledger (lepton_nb/cluster/_ledger.py) and
listed too, with the notebook that owns them; the server can stop them (a scheduler shutdown)
but not scale them (their owner can).

Synchronous and Tornado-free on purpose: the handlers call it from a thread pool, and tests can
drive it directly.
"""

from __future__ import annotations

import builtins
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lepton_nb.errors import ClusterError, NotFoundError
from lepton_nb.server.models import ClusterInfo, ClusterPatch, LaunchRequest, WorkerInfo


@dataclass
class _Entry:
    id: str
    cluster: Any  # lepton_nb.cluster.Cluster (imported lazily: dask is heavy)
    options: dict[str, Any]
    created: float = field(default_factory=time.time)
    credentials: Path | None = None  # TLS key/cert folder in the runtime dir


def connect_code(address: str | None, credentials: Path | None) -> str:
    """The Python "Insert connect code" puts in a notebook (the frontend shows this text)."""
    args = repr(address or "")
    if credentials is not None:
        args += f", credentials={str(credentials)!r}"
    return f"import lepton_nb as ln\n\ncluster = ln.connect({args})\ncluster"


def _proxy(cluster_id: str, link: str | None) -> str | None:
    """The dashboard's page through the Jupyter server (lepton_nb/server/dashboard.py)."""
    if not link:
        return None
    from urllib.parse import urlsplit

    path = urlsplit(link).path.lstrip("/") or "status"
    return f"lepton/dashboard/{cluster_id}/{path}"


def _default_launcher(**kwargs: Any) -> Any:
    from lepton_nb.cluster import launch_cluster

    # Port 0: several servers (and test runs) on one host must not fight over :8787.
    return launch_cluster(host="127.0.0.1", dashboard_address="127.0.0.1:0", **kwargs)


class ClusterManager:
    """Launch, list, scale, adapt and stop clusters owned by this process."""

    def __init__(
        self, launcher: Callable[..., Any] | None = None, runtime_dir: str | Path | None = None
    ) -> None:
        self._launch = launcher or _default_launcher
        self._runtime_dir = runtime_dir
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def launch(self, request: LaunchRequest) -> ClusterInfo:
        from lepton_nb.cluster import _ledger
        from lepton_nb.cluster._tls import remove_credentials, runtime_folder

        cluster_id = uuid.uuid4().hex[:12]
        # TLS unless asked otherwise: anyone on the machine can reach a scheduler port, and a
        # client runs code on the workers as this user. A profile naming a remote cluster
        # brings its own security settings.
        creds = runtime_folder(cluster_id, self._runtime_dir) if request.secure else None
        extra: dict[str, Any] = {"credentials": creds} if creds is not None else {}
        try:
            cluster = self._launch(
                n_workers=request.n_workers,
                threads_per_worker=request.threads_per_worker,
                gpu=request.gpu_arg(),
                profile=request.profile,
                **extra,
            )
            if request.n_workers:
                # Report the workers the user asked for, not an empty list from mid-startup.
                cluster.wait_for_workers(request.n_workers, timeout=120)
        except BaseException:
            remove_credentials(creds)
            raise
        if creds is not None and not creds.exists():
            creds = None  # a profile connected to a remote cluster: its own security applies
        # launch_cluster listed it under an id of its own; list it under this server's id
        _ledger.forget(getattr(cluster, "ledger_id", None))
        cluster.ledger_id = cluster_id
        try:
            _ledger.register(cluster, origin="server", owner="Jupyter server")
        except OSError:  # the ledger is a convenience; the cluster is running
            pass
        entry = _Entry(cluster_id, cluster, request.model_dump(), credentials=creds)
        with self._lock:
            self._entries[entry.id] = entry
        return self._info(entry)

    def list(self) -> list[ClusterInfo]:
        with self._lock:
            entries = list(self._entries.values())
        own = [self._info(e) for e in sorted(entries, key=lambda e: e.created)]
        return own + [self._foreign_info(e) for e in self._foreign()]

    def get(self, cluster_id: str) -> ClusterInfo:
        foreign = self._foreign_entry(cluster_id)
        if foreign is not None:
            return self._foreign_info(foreign)
        return self._info(self._entry(cluster_id))

    def patch(self, cluster_id: str, patch: ClusterPatch) -> ClusterInfo:
        foreign = self._foreign_entry(cluster_id)
        if foreign is not None:
            raise ClusterError(
                f"cluster {cluster_id} belongs to {foreign.owner or f'process {foreign.pid}'}; "
                "scale it from there (cluster.scale / cluster.adapt); the sidebar can only stop it"
            )
        entry = self._entry(cluster_id)
        self._require_open(entry)
        if patch.adapt is not None:
            entry.cluster.adapt(minimum=patch.adapt.minimum, maximum=patch.adapt.maximum)
            entry.options["adapt"] = patch.adapt.model_dump()
        else:
            assert patch.n_workers is not None  # guaranteed by ClusterPatch
            entry.cluster.scale(patch.n_workers)
            entry.options.pop("adapt", None)
            entry.options["n_workers"] = patch.n_workers
        return self._info(entry)

    def stop(self, cluster_id: str) -> ClusterInfo:
        foreign = self._foreign_entry(cluster_id)
        if foreign is not None:
            return self._stop_foreign(foreign)
        with self._lock:
            entry = self._entries.pop(cluster_id, None)
        if entry is None:
            raise self._missing(cluster_id)
        info = self._info(entry)
        entry.cluster.close()
        self._forget(entry)
        return info.model_copy(update={"status": "closed", "workers": [], "n_workers": 0})

    def close_all(self) -> None:
        """Stop every cluster (server shutdown): workers must not outlive the server."""
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            entry.cluster.close()
            self._forget(entry)

    @staticmethod
    def _forget(entry: _Entry) -> None:
        from lepton_nb.cluster._tls import remove_credentials

        remove_credentials(entry.credentials)

    # -- clusters launched elsewhere (kernels, scripts) -------------------------------------
    def _foreign(self) -> builtins.list[Any]:
        from lepton_nb.cluster import _ledger

        with self._lock:
            own = set(self._entries)
        return [e for e in _ledger.entries() if e.id not in own]

    def _foreign_entry(self, cluster_id: str) -> Any:
        with self._lock:
            if cluster_id in self._entries:
                return None
        return next((e for e in self._foreign() if e.id == cluster_id), None)

    def _foreign_info(self, e: Any) -> ClusterInfo:
        return ClusterInfo(
            id=e.id, kind=e.kind, status="running", scheduler_address=e.scheduler_address,
            dashboard_link=e.dashboard_link, dashboard_proxy=_proxy(e.id, e.dashboard_link),
            created=e.created, origin=e.origin, owner=e.owner,
            pid=e.pid,
        )

    def _stop_foreign(self, e: Any) -> ClusterInfo:
        from distributed import Client

        from lepton_nb.cluster import _ledger

        try:
            with Client(e.scheduler_address, timeout=10) as client:
                client.shutdown()  # the scheduler and its workers
        except (OSError, TimeoutError) as err:
            raise ClusterError(
                f"could not reach cluster {e.id} at {e.scheduler_address} to stop it: {err}"
            ) from err
        _ledger.forget(e.id)
        return self._foreign_info(e).model_copy(update={"status": "closed"})

    # -- helpers ---------------------------------------------------------------------------
    def _entry(self, cluster_id: str) -> _Entry:
        with self._lock:
            entry = self._entries.get(cluster_id)
        if entry is None:
            raise self._missing(cluster_id)
        return entry

    def _missing(self, cluster_id: str) -> NotFoundError:
        known = ", ".join(sorted(self._entries)) or "none"
        return NotFoundError(
            f"no cluster {cluster_id!r} in this server (running: {known}); "
            "list them with GET lepton/api/clusters"
        )

    @staticmethod
    def _require_open(entry: _Entry) -> None:
        if entry.cluster.closed:
            raise ClusterError(
                f"cluster {entry.id} is closed; stop it (DELETE) and launch a new one"
            )

    @staticmethod
    def _info(entry: _Entry) -> ClusterInfo:
        c = entry.cluster
        if c.closed:
            return ClusterInfo(
                id=entry.id, kind=c.kind, status="closed", options=entry.options,
                created=entry.created,
            )
        workers = [WorkerInfo(**w) for w in c.workers]
        address = c.scheduler_address
        return ClusterInfo(
            id=entry.id,
            kind=c.kind,
            status="running",
            scheduler_address=address,
            dashboard_link=c.dashboard_link,
            dashboard_proxy=_proxy(entry.id, c.dashboard_link),
            n_workers=len(workers),
            threads=sum(w.nthreads or 0 for w in workers),
            memory=sum(w.memory_limit or 0 for w in workers),
            gpus=sum(1 for w in workers if w.gpu_name),
            workers=workers,
            options=entry.options,
            created=entry.created,
            secure=str(address).startswith("tls://"),
            credentials=str(entry.credentials) if entry.credentials else None,
            connect_code=connect_code(address, entry.credentials),
        )
