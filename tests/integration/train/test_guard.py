"""The rank guard on a real scheduler, without training: the adaptive scaler's choice never
takes a run below its min_workers, and a retirement of a rank holder waits until the run has
re-formed its world without that worker (issue 13)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import lepton_nb as ln
from lepton_nb.train import _guard

pytestmark = pytest.mark.integration


def _offered(client: Any) -> set[str]:
    """The workers the scheduler would let ``adapt`` close if it wanted to close them all."""
    return set(
        client.run_on_scheduler(
            lambda dask_scheduler: dask_scheduler.workers_to_close(n=len(dask_scheduler.workers))
        )
    )


def test_guard_limits_adapt_and_defers_retirement_to_the_new_world() -> None:
    cluster = ln.launch_cluster(
        n_workers=3, threads_per_worker=1, gpu=False, dashboard_address="127.0.0.1:0"
    )
    cluster.wait_for_workers(3)
    client = cluster.client
    try:
        a, b, c = sorted(client.scheduler_info(n_workers=-1)["workers"])
        assert _offered(client) == {a, b, c}
        assert _guard.install(client) and _guard.install(client)  # idempotent
        _guard.hold(client, "run1", [a, b], min_workers=1)  # rank 0 on a, rank 1 on b
        assert _offered(client) == {b, c}  # one of the run's two workers may go: the high rank
        _guard.hold(client, "run1", [a, b], min_workers=2)
        assert _offered(client) == {c}

        done: list[Any] = []
        t = threading.Thread(
            target=lambda: done.append(client.retire_workers([b], close_workers=True))
        )
        t.start()
        deadline = time.monotonic() + 30
        while _guard.retiring(client, "run1") != {b}:
            assert time.monotonic() < deadline, "the retirement was not held for the run"
            time.sleep(0.1)
        time.sleep(1.0)
        assert not done and b in client.scheduler_info(n_workers=-1)["workers"]

        _guard.hold(client, "run1", [a], min_workers=1)  # the run re-formed without b
        t.join(timeout=60)
        assert not t.is_alive() and b in done[0]
        assert b not in client.scheduler_info(n_workers=-1)["workers"]
        assert _guard.retiring(client, "run1") == set()

        _guard.release(client, "run1")
        assert _offered(client) == {a, c}
    finally:
        cluster.close()
