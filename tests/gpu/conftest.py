"""GPU tests: every module here sets ``pytestmark = pytest.mark.gpu``, so they are skipped
where no NVIDIA GPU is visible (tests/conftest.py).  They need dask-cuda
(``pip install 'lepton-nb[gpu]'``); ``python benchmarks/gpu_check.py`` installs it and runs the
same checks with figures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def gpu_cluster() -> Iterator[Any]:
    """A LocalCUDACluster with one worker per visible GPU."""
    import lepton_nb as ln

    n = len(ln.cluster.detect_gpus())
    cluster = ln.launch_cluster(
        n_workers=n, threads_per_worker=1, gpu=True, dashboard_address="127.0.0.1:0"
    )
    cluster.wait_for_workers(n)
    try:
        yield cluster
    finally:
        cluster.close()
