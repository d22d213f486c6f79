"""Jupyter server extension: the ``lepton/api`` REST API for clusters and jobs.

Loaded automatically when lepton_nb is installed (jupyter-config enables it).  Clusters launched
here belong to the server process and are stopped when the server stops.
"""

from __future__ import annotations

import atexit
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lepton_nb.server.clusters import ClusterManager
from lepton_nb.server.jobs import JobManager


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from lepton_nb.server.handlers import routes

    web_app = serverapp.web_app
    clusters = ClusterManager()
    jobs = JobManager(serverapp.root_dir)
    # A separate pool: a slow cluster launch must not starve the server's own executor.
    pool = ThreadPoolExecutor(4, thread_name_prefix="lepton-api")
    web_app.settings.update(lepton_clusters=clusters, lepton_jobs=jobs, lepton_pool=pool)
    web_app.add_handlers(".*$", routes(web_app.settings["base_url"]))

    def _shutdown() -> None:
        clusters.close_all()
        jobs.shutdown()
        pool.shutdown(wait=False, cancel_futures=True)

    # Workers are child processes: stop them with the server, however it exits.
    atexit.register(_shutdown)
    serverapp.log.info(
        "lepton_nb server extension loaded: %slepton/api/", web_app.settings["base_url"]
    )


# Older servers look the loader up under this name.
load_jupyter_server_extension = _load_jupyter_server_extension

__all__ = ["ClusterManager", "JobManager", "_load_jupyter_server_extension"]
