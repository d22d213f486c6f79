"""ClusterManager: the Dask clusters of this Jupyter server, and every other cluster of the user.

A cluster launched here runs in a detached process of its own (lepton_nb/cluster/_detached.py)
that records it in the per-user ledger (lepton_nb/cluster/_ledger.py); this process only holds
a Client. So a cluster outlives the server, even a SIGKILL: the next server finds its ledger
entry and lists it as ``re-attached`` (the scheduler answered, a Client is connected again) or
``orphaned`` (a process of it lives, the scheduler does not answer), and can stop either.
Entries none of whose processes live are pruned. Clusters that kernels (or scripts) launched
with ``ln.launch_cluster`` are listed too, with the notebook that owns them; the server can
stop them (a scheduler shutdown, with their TLS credentials when they have some) but not scale
them (their owner can).

Synchronous and Tornado-free on purpose: the handlers call it from a thread pool, and tests can
drive it directly.
"""

from __future__ import annotations

import builtins
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lepton_nb.errors import ClusterError, ConfigError, NotFoundError
from lepton_nb.server._models import ClusterInfo, ClusterPatch, LaunchRequest, WorkerInfo

State = Literal["running", "re-attached", "orphaned"]
# a scheduler that did not answer is asked again after this long, not at every list
_ORPHAN_RECHECK_S = 10.0
_CONNECT_TIMEOUT_S = 5.0


@dataclass
class _Entry:
    id: str
    cluster: Any  # a lepton_nb Cluster holding only a Client (dask is imported lazily)
    ledger: Any  # its lepton_nb.cluster._ledger.LedgerEntry
    options: dict[str, Any]
    state: State = "running"
    created: float = field(default_factory=time.time)

    @property
    def credentials(self) -> Path | None:
        return Path(self.ledger.credentials) if self.ledger.credentials else None


def connect_code(address: str | None, credentials: Path | str | None) -> str:
    """The Python "Insert connect code" puts in a notebook (the frontend shows this text)."""
    args = repr(address or "")
    if credentials is not None:
        args += f", credentials={str(credentials)!r}"
    return f"import lepton_nb as ln\n\ncluster = ln.connect({args})\ncluster"


def _proxy(cluster_id: str, link: str | None) -> str | None:
    """The dashboard's page through the Jupyter server (lepton_nb/server/_dashboard.py)."""
    if not link:
        return None
    from urllib.parse import urlsplit

    path = urlsplit(link).path.lstrip("/") or "status"
    return f"lepton/dashboard/{cluster_id}/{path}"


class ClusterManager:
    """Launch, list, scale, adapt and stop clusters; re-attach those of an earlier server."""

    def __init__(
        self,
        runtime_dir: str | Path | None = None,
        launch_timeout: float = 180.0,
        stop_grace: float = 15.0,
        stop_on_exit: bool = False,
    ) -> None:
        self._runtime_dir = runtime_dir
        self._launch_timeout, self._stop_grace = launch_timeout, stop_grace
        self._stop_on_exit = stop_on_exit
        self._entries: dict[str, _Entry] = {}
        self._unanswered: dict[str, float] = {}  # cluster id -> when its scheduler last failed
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()  # one re-attach pass at a time: one Client each

    def launch(self, request: LaunchRequest) -> ClusterInfo:
        from lepton_nb.cluster import _detached
        from lepton_nb.cluster._profiles import get_profile, list_profiles
        from lepton_nb.cluster._tls import remove_credentials, runtime_folder

        profile = None
        if request.profile is not None:
            get_profile(request.profile)  # an unknown profile is a 400 before anything starts
            profile = list_profiles()[request.profile]
        cluster_id = uuid.uuid4().hex[:12]
        # TLS unless asked otherwise: anyone on the machine can reach a scheduler port, and a
        # client runs code on the workers as this user. A profile naming a remote cluster
        # brings its own security settings.
        creds = runtime_folder(cluster_id, self._runtime_dir) if request.secure else None
        options = request.model_dump()
        proc = _detached.spawn(cluster_id, options, creds, profile)
        try:
            ledger = _detached.wait_ready(cluster_id, proc, self._launch_timeout)
        except BaseException:
            if proc.poll() is None:
                proc.kill()
            remove_credentials(creds)
            raise
        try:
            cluster = self._connect(ledger)
        except (ClusterError, ConfigError):
            _detached.stop(ledger, self._stop_grace)
            raise
        entry = _Entry(cluster_id, cluster, ledger, options)
        with self._lock:
            self._entries[entry.id] = entry
        return self._info(entry)

    def list(self) -> builtins.list[ClusterInfo]:
        self._sync()
        with self._lock:
            entries = sorted(self._entries.values(), key=lambda e: e.created)
        own = [self._info(e) for e in entries]
        return own + [self._other_info(e) for e in self._others()]

    def get(self, cluster_id: str) -> ClusterInfo:
        self._sync_unless_held(cluster_id)
        entry, other = self._find(cluster_id)
        return self._info(entry) if entry is not None else self._other_info(other)

    def patch(self, cluster_id: str, patch: ClusterPatch) -> ClusterInfo:
        from lepton_nb.cluster import _detached

        self._sync_unless_held(cluster_id)
        entry, other = self._find(cluster_id)
        if entry is None:
            if other.origin == "server":
                raise ClusterError(
                    f"cluster {cluster_id} is orphaned (a process of it lives but its scheduler "
                    "does not answer); stop it (DELETE) and launch a new one"
                )
            raise ClusterError(
                f"cluster {cluster_id} belongs to {other.owner or f'process {other.pid}'}; "
                "scale it from there (cluster.scale / cluster.adapt); the sidebar can only stop it"
            )
        self._require_open(entry)
        # A gateway cluster is resized through its gateway by any of its handles; the others
        # by the process that runs their scheduler.
        cluster, client = entry.cluster, entry.cluster.client
        if patch.adapt is not None:
            lo, hi = patch.adapt.minimum, patch.adapt.maximum
            if cluster.owned:
                cluster.adapt(minimum=lo, maximum=hi)
            else:
                _detached.adapt(client, cluster_id, lo, hi)
            entry.options["adapt"] = patch.adapt.model_dump()
        else:
            assert patch.n_workers is not None  # guaranteed by ClusterPatch
            if cluster.owned:
                cluster.scale(patch.n_workers)
            else:
                _detached.scale(client, cluster_id, patch.n_workers)
            entry.options.pop("adapt", None)
            entry.options["n_workers"] = patch.n_workers
        return self._info(entry)

    def stop(self, cluster_id: str) -> ClusterInfo:
        from lepton_nb.cluster import _detached, _ledger

        self._sync_unless_held(cluster_id)
        entry, other = self._find(cluster_id)
        if entry is None:
            if other.origin != "server":
                return self._stop_foreign(other)
            info = self._other_info(other)
            _detached.stop(other, self._stop_grace)
            return info.model_copy(update={"status": "closed"})
        with self._lock:
            self._entries.pop(cluster_id, None)
        info = self._info(entry)
        entry.cluster.close()  # the Client; the cluster's own process closes the cluster
        _detached.stop(_ledger.read(cluster_id) or entry.ledger, self._stop_grace)
        return info.model_copy(update={"status": "closed", "workers": [], "n_workers": 0})

    def close_all(self) -> None:
        """At server exit: drop the Clients; the clusters keep running (the next server lists
        them re-attached) unless ``stop_on_exit``."""
        from lepton_nb.cluster import _detached, _ledger

        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            entry.cluster.close()
            if self._stop_on_exit:
                _detached.stop(_ledger.read(entry.id) or entry.ledger, self._stop_grace)

    # -- finding clusters again ------------------------------------------------------------
    def _sync(self) -> None:
        """Drop Clients whose cluster is gone; re-attach to server clusters of the ledger."""
        from lepton_nb.cluster import _ledger

        with self._sync_lock:
            with self._lock:
                entries = list(self._entries.values())
            for e in entries:
                if e.cluster.closed or e.cluster.client.status != "running":
                    with self._lock:
                        self._entries.pop(e.id, None)
                    e.cluster.close()  # alive: listed orphaned from the ledger below
            now = time.monotonic()
            for le in _ledger.entries():  # prunes entries none of whose processes live
                if le.origin != "server" or not le.processes or self._held(le.id):
                    continue
                if now - self._unanswered.get(le.id, -1e9) < _ORPHAN_RECHECK_S:
                    continue
                try:
                    cluster = self._connect(le)
                except (ClusterError, ConfigError):
                    self._unanswered[le.id] = now
                    continue
                self._unanswered.pop(le.id, None)
                with self._lock:
                    self._entries[le.id] = _Entry(
                        le.id, cluster, le, dict(le.options), "re-attached", le.created
                    )

    def _sync_unless_held(self, cluster_id: str) -> None:
        # a cluster with a Client needs no look through the ledger (which may wait on orphans)
        if not self._held(cluster_id):
            self._sync()

    def _held(self, cluster_id: str) -> bool:
        with self._lock:
            return cluster_id in self._entries

    @staticmethod
    def _connect(ledger: Any) -> Any:
        """A Client to the cluster of ``ledger``, with the credentials its kind needs: the
        cluster's own TLS folder, else its profile's (a remote scheduler's keys, a gateway)."""
        from lepton_nb.cluster._launch import connect, profile_security
        from lepton_nb.cluster._profiles import get_profile

        profile = ledger.options.get("profile")
        settings = get_profile(profile) if profile and not ledger.credentials else {}
        if ledger.kind == "gateway" and ledger.name:
            from lepton_nb.cluster._gateway import attach_gateway

            # closing this handle leaves the gateway cluster running: its process owns it
            return attach_gateway(settings, ledger.name, f"profile {profile!r}")
        cluster = connect(
            ledger.scheduler_address,
            security=profile_security(settings),
            credentials=ledger.credentials,
            timeout=_CONNECT_TIMEOUT_S,
        )
        cluster.kind = ledger.kind
        return cluster

    def _others(self) -> builtins.list[Any]:
        """Ledger entries this server holds no Client for: other processes', and orphans."""
        from lepton_nb.cluster import _ledger

        return [e for e in _ledger.entries() if not self._held(e.id)]

    def _find(self, cluster_id: str) -> tuple[_Entry | None, Any]:
        with self._lock:
            entry = self._entries.get(cluster_id)
        if entry is not None:
            return entry, None
        other = next((e for e in self._others() if e.id == cluster_id), None)
        if other is None:
            raise self._missing(cluster_id)
        return None, other

    def _other_info(self, e: Any) -> ClusterInfo:
        orphan = e.origin == "server"  # a server cluster without a Client: no answer
        creds = e.credentials
        return ClusterInfo(
            id=e.id,
            kind=e.kind,
            status="running",
            state="orphaned" if orphan else "running",
            scheduler_address=e.scheduler_address,
            dashboard_link=e.dashboard_link,
            dashboard_proxy=_proxy(e.id, e.dashboard_link),
            created=e.created,
            origin=e.origin,
            owner=e.owner,
            pid=e.pid,
            pids=[p.pid for p in e.processes],
            options=dict(e.options),
            secure=e.scheduler_address.startswith("tls://"),
            credentials=creds,
            connect_code=connect_code(e.scheduler_address, creds),
        )

    def _stop_foreign(self, e: Any) -> ClusterInfo:
        from distributed import Client

        from lepton_nb.cluster import _ledger
        from lepton_nb.cluster._tls import security_from

        security = None
        if e.scheduler_address.startswith("tls://"):
            if not e.credentials:
                raise ClusterError(
                    f"cluster {e.id} uses TLS and {e.owner or f'process {e.pid}'} did not record "
                    "its credentials (keys kept in memory); stop it from there (cluster.close())"
                )
            try:
                security = security_from(e.credentials)
            except ConfigError as err:
                raise ClusterError(f"cannot stop cluster {e.id}: {err}") from err
        try:
            with Client(e.scheduler_address, security=security, timeout=10) as client:
                client.shutdown()  # the scheduler and its workers
        except (OSError, TimeoutError) as err:
            raise ClusterError(
                f"could not reach cluster {e.id} at {e.scheduler_address} to stop it: {err}"
            ) from err
        _ledger.forget(e.id)
        _ledger.remove_runtime_credentials(e.credentials)  # its owner may never get to it
        return self._other_info(e).model_copy(update={"status": "closed"})

    # -- helpers ---------------------------------------------------------------------------
    def _missing(self, cluster_id: str) -> NotFoundError:
        with self._lock:
            known = ", ".join(sorted(self._entries)) or "none"
        return NotFoundError(
            f"no cluster {cluster_id!r} in this server (running: {known}); "
            "list them with GET lepton/api/clusters"
        )

    def _entry(self, cluster_id: str) -> _Entry:
        with self._lock:
            entry = self._entries.get(cluster_id)
        if entry is None:
            raise self._missing(cluster_id)
        return entry

    @staticmethod
    def _require_open(entry: _Entry) -> None:
        if entry.cluster.closed:
            raise ClusterError(
                f"cluster {entry.id} is closed; stop it (DELETE) and launch a new one"
            )

    @staticmethod
    def _info(entry: _Entry) -> ClusterInfo:
        c, le = entry.cluster, entry.ledger
        common: dict[str, Any] = dict(
            id=entry.id,
            kind=le.kind,
            options=entry.options,
            created=entry.created,
            state=entry.state,
            owner=le.owner,
            pid=le.pid,
            pids=[p.pid for p in le.processes],
        )
        if c.closed:
            return ClusterInfo(status="closed", **common)
        try:
            workers = [WorkerInfo(**w) for w in c.workers]
            address = c.scheduler_address
        except (OSError, TimeoutError, ClusterError):
            # its scheduler went away since the last look: the next list sorts it out
            return ClusterInfo(status="closed", **common)
        return ClusterInfo(
            status="running",
            scheduler_address=address,
            dashboard_link=le.dashboard_link,
            dashboard_proxy=_proxy(entry.id, le.dashboard_link),
            n_workers=len(workers),
            threads=sum(w.nthreads or 0 for w in workers),
            memory=sum(w.memory_limit or 0 for w in workers),
            gpus=sum(1 for w in workers if w.gpu_name),
            workers=workers,
            secure=str(address).startswith("tls://"),
            credentials=str(entry.credentials) if entry.credentials else None,
            connect_code=connect_code(address, entry.credentials),
            **common,
        )


__all__ = ["ClusterManager", "State", "connect_code"]
