"""Inside a job that runs on a profile's cluster: ``launch_cluster()`` attaches to that cluster.

The job runner gives the kernel ``LEPTON_PROFILE`` (the job's profile) and
``LEPTON_CLUSTER_ADDRESS`` (the scheduler the job runs on; see
:mod:`lepton_nb.jobs._oncluster`). A ``launch_cluster()`` that names no profile, or the job's
own, then connects to that scheduler instead of starting a second cluster, so a notebook written
as ``cluster = ln.launch_cluster()`` uses the cluster its job was scheduled on.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from lepton_nb.errors import ConfigError

if TYPE_CHECKING:
    from lepton_nb.cluster._handle import Cluster


def job_profile(profile: str | None) -> str | None:
    """``profile``, or the profile of the job this kernel runs in."""
    return profile if profile is not None else (os.environ.get("LEPTON_PROFILE") or None)


def job_cluster(profile: str | None) -> Cluster | None:
    """The cluster this job runs on when ``profile`` is the job's (else None)."""
    from lepton_nb.cluster._launch import connect, connect_profile
    from lepton_nb.cluster._profiles import get_profile

    address = os.environ.get("LEPTON_CLUSTER_ADDRESS")
    if not address or profile is None or profile != os.environ.get("LEPTON_PROFILE"):
        return None
    try:
        settings = get_profile(profile)
    except ConfigError:  # the worker's dask config need not define the runner's profiles
        settings = {}
    if settings.get("address") and settings.get("kind", "remote") == "remote":
        return connect_profile(settings)  # the same scheduler, with the profile's TLS files
    return connect(address)


__all__ = ["job_cluster", "job_profile"]
