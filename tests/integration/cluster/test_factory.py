"""The factory kind, live: a real Dask cluster manager class named in a profile
(distributed.LocalCluster; dask-jobqueue / dask-kubernetes take the same path)."""

from __future__ import annotations

import time

import dask.config
import pytest

import lepton_nb as ln
from lepton_nb.widgets.cluster import ClusterWidget

pytestmark = pytest.mark.integration


def test_factory_profile_scale_adapt_dashboard_widget_close() -> None:
    profile = {
        "kind": "factory",
        "module": "distributed",
        "class": "LocalCluster",
        "kwargs": {
            "n_workers": 1,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": "127.0.0.1:0",
        },
    }
    with dask.config.set({"lepton.profiles.lc": profile}):
        cluster = ln.launch_cluster(profile="lc")
    manager = cluster._cluster
    try:
        assert cluster.kind == "factory" and cluster.owned
        assert type(manager).__name__ == "LocalCluster"
        cluster.wait_for_workers(1)
        # everything goes through the manager object
        assert cluster.dashboard_link == manager.dashboard_link
        assert cluster.dashboard_link.startswith("http://127.0.0.1:")
        cluster.scale(2)
        cluster.wait_for_workers(2, timeout=60)
        assert len(cluster.workers) == 2 and len(manager.worker_spec) == 2
        widget = ClusterWidget(cluster, refresh_s=60)
        try:
            assert widget.workers_count == 2 and "factory cluster" in widget.header.value
            assert not widget.scale_button.disabled
            widget.n_workers.value = 1
            widget.scale_button.click()
            assert widget.status.value == ""
            deadline = time.monotonic() + 30
            while len(cluster.workers) != 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert len(cluster.workers) == 1
        finally:
            widget.close()
        cluster.adapt(minimum=1, maximum=2)
        assert manager._adaptive is not None
    finally:
        cluster.close()
    assert cluster.closed and manager.status.name == "closed"
