"""Recovery: a worker process killed mid-fit, and a rank that always fails.

These tests kill workers, so they launch their own cluster instead of the shared one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import torch.nn.functional as F

from lepton_nb import datasets
from lepton_nb.errors import TrainingError
from lepton_nb.models import LeNet5
from lepton_nb.train import fit, run

pytestmark = pytest.mark.integration


@pytest.fixture
def own_cluster(launch_cluster2: Any) -> Iterator[Any]:
    with launch_cluster2() as cluster:
        yield cluster


def test_killed_worker_recovers(own_cluster: Any, kill_worker_at: Any, tmp_path: Path) -> None:
    split = datasets.mnist()
    kw: dict[str, Any] = dict(
        epochs=3, batch_size=64, lr=2e-3, log_every=5, checkpoint_every=20, progress=False
    )
    killer = kill_worker_at(own_cluster.client, step=80)  # rank 1's worker
    res = fit(
        LeNet5,
        split.train,
        split.test,
        cluster=own_cluster,
        strategy="ddp",
        checkpoint_dir=tmp_path,
        callbacks=[killer],
        **kw,
    )
    assert killer.killed_at is not None and killer.restart_seen_at is not None
    latency = killer.restart_seen_at - killer.killed_at
    print(f"loss detected and restart marked {latency:.2f} s after SIGKILL")
    assert latency < 10, "fit must notice a dead worker within seconds"
    h = res.history
    restarts = h[h.kind == "restart"]
    assert len(restarts) == 1 and res.metrics["restarts"] == 1
    assert "lost worker" in restarts.reason.iloc[0] or "failed" in restarts.reason.iloc[0]
    # resumed from a checkpoint written before the kill (every 20 steps), and the history
    # marks the jump back: steps never silently go backwards
    resumed = int(restarts.step.iloc[0])
    reached = int(h[(h.kind == "step") & (h.attempt == 0)].step.max())
    assert 60 <= resumed <= reached and reached - resumed < 60
    assert resumed % 20 == 0 or resumed % 63 == 0  # every 20 steps, and at each epoch's end
    after = h[(h.kind == "step") & (h.attempt == 1)]
    assert after.step.min() > resumed and res.metrics["steps"] == 3 * 63
    assert not psutil.pid_exists(killer.pid) or psutil.Process(killer.pid).status() == "zombie"

    baseline = fit(LeNet5, split.train, split.test, cluster=own_cluster, strategy="ddp", **kw)
    assert abs(res.metrics["val_accuracy"] - baseline.metrics["val_accuracy"]) <= 0.01


def _always_fails(outputs: Any, targets: Any) -> Any:
    if os.environ.get("RANK") == "1":
        raise ValueError("rank 1 is broken")
    return F.cross_entropy(outputs, targets)


def _ranks_and_workers(root: psutil.Process) -> tuple[set[int], set[int]]:
    """(processes other than the workers' fork servers, the fork servers' children)."""
    procs = root.children(recursive=True)
    zygotes = [p for p in procs if "lepton_nb.train._child" in " ".join(p.cmdline())]
    forked = {c.pid for z in zygotes for c in z.children()}
    return {p.pid for p in procs if p not in zygotes and p.pid not in forked}, forked


def test_rank_that_always_fails_raises_after_max_restarts(own_cluster: Any) -> None:
    split = datasets.digits()
    before, _ = _ranks_and_workers(psutil.Process())
    t0 = time.monotonic()
    with pytest.raises(TrainingError, match=r"after 1 restart.*rank 1 on worker tcp://.*broken"):
        fit(
            lambda: __import__("lepton_nb.models").models.MLP(in_features=64),
            split.train,
            cluster=own_cluster,
            loss=_always_fails,
            max_restarts=1,
            progress=False,
        )
    # the failed rank's process exits, so its healthy peer's collective fails at once (as
    # under torchrun), not at the 60 s collective timeout: two attempts would take >= 120 s
    assert time.monotonic() - t0 < 100
    # no rank tasks left running and no stray processes: the same workers as before, and no
    # rank process left behind (only each worker's idle fork server remains)
    time.sleep(0.5)
    assert not own_cluster.client.processing() or not any(own_cluster.client.processing().values())
    after, ranks_left = _ranks_and_workers(psutil.Process())
    assert after == before and not ranks_left
    assert len(own_cluster.client.nthreads()) == 2


def _torchrun_style(ctx: Any) -> dict[str, Any]:
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    t = torch.tensor([float(rank + 1)])
    dist.all_reduce(t)
    ctx.report(step=1, loss=float(rank))
    dist.destroy_process_group()
    return {
        "rank": rank,
        "world": world,
        "sum": t.item(),
        "local_rank": int(os.environ["LOCAL_RANK"]),
        "master": os.environ["MASTER_ADDR"],
    }


def test_run_torchrun_style(own_cluster: Any) -> None:
    out = run(_torchrun_style, cluster=own_cluster)
    assert [o["rank"] for o in out] == [0, 1]
    assert all(o["world"] == 2 and o["sum"] == 3.0 for o in out)
    assert sorted(o["local_rank"] for o in out) == [0, 1]  # both workers on one host
    assert out[0]["master"] == "127.0.0.1"
    assert sorted(out.history["rank"]) == [0, 1]
