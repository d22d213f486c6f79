"""GPU training: one GPU per worker, nccl, AMP.  Skipped without an NVIDIA GPU."""

from __future__ import annotations

from typing import Any

import pytest

from lepton_nb import datasets
from lepton_nb.models import LeNet5
from lepton_nb.train import fit, run

pytestmark = [pytest.mark.integration, pytest.mark.gpu]


def _device_info(ctx: Any) -> dict[str, Any]:
    import torch
    import torch.distributed as dist

    dist.init_process_group("nccl")
    backend = dist.get_backend()
    t = torch.ones(1, device=ctx.device)
    dist.all_reduce(t)
    dist.destroy_process_group()
    return {
        "device": str(ctx.device),
        "uuid": str(torch.cuda.get_device_properties(ctx.device).uuid),
        "backend": backend,
        "sum": t.item(),
    }


def test_one_gpu_per_worker_with_nccl(gpu_cluster: Any) -> None:
    out = run(_device_info, cluster=gpu_cluster)
    assert all(o["backend"] == "nccl" and o["device"].startswith("cuda") for o in out)
    assert len({o["uuid"] for o in out}) == len(out)  # every rank its own GPU
    assert all(o["sum"] == len(out) for o in out)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_ddp_amp_on_gpus(gpu_cluster: Any, precision: str) -> None:
    split = datasets.mnist()
    res = fit(
        LeNet5,
        split.train,
        split.test,
        cluster=gpu_cluster,
        epochs=3,
        lr=2e-3,
        precision=precision,
        progress=False,
    )
    assert res.metrics["val_accuracy"] >= 0.95
