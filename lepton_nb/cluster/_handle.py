"""The Cluster handle: one object for a launched or connected Dask cluster."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_nb.cluster._client import live_workers
from lepton_nb.cluster._worker_gpus import worker_gpus
from lepton_nb.errors import ClusterError, ConfigError

if TYPE_CHECKING:
    from distributed import Client
    from distributed.deploy import Cluster as DaskCluster


def raise_beyond_devices(e: ValueError, n: int | None) -> None:
    """dask-cuda refuses more workers than visible GPUs with a bare ``ValueError("Can not
    scale beyond visible devices", [devices])``; say it in the user's terms."""
    if not e.args or "scale beyond visible devices" not in str(e.args[0]):
        return
    devices = e.args[1] if len(e.args) > 1 else "?"
    raise ConfigError(
        f"{n} GPU workers asked for, but LocalCUDACluster runs one worker per visible GPU and "
        f"only these are visible: {devices} (CUDA_VISIBLE_DEVICES="
        f"{os.environ.get('CUDA_VISIBLE_DEVICES')!r}); ask for at most that many workers, or "
        "make more GPUs visible"
    ) from e


class Cluster:
    """A Dask cluster with its client.

    Launch one with :func:`lepton_nb.launch_cluster` or attach to a running scheduler with
    :func:`lepton_nb.connect`.  Use it as a context manager to close it (and, if lepton_nb
    launched it, its workers) at the end.
    """

    def __init__(
        self,
        client: Client,
        cluster: DaskCluster | Any | None = None,  # any manager with scale/close
        kind: str = "remote",
        gpu: bool | None = None,
        name: str | None = None,
    ) -> None:
        self._client: Client | None = client
        self._cluster = cluster
        self.kind = kind
        self.gpu = gpu
        self.name = name  # a dask-gateway cluster's name (connect("gateway://.../<name>"))
        self.ledger_id: str | None = None  # its entry in the per-user cluster ledger
        # TLS key/cert folder clients need (launch_cluster(secure=True / credentials=...));
        # ``owned_credentials`` is removed on close (lepton_nb made it in the runtime dir)
        self.credentials: Path | None = None
        self.owned_credentials: Path | None = None

    # -- state -----------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._client is None or self._client.status in ("closed", "closing")

    @property
    def client(self) -> Client:
        if self._client is None or self.closed:
            raise ClusterError(
                "this cluster is closed; launch a new one with lepton_nb.launch_cluster() "
                "or connect again with lepton_nb.connect(address)"
            )
        return self._client

    @property
    def owned(self) -> bool:
        """True when lepton_nb started the workers (so it may scale and stop them)."""
        return self._cluster is not None

    @property
    def scheduler_address(self) -> str:
        rpc = self.client.scheduler
        if rpc is None:  # a client not yet started has no scheduler rpc
            raise ClusterError("the client is not connected to a scheduler yet")
        return str(rpc.address)

    @property
    def dashboard_link(self) -> str | None:
        # The manager knows the public link (a gateway's proxy URL, a jobqueue's host), the
        # client only the scheduler's own view of it.
        link = getattr(self._cluster, "dashboard_link", None)
        if isinstance(link, str) and link:
            return link
        try:
            return str(self.client.dashboard_link)
        except (KeyError, AttributeError):  # scheduler without a dashboard
            return None

    @property
    def workers(self) -> list[dict[str, Any]]:
        """One dict per worker: address, host, name, nthreads, memory_limit and GPU fields."""
        client = self.client
        info = live_workers(client)
        # asked from the workers: nanny-started GPU workers register without their GPU
        gpus = worker_gpus(client, info)
        rows = []
        for addr, w in sorted(info.items()):
            own = (gpus.get(addr) or {}).get("gpus") or [{}]
            cc = own[0].get("compute_capability")
            rows.append(
                {
                    "address": addr,
                    "host": w.get("host"),
                    "name": str(w.get("name")),
                    "nthreads": w.get("nthreads"),
                    "memory_limit": w.get("memory_limit"),
                    "gpu_name": own[0].get("name"),
                    "gpu_memory": own[0].get("memory_bytes"),
                    "gpu_capability": None if cc is None else f"{cc[0]}.{cc[1]}",
                    "gpu_count": len((gpus.get(addr) or {}).get("gpus") or []),
                }
            )
        return rows

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        try:
            self.client.wait_for_workers(n, timeout=timeout)
        except TimeoutError as e:
            raise ClusterError(
                f"only {len(self.workers)} of {n} workers arrived within {timeout} s; "
                "check the workers' logs or lower n"
            ) from e

    # -- control ---------------------------------------------------------------------------
    def _owned_cluster(self, action: str) -> DaskCluster:
        if self._cluster is None:
            raise ClusterError(
                f"cannot {action} a cluster you connected to at {self.scheduler_address}; "
                "scale it with the tool that started it (dask CLI, dask-kubernetes, "
                "dask-jobqueue, dask-gateway), or pass that cluster object to connect()"
            )
        return self._cluster

    def scale(self, n: int) -> None:
        if not isinstance(n, int) or n < 0:
            raise ConfigError(f"scale(n) needs a whole number of workers >= 0, got {n!r}")
        cluster = self._owned_cluster("scale")
        try:
            cluster.scale(n)
        except ValueError as e:
            raise_beyond_devices(e, n)
            raise

    def adapt(self, minimum: int = 0, maximum: int = 4, **kwargs: Any) -> None:
        if minimum < 0 or maximum < minimum:
            raise ConfigError(
                f"adapt needs 0 <= minimum <= maximum, got minimum={minimum}, maximum={maximum}"
            )
        self._owned_cluster("adapt").adapt(minimum=minimum, maximum=maximum, **kwargs)

    def close(self) -> None:
        """Close the client and, if lepton_nb launched it, the scheduler and workers.  (A
        gateway cluster re-attached by name keeps running: use :meth:`shutdown`.)"""
        client, self._client = self._client, None
        if self._cluster is not None:
            from lepton_nb.cluster._ledger import forget

            forget(getattr(self, "ledger_id", None))
        if client is not None:
            client.close()
        if self._cluster is not None:
            self._cluster.close()
        if self.owned_credentials is not None:
            from lepton_nb.cluster._tls import remove_credentials

            remove_credentials(self.owned_credentials)

    def shutdown(self) -> None:
        """Stop the cluster for good, even one re-attached by name, then close the handle."""
        stop = getattr(self._cluster, "shutdown", None)
        if callable(stop):
            client, self._client = self._client, None
            if client is not None:
                client.close()
            stop()
            return
        self._owned_cluster("shut down")
        self.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- display ---------------------------------------------------------------------------
    def __repr__(self) -> str:
        if self.closed:
            return f"<lepton_nb.Cluster kind={self.kind} closed>"
        named = f" name={self.name}" if self.name else ""
        return (
            f"<lepton_nb.Cluster kind={self.kind}{named} scheduler={self.scheduler_address} "
            f"workers={len(self.workers)}>"
        )

    def _repr_html_(self) -> str:
        if self.closed:
            return "<b>lepton_nb cluster</b> (closed)"
        from lepton_nb.widgets._cluster_table import workers_table_html

        link = self.dashboard_link
        dash = (
            f'<a href="{html.escape(link)}" target="_blank">{html.escape(link)}</a>'
            if link
            else "-"
        )
        return (
            f"<div><b>lepton_nb cluster</b> ({html.escape(self.kind)}) &middot; scheduler "
            f"<code>{html.escape(self.scheduler_address)}</code> &middot; dashboard {dash}"
            f"{workers_table_html(self.workers)}</div>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # A live widget while a frontend is attached, and an HTML table that survives saving.
        bundle: dict[str, Any] = {"text/plain": repr(self), "text/html": self._repr_html_()}
        if not self.closed:
            from lepton_nb.widgets.cluster import ClusterWidget

            widget_bundle = ClusterWidget(self)._repr_mimebundle_() or {}
            widget_bundle.pop("text/plain", None)
            bundle.update(widget_bundle)
        return bundle


__all__ = ["Cluster", "raise_beyond_devices"]
