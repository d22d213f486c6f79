"""connect() to a real `dask scheduler` + `dask worker` started as separate processes."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

import lepton_nb as ln
from lepton_nb.errors import ClusterError, ConfigError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def scheduler(free_port: Any, dask_cli: list[str]) -> Iterator[str]:
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    procs = [
        subprocess.Popen(
            [
                *dask_cli,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                "127.0.0.1:0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        procs.append(
            subprocess.Popen(
                [
                    *dask_cli,
                    "worker",
                    addr,
                    "--nthreads",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--no-dashboard",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        yield addr
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def test_connect_to_cli_scheduler(scheduler: str) -> None:
    with ln.connect(scheduler, timeout=20) as c:
        c.wait_for_workers(1, timeout=60)
        assert c.kind == "remote" and not c.owned
        assert c.scheduler_address == scheduler
        assert c.client.submit(pow, 2, 10).result() == 1024
        assert c.workers[0]["host"] == "127.0.0.1"
        with pytest.raises(ClusterError, match="cannot scale a cluster you connected to"):
            c.scale(2)
    # closing a connected cluster leaves the scheduler running
    with ln.connect(scheduler.removeprefix("tcp://"), timeout=20) as again:
        assert again.client.submit(abs, -3).result() == 3


@pytest.mark.parametrize("bad", ["localhost", "foo://h:1"])
def test_malformed_addresses(bad: str) -> None:
    with pytest.raises(ConfigError, match=bad.split(":")[0]):
        ln.connect(bad)


def test_unreachable_scheduler_fails_within_timeout(free_port: Any) -> None:
    addr = f"tcp://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with pytest.raises(ClusterError) as err:
        ln.connect(addr, timeout=2)
    assert time.monotonic() - t0 < 15
    assert addr in str(err.value) and "dask scheduler" in str(err.value)


def test_tls_address_needs_security() -> None:
    with pytest.raises(ConfigError, match=r"uses TLS: pass credentials=.*or security="):
        ln.connect("tls://127.0.0.1:1")
