"""Shared fixtures: a real 2-worker cluster and an isolated LEPTON_HOME."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest


def _has_gpu() -> bool:
    from lepton_nb.cluster import detect_gpus

    return bool(detect_gpus())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _has_gpu():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU; none found (NVML / nvidia-smi)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cluster2() -> Iterator[object]:
    """A real LocalCluster of 2 worker processes with 1 thread each (don't kill its workers)."""
    import lepton_nb as ln

    cluster = ln.launch_cluster(
        n_workers=2, threads_per_worker=1, gpu=False, dashboard_address="127.0.0.1:0"
    )
    cluster.wait_for_workers(2)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "lepton-home"
    home.mkdir()
    monkeypatch.setenv("LEPTON_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    return path
