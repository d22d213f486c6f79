"""Elastic fits on real LocalClusters and real gloo groups: grow, graceful retirement, losing
workers below min_workers, and adaptive scaling (issue 13).

Each test changes its cluster's size, so each has its own cluster; the model and data are small
(MLP on scikit-learn's digits) so a run takes seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lepton_nb as ln
from lepton_nb import datasets
from lepton_nb.errors import TrainingError
from lepton_nb.models import MLP
from lepton_nb.train import Callback, fit, run

pytestmark = pytest.mark.integration

KW: dict[str, Any] = dict(
    epochs=2,
    batch_size=64,
    lr=3e-3,
    log_every=1,
    checkpoint_every=5,
    progress=False,
    strategy="ddp",
)


def _mlp() -> Any:
    return MLP(in_features=64, hidden=32)


def _slow_while(world: int) -> Any:
    """Cross-entropy that sleeps 0.1 s a step while the world has ``world`` ranks, so the run
    is still going when the cluster changes (a worker takes seconds to start) and runs at
    full speed once it has."""

    def loss(out: Any, y: Any) -> Any:
        import torch.nn.functional as F

        if os.environ.get("WORLD_SIZE") == str(world):
            time.sleep(0.1)
        return F.cross_entropy(out, y)

    return loss


def _launch(n: int) -> Any:
    cluster = ln.launch_cluster(
        n_workers=n, threads_per_worker=1, gpu=False, dashboard_address="127.0.0.1:0"
    )
    cluster.wait_for_workers(n)
    return cluster


@pytest.fixture(scope="module")
def digits() -> Any:
    return datasets.digits()


class AtStep(Callback):
    """Calls ``action`` once, when rank 0 reports ``step`` in the first generation."""

    def __init__(self, step: int, action: Any) -> None:
        self.step, self.action, self.done = step, action, False

    def on_events(self, events: list[dict[str, Any]]) -> None:
        if self.done:
            return
        if any(
            e["kind"] == "step" and e["rank"] == 0 and e["attempt"] == 0 and e["step"] >= self.step
            for e in events
        ):
            self.done = True
            self.action(events)


def _steps(h: Any) -> list[int]:
    return sorted(int(s) for s in h[(h.kind == "step") & (h["rank"] == 0)].step)


def test_grow_from_one_to_two_workers(digits: Any, tmp_path: Path) -> None:
    cluster = _launch(1)
    try:
        grow = AtStep(3, lambda _: cluster.scale(2))
        res = fit(
            _mlp,
            digits.train,
            digits.test,
            cluster=cluster,
            min_workers=1,
            max_workers=2,
            checkpoint_dir=str(tmp_path),
            callbacks=[grow],
            loss=_slow_while(1),
            **{**KW, "epochs": 4},
        )
        h = res.history
        world = h[h.kind == "world"]
        assert len(world) == 1, world
        row = world.iloc[0]
        assert (row.old_size, row.new_size) == (1, 2)
        assert row.reason.startswith("worker joined: tcp://") and not row.restart
        after = h[(h.kind == "step") & (h.attempt == row.attempt)]
        assert set(after.world_size) == {2} and set(after["rank"]) == {0, 1}
        assert set(h[(h.kind == "step") & (h.attempt == 0)].world_size) == {1}
        assert res.metrics["restarts"] == 0 and res.metrics["world_size"] == 2
        # grown at a checkpoint boundary: no step redone, none lost
        steps = _steps(h)
        assert steps == list(range(1, res.metrics["steps"] + 1))
        assert int(row.step) % KW["checkpoint_every"] == 0 or int(row.step) % 23 == 0

        fixed = fit(
            _mlp,
            digits.train,
            digits.test,
            cluster=cluster,
            loss=_slow_while(1),
            **{**KW, "epochs": 4},
        )
        assert fixed.metrics["world_size"] == 2
        assert abs(res.metrics["val_accuracy"] - fixed.metrics["val_accuracy"]) <= 0.01
        assert res.metrics["steps"] == fixed.metrics["steps"]
    finally:
        cluster.close()


@pytest.mark.parametrize("strategy", ["ps-sync", "ps-async"])
def test_parameter_server_grows_at_the_next_step(
    digits: Any, tmp_path: Path, strategy: str
) -> None:
    cluster = _launch(1)
    try:
        grow = AtStep(3, lambda _: cluster.scale(2))
        res = fit(
            _mlp,
            digits.train,
            digits.test,
            cluster=cluster,
            min_workers=1,
            max_workers=2,
            checkpoint_dir=str(tmp_path),
            callbacks=[grow],
            loss=_slow_while(1),
            **{**KW, "strategy": strategy},
        )
        h = res.history
        world = h[h.kind == "world"]
        assert len(world) == 1 and (world.iloc[0].old_size, world.iloc[0].new_size) == (1, 2)
        assert world.iloc[0].reason.startswith("worker joined: tcp://")
        assert set(h[(h.kind == "step") & (h.attempt == 1)].world_size) == {2}
        assert res.metrics["restarts"] == 0 and res.metrics["world_size"] == 2
        if strategy == "ps-sync":  # one server version a step, none lost or redone
            assert _steps(h) == list(range(1, res.metrics["steps"] + 1))
            assert res.metrics["steps"] == 2 * 23
        assert res.metrics["val_accuracy"] > 0.8
    finally:
        cluster.close()


def test_graceful_retirement_continues_on_survivors(digits: Any, tmp_path: Path) -> None:
    cluster = _launch(3)
    client = cluster.client
    try:
        retired: list[str] = []

        def retire(events: list[dict[str, Any]]) -> None:
            victim = sorted(client.scheduler_info(n_workers=-1)["workers"])[-1]
            retired.append(victim)
            client.retire_workers([victim], close_workers=True, asynchronous=False)

        # retire_workers blocks until the ranks have left the worker: call it off the
        # thread that runs fit (which must keep watching the ranks)
        go = AtStep(4, lambda ev: threading.Thread(target=retire, args=(ev,)).start())
        res = fit(
            _mlp,
            digits.train,
            digits.test,
            cluster=cluster,
            min_workers=2,
            max_workers=3,
            checkpoint_dir=str(tmp_path),
            callbacks=[go],
            loss=_slow_while(3),
            **{**KW, "batch_size": 60},
        )
        h = res.history
        world = h[h.kind == "world"]
        assert len(world) == 1, world
        row = world.iloc[0]
        assert (row.old_size, row.new_size) == (3, 2)
        assert row.reason == f"worker retired: {retired[0]}"
        assert res.metrics["restarts"] == 0 and not (h.kind == "restart").any()
        # taken at a boundary: every step number once, none lost or redone
        assert _steps(h) == list(range(1, res.metrics["steps"] + 1))
        assert set(h[(h.kind == "step") & (h.attempt == row.attempt)].world_size) == {2}
        deadline = time.monotonic() + 30
        while retired[0] in client.scheduler_info(n_workers=-1)["workers"]:
            assert time.monotonic() < deadline, "the retirement never went through"
            time.sleep(0.2)

        # ln.run: each ctx.save_checkpoint is a boundary; train_fn runs again in the new world
        go = AtStep(3, lambda ev: threading.Thread(target=retire, args=(ev,)).start())
        out = run(
            _torch_loop,
            cluster,
            min_workers=1,
            checkpoint_dir=str(tmp_path / "run"),
            callbacks=[go],
        )
        assert out == [{"world": 1, "step": 30, "resumed": True}]
        h = out.history
        world = h[h.kind == "world"]
        assert len(world) == 1 and (world.iloc[0].old_size, world.iloc[0].new_size) == (2, 1)
        assert world.iloc[0].reason == f"worker retired: {retired[1]}"
        assert _steps(h) == list(range(1, 31))
    finally:
        cluster.close()


def _torch_loop(ctx: Any) -> dict[str, Any]:
    """A torchrun-style loop that checkpoints through ctx every 5 steps."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    state = ctx.load_checkpoint()
    step = 0 if state is None else int(state["step"])
    while step < 30:
        step += 1
        t = torch.ones(1)
        dist.all_reduce(t)
        ctx.report(step=step, loss=float(t))
        if dist.get_world_size() > 1:
            time.sleep(0.1)
        if step % 5 == 0:
            ctx.save_checkpoint({"step": torch.tensor(step)})
    return {"world": dist.get_world_size(), "step": step, "resumed": state is not None}


@pytest.fixture
def bare_workers(dask_cli: list[str]) -> Iterator[Any]:
    """A scheduler with worker processes started without nannies, so a killed worker stays
    dead; yields (client, start_worker)."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=":0")
    client = Client(cluster)
    procs: list[subprocess.Popen[bytes]] = []

    def start_worker() -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            [
                *dask_cli,
                "worker",
                cluster.scheduler_address,
                "--no-nanny",
                "--nthreads",
                "1",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
            ],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        procs.append(p)
        return p

    try:
        yield client, start_worker
    finally:
        for p in procs:
            p.kill()
            p.wait()
        client.close()
        cluster.close()


def test_below_min_workers_waits_then_fails_or_continues(
    digits: Any, tmp_path: Path, bare_workers: Any
) -> None:
    client, start_worker = bare_workers
    workers = [start_worker(), start_worker()]
    client.wait_for_workers(2)

    def kill_one(_: Any) -> None:
        os.kill(workers.pop().pid, signal.SIGKILL)

    t0 = time.monotonic()
    with pytest.raises(
        TrainingError,
        match=r"waited 2 s for at least min_workers=2 usable "
        r"worker\(s\) after worker lost: tcp://",
    ):
        fit(
            _mlp,
            digits.train,
            cluster=client,
            min_workers=2,
            wait_timeout_s=2,
            checkpoint_dir=str(tmp_path / "a"),
            callbacks=[AtStep(3, kill_one)],
            **KW,
        )
    assert time.monotonic() - t0 < 120

    # the same, but a worker joins while the run waits: it continues on 2 workers
    workers.append(start_worker())
    client.wait_for_workers(2)
    joiner: list[Any] = []

    def kill_and_add(_: Any) -> None:
        kill_one(_)
        joiner.append(start_worker())

    res = fit(
        _mlp,
        digits.train,
        cluster=client,
        min_workers=2,
        wait_timeout_s=120,
        checkpoint_dir=str(tmp_path / "b"),
        callbacks=[AtStep(3, kill_and_add)],
        **KW,
    )
    h = res.history
    world = h[h.kind == "world"]
    assert len(world) == 1 and world.iloc[0].reason.startswith("worker lost: tcp://")
    assert (world.iloc[0].old_size, world.iloc[0].new_size) == (2, 2)
    assert res.metrics["restarts"] == 0 and res.metrics["world_size"] == 2
    assert res.metrics["steps"] == 2 * 23  # 1,437 samples, 64 a step


def test_adaptive_scaler_never_kills_a_rank(digits: Any, tmp_path: Path) -> None:
    """distributed 2026.7's ``workers_to_close`` offers no worker while every worker is
    processing, and the rank guard offers none of a run's workers below its ``min_workers``
    and defers the retirement of any other to the ranks' next boundary; so the adaptive
    scaler, live during the whole fit (it shrinks the cluster once the fit is done), never
    takes a worker from under a rank: no lost worker, no restart, no step lost or redone."""
    cluster = _launch(2)
    client = cluster.client
    try:
        # adaptive from the moment both ranks train (an idle cluster would shrink at once)
        adapt = AtStep(
            1, lambda _: cluster.adapt(minimum=1, maximum=2, interval="100ms", wait_count=1)
        )
        res = fit(
            _mlp,
            digits.train,
            digits.test,
            cluster=cluster,
            min_workers=2,
            max_workers=2,
            checkpoint_dir=str(tmp_path),
            callbacks=[adapt],
            loss=_slow_while(2),
            **KW,
        )
        h = res.history
        assert res.metrics["restarts"] == 0 and not (h.kind == "world").any()
        assert set(h[h.kind == "step"].world_size) == {2}
        assert _steps(h) == list(range(1, res.metrics["steps"] + 1))
        deadline = time.monotonic() + 60  # the scaler was live: idle now, it shrinks
        while len(client.scheduler_info(n_workers=-1)["workers"]) > 1:
            assert time.monotonic() < deadline, "the adaptive scaler never acted"
            time.sleep(0.2)
    finally:
        cluster.close()
