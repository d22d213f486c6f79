"""GPU facts come from the workers themselves: a nanny-started worker registers without its GPU
(its startup information is copied before NVML is initialised), so the Cluster's worker table,
the server and fit's GPU checks ask the workers.  Here the worker's NVML is the fake one."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from lepton_nb.cluster import _worker_gpus

pytestmark = pytest.mark.integration


@pytest.fixture
def one_worker(launch_cluster2: Any) -> Iterator[Any]:
    with launch_cluster2(1) as c:
        yield c
    _worker_gpus._CACHE.clear()


def test_worker_table_asks_the_workers(
    one_worker: Any, fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = one_worker.client
    client.run(exec, fake_nvml.INSTALL, {"SOURCE": fake_nvml.SOURCE})
    client.run(exec, "import os; os.environ['CUDA_VISIBLE_DEVICES'] = '2,0'", {})
    registered = client.sync(client.scheduler.identity, n_workers=-1)["workers"]
    assert not any(w.get("gpu") for w in registered.values())  # what the scheduler says
    [row] = one_worker.workers
    assert row["gpu_name"] == "NVIDIA H100 80GB HBM3"  # the worker's cuda:0 is NVML's GPU 2
    assert row["gpu_memory"] == 80 * 2**30
    assert row["gpu_capability"] == "9.0" and row["gpu_count"] == 2
    info = _worker_gpus.worker_gpus(client)
    assert [v["visible"] for v in info.values()] == ["2,0"]
    assert _worker_gpus.all_have_gpus(info)
