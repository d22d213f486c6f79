"""GPU-motivated behaviour that real CPU clusters can show: validation on every rank of a
group (nothing rank-0-only while peers wait in a collective), fp16 refused for the parameter
server, and a rank that hit a sticky CUDA error retried in a fresh worker process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import TensorDataset

from lepton_nb.errors import ConfigError
from lepton_nb.train import fit, run
from lepton_nb.train._common import evaluate
from lepton_nb.train.config import FitConfig, resolve_loss

pytestmark = pytest.mark.integration


def _val_setup() -> tuple[Any, Any]:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(101, 6, generator=g), torch.randint(0, 3, (101,), generator=g))
    torch.manual_seed(1)
    return torch.nn.Linear(6, 3), data


def _sharded_validation(ctx: Any) -> dict[str, Any]:
    import torch.distributed as dist

    dist.init_process_group("gloo")
    model, data = _val_setup()
    try:
        return evaluate(model, data, resolve_loss("cross_entropy"), FitConfig(), ctx.device)
    finally:
        dist.destroy_process_group()


def test_validation_on_every_rank_equals_one_rank(cluster2: Any) -> None:
    model, data = _val_setup()
    whole = evaluate(model, data, resolve_loss("cross_entropy"), FitConfig(), torch.device("cpu"))
    per_rank = run(_sharded_validation, cluster=cluster2)
    assert len(per_rank) == 2
    for m in per_rank:  # 101 samples split 51/50, sums all-reduced: the single-rank figures
        assert m["val_accuracy"] == whole["val_accuracy"]
        assert m["val_loss"] == pytest.approx(whole["val_loss"], rel=1e-6)


_SET_CVD = "import os; os.environ['CUDA_VISIBLE_DEVICES'] = '{}'"


def test_dask_cuda_rotation_read_from_the_workers(cluster2: Any) -> None:
    """The driver learns each worker's CUDA_VISIBLE_DEVICES from the worker itself: rotated
    lists (dask-cuda) mean "your GPU is cuda:0", one shared list means "spread by local rank"."""
    from lepton_nb.cluster import _worker_gpus
    from lepton_nb.train import _driver as driver
    from lepton_nb.train import _rendezvous as rendezvous

    client = cluster2.client
    workers = driver.workers_of(client)
    placed = rendezvous.plan(workers, 2)
    try:
        for (addr, *_), cvd in zip(placed, ["0,1", "1,0"], strict=True):
            client.run(exec, _SET_CVD.format(cvd), {}, workers=[addr])
        _worker_gpus._CACHE.clear()
        assert set(driver._own_gpu_first(client, workers, placed).values()) == {True}
        client.run(exec, _SET_CVD.format("0,1"), {})
        _worker_gpus._CACHE.clear()
        assert set(driver._own_gpu_first(client, workers, placed).values()) == {False}
    finally:
        client.run(exec, "import os; os.environ.pop('CUDA_VISIBLE_DEVICES', None)", {})
        _worker_gpus._CACHE.clear()


def test_parameter_server_refuses_fp16(cluster2: Any) -> None:
    data = TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,)))
    with pytest.raises(
        ConfigError,
        match=r"'ps-sync' does not support precision='fp16'.*no "
        r"loss scaling",
    ):
        fit(
            torch.nn.Linear(4, 2),
            data,
            cluster=cluster2,
            strategy="ps-sync",
            precision="fp16",
            progress=False,
        )


@pytest.fixture
def one_worker(launch_cluster2: Any) -> Iterator[Any]:
    with launch_cluster2(1) as c:
        yield c


def _poisoned_once(folder: str, ctx: Any) -> int:
    marker = Path(folder) / f"pid-{ctx.attempt}"
    marker.write_text(str(os.getpid()))
    if ctx.attempt == 0:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")
    return os.getpid()


def test_sticky_cuda_error_retries_in_a_fresh_worker(one_worker: Any, tmp_path: Path) -> None:
    # in the worker's own thread (a rank process would be fresh per attempt anyway)
    out = run(
        partial(_poisoned_once, str(tmp_path)),
        cluster=one_worker,
        max_restarts=1,
        rank_process=False,
    )
    first = int((tmp_path / "pid-0").read_text())
    assert out[0] != first  # the worker process that held the poisoned context was replaced
    assert (out.history["kind"] == "restart").sum() == 1
