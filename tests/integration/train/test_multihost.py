"""DDP across "hosts": scheduler and two workers in separate network namespaces (veth pairs on
a bridge), so every rank has its own address and MASTER_ADDR is a real remote address.

The hosts are the ``hosts`` fixture of tests/integration/conftest.py (root, ``ip netns`` and
``unshare``; skipped with the reason otherwise).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from lepton_nb import datasets
from lepton_nb.models import LeNet5
from lepton_nb.train import fit

pytestmark = pytest.mark.integration


def test_ddp_across_network_namespaces(hosts: Any) -> None:
    import lepton_nb as ln

    worker_ips = hosts.worker_ips
    cluster = ln.connect(hosts.scheduler)
    try:
        cluster.wait_for_workers(2, timeout=90)
        seen = sorted(w["host"] for w in cluster.workers)
        assert seen == sorted(worker_ips)  # distinct addresses, one per "host"
        split = datasets.mnist()
        res = fit(
            LeNet5,
            split.train,
            split.test,
            cluster=cluster,
            epochs=2,
            batch_size=64,
            lr=2e-3,
            progress=False,
        )
        assert res.metrics["world_size"] == 2
        assert res.metrics["val_accuracy"] >= 0.9
        envs: Any = cluster.client.run(lambda: os.environ.get("GLOO_SOCKET_IFNAME"))
        assert envs  # reachable, and ranks restored the worker environment afterwards
    finally:
        cluster.close()
