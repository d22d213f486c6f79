"""cluster/_client.py against a real 2-worker cluster: the one client_of, live_workers and
worker_address that training, sweeps and compression share."""

from __future__ import annotations

from typing import Any

import pytest
from distributed import Client

from lepton_nb.cluster._client import client_of, live_workers, worker_address
from lepton_nb.errors import ClusterError, ConfigError

pytestmark = pytest.mark.integration


def test_a_cluster_or_a_client_gives_its_client(cluster2: Any) -> None:
    assert client_of(cluster2) is cluster2.client
    assert client_of(cluster2.client) is cluster2.client
    assert client_of(None) is None  # callers read None as "in this process"
    with pytest.raises(ConfigError, match=r"lepton_nb Cluster or a distributed.Client, got str"):
        client_of("tcp://127.0.0.1:8786")
    other = Client(cluster2.scheduler_address, set_as_default=False)
    other.close()
    with pytest.raises(ClusterError, match="closed"):
        client_of(other)


def test_live_workers_and_worker_address(cluster2: Any) -> None:
    client = cluster2.client
    workers = live_workers(client)
    assert set(workers) == {w["address"] for w in cluster2.workers} and len(workers) == 2
    assert all("nthreads" in w for w in workers.values())
    for address in workers:
        ran_on = client.submit(worker_address, workers=[address], pure=False).result(timeout=60)
        assert ran_on == address
    assert worker_address() == "local"
