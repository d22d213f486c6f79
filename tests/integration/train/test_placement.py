"""The rank placement record in the scheduler's metadata, on a real cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, Event

from lepton_nb.errors import ConfigError
from lepton_nb.train import Callback, _placement, run


def _run_id() -> str:
    return "test-" + uuid.uuid4().hex[:8]


def test_publish_is_seen_by_another_client_and_clear_removes_it(cluster2: Any) -> None:
    a, b = sorted(w["address"] for w in cluster2.workers)
    run = _run_id()
    _placement.publish(cluster2.client, run, {a: 0, b: 1})
    # another kernel's client of the same scheduler (what a second ClusterWidget holds)
    with Client(cluster2.scheduler_address) as other:
        seen = _placement.ranks_by_worker(other)
    assert (run, 0) in seen[a] and (run, 1) in seen[b]
    # a worker the scheduler no longer has is not listed; a second run is listed next to it
    run2 = _run_id()
    _placement.publish(cluster2.client, run2, {a: 1, "tcp://127.0.0.1:9": 0})
    seen = _placement.ranks_by_worker(cluster2.client)
    assert "tcp://127.0.0.1:9" not in seen
    assert sorted(r for r in seen[a] if r[0] in (run, run2)) == sorted([(run, 0), (run2, 1)])
    _placement.clear(cluster2.client, run)
    _placement.clear(cluster2.client, run2)
    seen = _placement.ranks_by_worker(cluster2.client)
    assert not any(r in (run, run2) for v in seen.values() for r, _ in v)


def test_bad_placements_are_refused(cluster2: Any) -> None:
    with pytest.raises(ConfigError, match="worker addresses"):
        _placement.publish(cluster2.client, _run_id(), {"tcp://a:1": -1})
    with pytest.raises(ConfigError, match="run_id"):
        _placement.publish(cluster2.client, "", {})


def test_clear_never_raises_once_the_scheduler_or_client_is_gone(tmp_path: Path) -> None:
    # its own scheduler process, killed under the client (a failed run's finally)
    file = tmp_path / "scheduler.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        client = Client(scheduler_file=str(file), timeout=30)
        _placement.publish(client, "r", {"tcp://127.0.0.1:9": 0})
        proc.kill()
        proc.wait()
        _placement.clear(client, "r")  # scheduler gone: no exception
        client.close(timeout=5)
        _placement.clear(client, "r")  # client closed: no exception
    finally:
        proc.kill()
        proc.wait()


def _hold_until_seen(ctx: Any) -> int:
    """A rank that reports one step, then waits until the client has looked at the record."""
    from distributed import Event

    ctx.report(step=1, loss=1.0)
    Event(f"seen-{ctx.run_id}").wait(timeout=60)
    return int(ctx.rank)


class SeePlacement(Callback):
    """Reads the placement record from the run's own thread while its ranks run."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.seen: dict[str, list[tuple[str, int]]] = {}

    def on_train_start(self, info: dict[str, Any]) -> None:
        self.run_id = info["run_id"]

    def on_events(self, events: list[dict[str, Any]]) -> None:
        if not self.seen and any(e.get("kind") == "step" for e in events):
            self.seen = _placement.ranks_by_worker(self.client)
            Event(f"seen-{self.run_id}", client=self.client).set()


def test_a_run_publishes_its_ranks_while_it_runs_and_clears_them(cluster2: Any) -> None:
    see = SeePlacement(cluster2.client)
    out = run(_hold_until_seen, cluster2, callbacks=[see], rank_process=False)
    assert sorted(out) == [0, 1]
    held = {rank: a for a, pairs in see.seen.items() for r, rank in pairs if r == see.run_id}
    assert sorted(held) == [0, 1] and held[0] != held[1], see.seen
    assert not any(
        r == see.run_id
        for pairs in _placement.ranks_by_worker(cluster2.client).values()
        for r, _ in pairs
    )
