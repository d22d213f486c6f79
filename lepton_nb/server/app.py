"""The extension app: builds the managers from :class:`LeptonSettings` and adds the routes."""

from __future__ import annotations

import atexit
from concurrent.futures import ThreadPoolExecutor

from jupyter_server.extension.application import ExtensionApp

from lepton_nb.server.clusters import ClusterManager
from lepton_nb.server.jobs import JobManager
from lepton_nb.server.schedules import ScheduleManager
from lepton_nb.server.settings import LeptonSettings, load_settings


class LeptonApp(ExtensionApp):
    name = "lepton_nb"
    load_other_extensions = True
    classes = [LeptonSettings]

    def initialize_settings(self) -> None:
        settings = load_settings(self.config)
        # TLS credentials of launched clusters go to the user's runtime dir (0600 files)
        self.clusters = ClusterManager(
            runtime_dir=self.serverapp.runtime_dir,  # type: ignore[union-attr]
            stop_on_exit=settings.stop_clusters_on_exit,
        )
        self.jobs = JobManager(self.serverapp.root_dir, settings)  # type: ignore[union-attr]
        self.jobs.recover()
        self.schedules = ScheduleManager(self.jobs)
        self.schedules.start()
        # A separate pool: a slow cluster launch must not starve the server's own executor.
        self.pool = ThreadPoolExecutor(settings.pool_threads, thread_name_prefix="lepton-api")
        self.settings.update(
            lepton_clusters=self.clusters,
            lepton_jobs=self.jobs,
            lepton_schedules=self.schedules,
            lepton_pool=self.pool,
            lepton_settings=settings,
        )
        # Drop the clusters' Clients (and stop them if so configured) however the server exits.
        atexit.register(self._close)
        self.log.info(
            "lepton_nb: max_parallel_jobs=%d, store=%s",
            settings.max_parallel_jobs,
            self.jobs.store.path,
        )

    def initialize_handlers(self) -> None:
        from lepton_nb.server._routes import routes

        self.handlers.extend(routes("/"))

    def _close(self) -> None:
        if getattr(self, "_closed", False):
            return
        self._closed = True
        self.schedules.shutdown()
        self.clusters.close_all()
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def stop_extension(self) -> None:
        self._close()


__all__ = ["LeptonApp"]
