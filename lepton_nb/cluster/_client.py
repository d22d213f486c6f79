"""Two small jobs every consumer of a cluster needs: get its Client, and ask for its workers.

Training, sweeps, compression and the widgets all accept "a lepton_nb Cluster or a
distributed.Client"; :func:`client_of` is the one place that turns either into a Client (with
one error for anything else).  :func:`live_workers` is the one place that asks the scheduler
for its workers, :func:`worker_address` the one place a task asks which worker it runs on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, overload

from lepton_nb.errors import ClusterError, ConfigError

if TYPE_CHECKING:
    from distributed import Client


@overload
def client_of(cluster: None) -> None: ...
@overload
def client_of(cluster: Any) -> Client: ...
def client_of(cluster: Any) -> Client | None:
    """The ``distributed.Client`` of a lepton_nb ``Cluster``, or the Client itself; ``None``
    stays ``None`` (callers read it as "in this process").  Raises :class:`ConfigError` for
    anything else and :class:`ClusterError` when the client is closed."""
    if cluster is None:
        return None
    # a Client has submit; a Cluster has .client (which raises itself once closed)
    client = cluster if hasattr(cluster, "submit") else getattr(cluster, "client", None)
    if client is None or not hasattr(client, "submit"):
        raise ConfigError(
            f"cluster must be a lepton_nb Cluster or a distributed.Client, got "
            f"{type(cluster).__name__}; pass ln.launch_cluster(...) or ln.connect(address)"
        )
    if getattr(client, "status", "running") in ("closed", "closing"):
        raise ClusterError("the cluster's client is closed; launch or connect a new cluster")
    return client


def live_workers(client: Any) -> dict[str, dict[str, Any]]:
    """``{address: identity entry}`` of the scheduler's workers, asked now.

    Not ``client.scheduler_info()``: that returns a cache which the client's periodic refresh
    overwrites with a totals-only copy (no per-worker entries), so live workers can look lost.
    """
    rpc = client.scheduler
    if rpc is None:  # a client not yet started has no scheduler rpc
        raise ClusterError("the client is not connected to a scheduler yet")
    info = client.sync(rpc.identity, n_workers=-1)
    return dict(info["workers"])


def worker_address() -> str:
    """The address of the Dask worker running the calling task, or ``"local"`` outside one
    (rows of measurements say where they were measured)."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):  # ValueError: not inside a worker's task
        return "local"


__all__ = ["client_of", "live_workers", "worker_address"]
