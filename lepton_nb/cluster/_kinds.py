"""The ``CLUSTER_KINDS`` registry: how each kind of cluster is started from a launch spec.

A kind is a function ``LaunchSpec -> Cluster``.  ``local`` and ``local-cuda`` start processes on
this machine; ``remote`` attaches to a running scheduler; ``factory`` builds any Dask cluster
manager class (dask-jobqueue, dask-kubernetes, ...); ``gateway`` asks a dask-gateway server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lepton_nb._registry import Registry

if TYPE_CHECKING:
    from lepton_nb.cluster._handle import Cluster


@dataclass
class LaunchSpec:
    """What ``launch_cluster`` resolved from its arguments and the profile."""

    n_workers: int | None = None
    threads_per_worker: int | None = None
    memory_limit: str | float | None = "auto"
    host: str = "127.0.0.1"
    dashboard_address: str = "127.0.0.1:8787"
    security: Any = None
    profile: dict[str, Any] = field(default_factory=dict)
    profile_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def where(self) -> str:
        """How to name this launch in an error message."""
        return f"profile {self.profile_name!r}" if self.profile_name else "launch_cluster()"


@dataclass(frozen=True)
class ClusterKind:
    launch: Callable[[LaunchSpec], Cluster]
    # local kinds start processes here and choose CPU/GPU; the others leave that to their
    # deployment (queue, pod spec, gateway options)
    local: bool = False
    description: str = ""


CLUSTER_KINDS: Registry[ClusterKind] = Registry("cluster kind")

__all__ = ["CLUSTER_KINDS", "ClusterKind", "LaunchSpec"]
