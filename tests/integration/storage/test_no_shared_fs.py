"""Hosts that share no file system: workers in their own network and mount namespaces (a
private tmpfs on /tmp each), checkpoints on an S3 server.  Losing rank 0's host resumes from
the last checkpoint at the URL on the surviving host, never from step 0."""

from __future__ import annotations

import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import pytest

import lepton_nb as ln
from lepton_nb import datasets
from lepton_nb.models import MLP
from lepton_nb.train import Callback, fit
from lepton_nb.train._driver import workers_of
from lepton_nb.train._resume import checkpoint_location

pytestmark = pytest.mark.integration


def paced_loss(outputs: Any, targets: Any) -> Any:
    """Cross-entropy that takes at least 10 ms a step, so the kill (triggered by metric events
    that arrive a little late) lands mid-run however fast the machine is."""
    import torch.nn.functional as F

    time.sleep(0.01)
    return F.cross_entropy(outputs, targets)


class LoseHostAt(Callback):
    """Kills every process of rank 0's host once rank 0 reports ``step``; notes when the first
    step after the restart arrives."""

    def __init__(self, hosts: Any, step: int) -> None:
        self.hosts, self.step = hosts, step
        self.killed_at: float | None = None
        self.first_after: float | None = None

    def on_events(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            if (
                self.killed_at is None
                and e["kind"] == "step"
                and e["rank"] == 0
                and e["step"] >= self.step
            ):
                ip = e["worker"].split("://")[1].rsplit(":", 1)[0]
                self.hosts.kill_host(ip)
                self.killed_at = time.monotonic()
            if self.first_after is None and e["kind"] == "step" and e.get("attempt", 0) > 0:
                self.first_after = time.monotonic()


def test_remote_sweep_is_watched_and_cancelled_through_dask(
    hosts: Any, tmp_home: Path, tmp_path: Path, make_nb: Any
) -> None:
    import os
    import threading

    from lepton_nb import jobs

    nb = make_nb(
        "slow.ipynb",
        "import lepton_nb as ln\nln.record('y', x * 2)",
        "import time\nif x == 2:\n    time.sleep(300)",
        params="x = 1",
    )
    cluster = ln.connect(hosts.scheduler)
    out: dict[str, Any] = {}
    try:
        cluster.wait_for_workers(2, timeout=90)
        t = threading.Thread(
            target=lambda: out.update(
                df=jobs.sweep(
                    nb, {"x": [1, 2]}, cluster=cluster, output_dir=tmp_path / "outs", progress=False
                )
            )
        )
        t.start()
        deadline = time.monotonic() + 120
        slow = None
        while time.monotonic() < deadline and t.is_alive():
            slow = next((r for r in jobs.list() if r.parameters == {"x": 2}), None)
            # the worker can write nothing into our store: these came through Dask events
            if slow and slow.status == "running" and slow.progress.get("cell") == 4:
                break
            time.sleep(0.3)
        assert slow is not None and slow.status == "running", slow
        assert slow.progress == {"cell": 4, "cells": 4} and slow.heartbeat
        assert slow.host != "" and slow.pid not in (None, os.getpid())
        cancelled = jobs.cancel(slow.id, wait=60)
        assert cancelled.status == "cancelled"
        t.join(timeout=60)
        df = out["df"]
        assert list(df.status) == ["succeeded", "cancelled"] and df.y.iloc[0] == 2
        assert Path(df.output.iloc[0]).parent == tmp_path / "outs"  # came back as bytes
    finally:
        cluster.close()


# runs last: it loses one of the module's two hosts
def test_lost_rank0_host_resumes_from_s3_checkpoint(hosts: Any, tmp_path: Path) -> None:
    cluster = ln.connect(hosts.scheduler)
    try:
        cluster.wait_for_workers(2, timeout=90)
        assert sorted(w["host"] for w in cluster.workers) == sorted(hosts.worker_ips)
        # a local checkpoint_dir is private to each host here: fit says so, once
        with pytest.warns(UserWarning, match="restarts from step 0.*s3://"):
            checkpoint_location(str(tmp_path), None, workers_of(cluster.client))
        # nothing of the client's /tmp is visible on the workers
        seen = cluster.client.run(lambda p: __import__("os").path.exists(p), str(tmp_path))
        assert not any(seen.values())

        split = datasets.digits()
        every = 10
        url = f"s3://{hosts.bucket}/{uuid.uuid4().hex[:8]}"
        lose = LoseHostAt(hosts, step=25)
        # 90 small steps per epoch: the kill lands mid-run even when events arrive late
        res = fit(
            partial(MLP, in_features=64, hidden=32),
            split.train,
            split.test,
            cluster=cluster,
            epochs=2,
            batch_size=16,
            lr=2e-3,
            log_every=1,
            loss=paced_loss,
            checkpoint_every=every,
            checkpoint_dir=url,
            storage_options=hosts.storage_options,
            replace_timeout_s=2,
            progress=False,
            callbacks=[lose],
        )
        h = res.history
        restart = h[h.kind == "restart"]
        assert lose.killed_at is not None and len(restart) == 1
        resumed = int(restart.step.iloc[0])
        reached = int(h[(h.kind == "step") & (h.attempt == 0)].step.max())
        # the last checkpoint's step (every 10 steps and at each epoch's end), never 0
        assert resumed >= 20 and (resumed % every == 0 or resumed % 90 == 0)
        assert reached - resumed <= every  # steps lost
        after = h[(h.kind == "step") & (h.attempt == 1)]
        assert after.step.min() == resumed + 1
        # the run finished on the surviving host: world_size is the final world's size
        assert res.metrics["world_size"] == 1 and len(cluster.client.nthreads()) == 1
        assert set(after.world_size.dropna()) == {1}
        assert lose.first_after is not None
        print(
            f"host lost -> first step after resume: {lose.first_after - lose.killed_at:.2f} s;"
            f" resumed at {resumed}, lost {reached - resumed} steps"
        )
    finally:
        cluster.close()
