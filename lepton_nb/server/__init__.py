"""Jupyter server extension: the ``lepton/api`` REST API for clusters, jobs and schedules.

Loaded automatically when lepton_nb is installed (jupyter-config enables it) as the
:class:`~lepton_nb.server.app.LeptonApp` extension app; its settings are
:class:`~lepton_nb.server.settings.LeptonSettings` (``c.LeptonSettings.max_parallel_jobs = 4``).
Clusters launched here run in detached processes of their own and outlive the server unless
``stop_clusters_on_exit`` is set (lepton_nb/server/clusters.py); jobs run in a detached runner
process and survive it too (lepton_nb/server/jobs.py).
"""

from __future__ import annotations

from typing import Any

from lepton_nb.server.app import LeptonApp
from lepton_nb.server.clusters import ClusterManager
from lepton_nb.server.jobs import JobManager
from lepton_nb.server.schedules import ScheduleManager
from lepton_nb.server.settings import LeptonSettings


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "lepton_nb.server", "app": LeptonApp}]


__all__ = ["ClusterManager", "JobManager", "LeptonApp", "LeptonSettings", "ScheduleManager"]
