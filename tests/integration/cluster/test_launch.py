"""Real LocalClusters: launch, run work, scale, close, and what they listen on."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

import lepton_nb as ln
from lepton_nb.errors import ClusterError, ConfigError, GPUUnavailableError

pytestmark = pytest.mark.integration


def _listening(pids: set[int]) -> list[tuple[int, str, int]]:
    out = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            out.append((conn.pid, conn.laddr.ip, conn.laddr.port))
    return out


def test_launch_run_scale_close_all_on_loopback() -> None:
    me = psutil.Process()
    before = {c.pid for c in me.children(recursive=True)}
    cluster = ln.launch_cluster(n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0")
    try:
        cluster.wait_for_workers(2)
        assert cluster.kind == "local" and cluster.owned
        # work runs on every worker, in separate processes
        pids = cluster.client.run(os.getpid)
        assert len(set(pids.values())) == 2
        assert cluster.client.submit(sum, [1, 2, 3]).result() == 6
        workers = cluster.workers
        assert {w["address"] for w in workers} == set(pids)
        assert all(w["host"] == "127.0.0.1" and w["nthreads"] == 1 for w in workers)
        assert all(w["gpu_name"] is None for w in workers)
        assert cluster.dashboard_link and cluster.dashboard_link.startswith("http://127.0.0.1:")

        # scheduler (this process), nannies and workers (children) listen on loopback only
        pids_all = {me.pid} | {c.pid for c in me.children(recursive=True)} - before
        listening = _listening(pids_all)
        dash_port = int(cluster.dashboard_link.split(":")[2].split("/")[0])
        assert any(port == dash_port for _, _, port in listening), listening
        assert len(listening) >= 5, listening  # scheduler, dashboard, 2 nannies, 2 workers
        assert {ip for _, ip, _ in listening} == {"127.0.0.1"}, listening

        cluster.scale(3)
        cluster.wait_for_workers(3, timeout=60)
        assert len(cluster.workers) == 3
        cluster.scale(1)
        deadline = time.monotonic() + 30
        while len(cluster.workers) != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(cluster.workers) == 1
        cluster.adapt(minimum=1, maximum=2)
        with pytest.raises(ConfigError, match="0 <= minimum <= maximum"):
            cluster.adapt(minimum=3, maximum=1)
        with pytest.raises(ConfigError, match="whole number of workers"):
            cluster.scale(-1)
    finally:
        cluster.close()
    assert cluster.closed
    with pytest.raises(ClusterError, match="this cluster is closed"):
        cluster.client  # noqa: B018
    assert "closed" in repr(cluster)


def test_context_manager_and_gpu_fallback() -> None:
    if ln.cluster.detect_gpus():
        pytest.skip("this machine has a GPU")
    with ln.launch_cluster(n_workers=1, gpu="auto", dashboard_address="127.0.0.1:0") as c:
        assert c.kind == "local"
        client = c.client
    assert client.status == "closed"
    with pytest.raises(GPUUnavailableError):
        ln.launch_cluster(n_workers=1, gpu=True)


def test_bad_arguments_fail_before_starting() -> None:
    with pytest.raises(ConfigError, match="n_workers must be a whole number >= 1"):
        ln.launch_cluster(n_workers=0)
    with pytest.raises(ConfigError, match="unknown cluster profile"):
        ln.launch_cluster(profile="missing")


def test_profile_launch() -> None:
    import dask.config

    with dask.config.set(
        {
            "lepton.profiles.tiny": {
                "kind": "local",
                "n_workers": 1,
                "threads_per_worker": 1,
                "gpu": False,
            }
        }
    ):
        with ln.launch_cluster(profile="tiny", dashboard_address="127.0.0.1:0") as c:
            c.wait_for_workers(1)
            assert len(c.workers) == 1 and c.workers[0]["nthreads"] == 1


def test_secure_cluster_refuses_plain_tcp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from distributed import Client

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    with ln.launch_cluster(n_workers=1, secure=True, dashboard_address="127.0.0.1:0") as c:
        addr = c.scheduler_address
        assert addr.startswith("tls://127.0.0.1:")
        assert c.client.submit(lambda: 41 + 1).result() == 42
        t0 = time.monotonic()
        with pytest.raises((OSError, TimeoutError)):
            Client(addr.replace("tls://", "tcp://"), timeout=3)
        assert time.monotonic() - t0 < 30
        # the keys are in a 0700 folder of the runtime dir, so the Jupyter server can stop it
        creds = c.credentials
        assert creds is not None and creds.parent == tmp_path / "lepton-clusters"
        assert creds.stat().st_mode & 0o777 == 0o700
    assert not creds.exists()  # they go with the cluster


def test_cluster_widget_scales_and_shows_workers() -> None:
    from lepton_nb.widgets.cluster import ClusterWidget

    with ln.launch_cluster(n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0") as c:
        c.wait_for_workers(1)
        w = ClusterWidget(c, refresh_s=0.2)
        try:
            assert "1 workers" in w.header.value and "tcp://127.0.0.1:" in w.table.value
            w.n_workers.value = 2
            w.scale_button.click()
            c.wait_for_workers(2)
            deadline = time.monotonic() + 10
            while "2 workers" not in w.header.value and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "2 workers" in w.header.value  # the refresh thread saw the new worker
            bundle = c._repr_mimebundle_()
            assert "application/vnd.jupyter.widget-view+json" in bundle
            assert "lepton-workers" in bundle["text/html"]
        finally:
            w.close()


@pytest.mark.gpu
def test_gpu_cluster_one_gpu_per_worker() -> None:
    gpus = ln.cluster.detect_gpus()
    with ln.launch_cluster(gpu=True, dashboard_address="127.0.0.1:0") as c:
        c.wait_for_workers(len(gpus))
        assert c.kind == "local-cuda"
        workers = c.workers
        assert len(workers) == len(gpus)
        assert all(w["gpu_name"] and w["gpu_memory"] for w in workers)
