"""Inside a job that runs on a profile's cluster: ``launch_cluster()`` attaches to that cluster.

The job runner gives the kernel ``LEPTON_PROFILE`` (the job's profile) and
``LEPTON_CLUSTER_ADDRESS`` (the scheduler the job runs on; see
:mod:`lepton_nb.jobs._oncluster`). A ``launch_cluster()`` that names no profile, or the job's
own, then connects to that scheduler instead of starting a second cluster, so a notebook written
as ``cluster = ln.launch_cluster()`` uses the cluster its job was scheduled on.
"""

from __future__ import annotations

import os


def job_profile(profile: str | None) -> str | None:
    """``profile``, or the profile of the job this kernel runs in."""
    return profile if profile is not None else (os.environ.get("LEPTON_PROFILE") or None)


def job_address(profile: str | None) -> str | None:
    """The scheduler this job runs on when ``profile`` is the job's (else None)."""
    address = os.environ.get("LEPTON_CLUSTER_ADDRESS")
    if not address or profile is None or profile != os.environ.get("LEPTON_PROFILE"):
        return None
    return address


__all__ = ["job_address", "job_profile"]
