"""A real dask-gateway-server (local backend, simple password) started on loopback: launch
through a profile, scale, train with DDP, list and re-attach by name, shut down; bad
credentials and an unreachable gateway fail within seconds."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask.config
import psutil
import pytest
from torch.utils.data import Subset

import lepton_nb as ln
from lepton_nb import datasets
from lepton_nb.errors import ClusterError, LeptonError, NotFoundError
from lepton_nb.models import LeNet5

pytestmark = pytest.mark.integration
PASSWORD = "s3cret-for-tests"


def _free_ports(n: int) -> list[int]:
    """n distinct free ports (held open together: one at a time, the kernel often hands the
    same port out twice)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dask-gateway-server exited:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"dask-gateway-server did not listen on {port}:\n{log.read_text()[-3000:]}")


def _wait_routed(address: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """The proxy answers 404 until it has fetched its routes from the private API."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{address}/api/health", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:  # HTTPError (404 before routing) and connection errors
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(f"the gateway proxy never routed /api/health:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A dask-gateway-server: private API and proxy on free loopback ports; clients and the
    clusters' schedulers talk to the proxy (HTTP and scheduler traffic share its port)."""
    if shutil.which("dask-gateway-server") is None:
        pytest.skip("dask-gateway-server is not installed (pip install 'lepton-nb[dev]')")
    root = tmp_path_factory.mktemp("gateway")
    api, proxy, unused = _free_ports(3)
    config = root / "dask_gateway_config.py"
    config.write_text(
        f'c.DaskGateway.address = "127.0.0.1:{api}"\n'
        f'c.Proxy.address = "127.0.0.1:{proxy}"\n'
        "c.DaskGateway.backend_class = "
        '"dask_gateway_server.backends.local.UnsafeLocalBackend"\n'
        'c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"\n'
        f'c.SimpleAuthenticator.password = "{PASSWORD}"\n'
        'c.LocalClusterConfig.scheduler_cmd = ["dask", "scheduler"]\n'
        'c.LocalClusterConfig.worker_cmd = ["dask", "worker"]\n'
        'c.LocalClusterConfig.worker_memory = "1 G"\n'
        "c.LocalClusterConfig.worker_threads = 1\n"
        "c.LocalBackend.sigint_timeout = 3\n"
        "c.LocalBackend.sigterm_timeout = 2\n"
        f'c.LocalBackend.clusters_directory = "{root / "clusters"}"\n'
    )
    log = root / "gateway.log"
    with open(log, "wb") as out:
        # its own session: the proxy binary it starts is killed with it if it will not stop
        proc = subprocess.Popen(
            [sys.executable, "-m", "dask_gateway_server", "-f", str(config)],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_port(proxy, proc, log)
        _wait_port(api, proc, log)
        address = f"http://127.0.0.1:{proxy}"
        _wait_routed(address, proc, log)
        profiles = {
            "gw": {
                "kind": "gateway",
                "address": address,
                "description": "test gateway",
                "auth": {"type": "basic", "username": "alice", "password": PASSWORD},
            },
            "gw-wrong": {
                "kind": "gateway",
                "address": address,
                "auth": {"type": "basic", "username": "alice", "password": "nope"},
            },
            "gw-down": {
                "kind": "gateway",
                "address": f"http://127.0.0.1:{unused}",
                "timeout": 3,
                "auth": {"type": "basic", "password": PASSWORD},
            },
        }
        with dask.config.set({"lepton.profiles": profiles}):
            yield address
    finally:
        proc.terminate()  # the gateway stops its clusters' processes on SIGTERM
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _small_mnist() -> tuple[Any, Any]:
    split = datasets.mnist()
    return Subset(split.train, range(512)), Subset(split.test, range(256))


def test_gateway_launch_scale_fit_list_reattach_shutdown(gateway: str) -> None:
    t0 = time.perf_counter()
    cluster = ln.launch_cluster(profile="gw")
    address = cluster.scheduler_address
    try:
        assert cluster.kind == "gateway" and cluster.owned and cluster.name
        assert cluster.scheduler_address == f"gateway://{gateway[7:]}/{cluster.name}"
        assert cluster.dashboard_link.startswith(f"{gateway}/clusters/{cluster.name}")
        cluster.scale(2)
        cluster.wait_for_workers(2, timeout=120)
        print(f"gateway launch + 2 workers: {time.perf_counter() - t0:.1f} s")
        assert len(cluster.workers) == 2

        train, val = _small_mnist()
        res = ln.fit(
            LeNet5,
            train,
            val,
            cluster=cluster,
            epochs=1,
            batch_size=64,
            strategy="ddp",
            progress=False,
        )
        assert res.metrics["world_size"] == 2 and res.metrics["steps"] > 0
        assert set(res.history[res.history.kind == "step"]["rank"]) == {0, 1}
        print(f"fit done: {time.perf_counter() - t0:.1f} s")

        listed = {c["name"]: c for c in ln.clusters(profile="gw")}
        assert listed[cluster.name]["status"] == "running"
        assert listed[cluster.name]["address"] == cluster.scheduler_address

        again = ln.connect(listed[cluster.name]["address"])  # credentials from profile "gw"
        assert again.kind == "gateway" and again.name == cluster.name
        assert len(again.workers) == 2
        again.close()  # re-attached: closing the handle leaves the cluster running
        assert cluster.name in {c["name"] for c in ln.clusters(profile="gw")}
        assert cluster.client.submit(sum, [1, 2]).result() == 3

        cluster.adapt(minimum=1, maximum=2)
        again = ln.connect(cluster.scheduler_address, profile="gw")
        print(f"before shutdown: {time.perf_counter() - t0:.1f} s")
        again.shutdown()
    finally:
        cluster.close()
    print(f"after shutdown: {time.perf_counter() - t0:.1f} s")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        running = [c for c in ln.clusters(profile="gw") if c["status"] in ("pending", "running")]
        if not running:
            break
        time.sleep(0.5)
    assert running == []
    with pytest.raises(NotFoundError, match=f"no running gateway cluster named '{cluster.name}'"):
        ln.connect(address)


def test_wrong_password_is_refused_within_seconds(gateway: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(ClusterError, match=r"refused the credentials \(HTTP 401\)") as err:
        ln.launch_cluster(profile="gw-wrong")
    assert isinstance(err.value, LeptonError)
    assert time.perf_counter() - t0 < 30
    with pytest.raises(ClusterError, match="refused the credentials"):
        ln.clusters(profile="gw-wrong")


def test_unreachable_gateway_fails_within_seconds(gateway: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(ClusterError, match=r"no dask-gateway answers at http://127.0.0.1:"):
        ln.launch_cluster(profile="gw-down")
    assert time.perf_counter() - t0 < 30


def test_a_sidebar_gateway_cluster_runs_detached_and_is_found_again(
    gateway: str, tmp_home: Path
) -> None:
    """Issue 15: the server's launch runs in its own process; a new server (here: a new
    manager) re-attaches by name, resizes it through the gateway and stops it."""
    from lepton_nb.server._models import ClusterPatch, LaunchRequest
    from lepton_nb.server.clusters import ClusterManager

    info = ClusterManager(runtime_dir=tmp_home).launch(LaunchRequest(profile="gw"))
    try:
        assert info.kind == "gateway" and info.state == "running" and len(info.pids) == 1
        assert info.credentials is None  # the gateway's own TLS, from the profile
        again = ClusterManager(runtime_dir=tmp_home)  # the server restarted
        (found,) = again.list()
        assert (found.id, found.state) == (info.id, "re-attached")
        again.patch(info.id, ClusterPatch(n_workers=1))
        again._entry(info.id).cluster.wait_for_workers(1, timeout=120)
        assert again.get(info.id).n_workers == 1
    finally:
        stopped = ClusterManager(runtime_dir=tmp_home).stop(info.id)
    assert stopped.status == "closed" and not psutil.pid_exists(info.pids[0])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        running = [c for c in ln.clusters(profile="gw") if c["status"] in ("pending", "running")]
        if not running:
            break
        time.sleep(0.5)
    assert running == []  # its process shut the gateway cluster down
