"""DDP across "hosts": scheduler and two workers in separate network namespaces (veth pairs on
a bridge), so every rank has its own address and MASTER_ADDR is a real remote address.

Needs root and ``ip netns``; skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from lepton_nb import datasets
from lepton_nb.models import LeNet5
from lepton_nb.train import fit

pytestmark = pytest.mark.integration

SUBNET = "10.231.77"


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def _can_netns() -> str | None:
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"lnprobe{uuid.uuid4().hex[:6]}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@pytest.fixture
def netns_cluster() -> Iterator[tuple[str, list[str]]]:
    reason = _can_netns()
    if reason:
        pytest.skip(reason)
    tag = uuid.uuid4().hex[:4]
    br = f"lnbr{tag}"
    names = [f"ln{tag}{i}" for i in range(3)]  # scheduler, worker a, worker b
    procs: list[subprocess.Popen[bytes]] = []
    try:
        _sh("ip", "link", "add", br, "type", "bridge")
        _sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", br)
        _sh("ip", "link", "set", br, "up")
        for i, ns in enumerate(names):
            ip = f"{SUBNET}.{i + 2}"
            _sh("ip", "netns", "add", ns)
            _sh("ip", "link", "add", f"v{tag}{i}", "type", "veth", "peer", "name", f"p{tag}{i}")
            _sh("ip", "link", "set", f"v{tag}{i}", "master", br)
            _sh("ip", "link", "set", f"v{tag}{i}", "up")
            _sh("ip", "link", "set", f"p{tag}{i}", "netns", ns)
            _sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", f"p{tag}{i}")
            _sh("ip", "-n", ns, "link", "set", f"p{tag}{i}", "up")
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
        sched = f"tcp://{SUBNET}.2:8786"
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", names[0], sys.executable, "-m",
             "distributed.cli.dask_scheduler",
             "--host", f"{SUBNET}.2", "--port", "8786", "--dashboard-address", ":0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(2)
        workers = []
        for i in (1, 2):
            ip = f"{SUBNET}.{i + 2}"
            workers.append(ip)
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", names[i], sys.executable, "-m",
                 "distributed.cli.dask_worker", sched, "--host", ip, "--nthreads", "1",
                 "--nworkers", "1", "--no-dashboard"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield sched, workers
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", br], capture_output=True)


def test_ddp_across_network_namespaces(netns_cluster: tuple[str, list[str]]) -> None:
    import lepton_nb as ln

    sched, worker_ips = netns_cluster
    cluster = ln.connect(sched)
    try:
        cluster.wait_for_workers(2, timeout=90)
        hosts = sorted(w["host"] for w in cluster.workers)
        assert hosts == sorted(worker_ips)  # distinct addresses, one per "host"
        split = datasets.mnist()
        res = fit(LeNet5, split.train, split.test, cluster=cluster, epochs=2, batch_size=64,
                  lr=2e-3, progress=False)
        assert res.metrics["world_size"] == 2
        assert res.metrics["val_accuracy"] >= 0.9
        envs: Any = cluster.client.run(lambda: os.environ.get("GLOO_SOCKET_IFNAME"))
        assert envs  # reachable, and ranks restored the worker environment afterwards
    finally:
        cluster.close()
