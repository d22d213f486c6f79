"""connect() to a real `dask scheduler` + `dask worker` started as separate processes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

import lepton_nb as ln
from lepton_nb.errors import ClusterError, ConfigError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def scheduler(dask_processes: Any) -> Iterator[str]:
    with dask_processes() as (address, _):
        yield address


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
