"""Issue 19's GPU paths on real GPUs (the CPU-side logic is unit-tested with fakes in
tests/unit/{cluster,train,compress}).  Skipped without an NVIDIA GPU."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch

import lepton_nb as ln
from lepton_nb import datasets
from lepton_nb.errors import ConfigError
from lepton_nb.models import LeNet5
from lepton_nb.train import choose_precision, fit, run

pytestmark = [pytest.mark.integration, pytest.mark.gpu]


def test_gpu_workers_report_their_gpu(gpu_cluster: Any) -> None:  # item 1
    rows = gpu_cluster.workers
    assert rows and all(r["gpu_name"] and r["gpu_memory"] for r in rows)
    assert all(r["gpu_capability"] for r in rows)


def _torchrun_device(ctx: Any) -> dict[str, Any]:
    import torch.distributed as dist

    local = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local)  # what torchrun-style code does
    dist.init_process_group("nccl")
    t = torch.ones(1, device="cuda")
    dist.all_reduce(t)
    dist.destroy_process_group()
    return {
        "local": local,
        "uuid": str(torch.cuda.get_device_properties(local).uuid),
        "ctx_device": str(ctx.device),
        "sum": t.item(),
        "async": os.environ.get("TORCH_NCCL_ASYNC_ERROR_HANDLING"),
    }


def test_local_rank_is_the_workers_own_gpu(gpu_cluster: Any) -> None:  # item 2
    out = run(_torchrun_device, cluster=gpu_cluster)
    assert all(o["local"] == 0 and o["ctx_device"] == "cuda:0" for o in out)  # dask-cuda
    assert len({o["uuid"] for o in out}) == len(out)  # no "Duplicate GPU detected"
    assert all(o["sum"] == len(out) for o in out)


def test_shared_visible_devices_spread_ranks() -> None:  # item 3
    n = len(ln.cluster.detect_gpus())
    if n < 2:
        pytest.skip("needs 2 GPUs")
    # plain worker processes that all see every GPU (dask worker --nworkers N in SLURM)
    with ln.launch_cluster(
        n_workers=2, threads_per_worker=1, gpu=False, dashboard_address="127.0.0.1:0"
    ) as c:
        c.wait_for_workers(2)
        out = run(_torchrun_device, cluster=c)
    assert sorted(o["local"] for o in out) == [0, 1]
    assert len({o["uuid"] for o in out}) == 2


def _nccl_settings(ctx: Any) -> dict[str, Any]:
    return {k: os.environ.get(k) for k in ("TORCH_NCCL_ASYNC_ERROR_HANDLING", "NCCL_SOCKET_IFNAME")}


def test_nccl_fit_validates_on_every_rank(gpu_cluster: Any) -> None:  # item 4
    split = datasets.mnist()
    res = fit(
        LeNet5, split.train, split.test, cluster=gpu_cluster, epochs=1, lr=2e-3, progress=False
    )
    assert res.metrics["val_accuracy"] > 0.8
    epochs = res.history[res.history["kind"] == "epoch"]
    assert list(epochs["rank"]) == [0]  # one epoch event, though every rank validated


def test_parameter_server_refuses_fp16(gpu_cluster: Any) -> None:  # item 6
    split = datasets.mnist()
    with pytest.raises(ConfigError, match="no loss scaling"):
        fit(LeNet5, split.train, cluster=gpu_cluster, strategy="ps-sync", precision="fp16")


def _device_assert_once(folder: str, ctx: Any) -> int:
    Path(folder, f"pid-{ctx.attempt}").write_text(str(os.getpid()))
    if ctx.attempt == 0:
        idx = torch.tensor([10], device=ctx.device)
        torch.zeros(2, device=ctx.device)[idx].sum().item()  # device-side assert: sticky
    return int(torch.ones(3, device=ctx.device).sum().item())


def test_sticky_cuda_error_gets_a_fresh_worker(gpu_cluster: Any, tmp_path: Path) -> None:
    out = run(
        partial(_device_assert_once, str(tmp_path)),
        cluster=gpu_cluster,
        n_workers=1,
        max_restarts=1,
    )  # item 7
    assert out[0] == 3
    assert (tmp_path / "pid-0").read_text() != (tmp_path / "pid-1").read_text()


def test_samples_per_s_matches_the_wall_clock(gpu_cluster: Any) -> None:  # item 8
    split = datasets.mnist()
    res = fit(
        LeNet5,
        split.train,
        cluster=gpu_cluster,
        n_workers=1,
        epochs=2,
        batch_size=64,
        log_every=10,
        progress=False,
    )
    steps = res.history[res.history["kind"] == "step"].iloc[1:]  # after the first (warm-up)
    # samples between the first and last report over the time between them: the real rate
    dt = steps["time"].iloc[-1] - steps["time"].iloc[0]
    wall_rate = 64 * (steps["step"].iloc[-1] - steps["step"].iloc[0]) / dt
    assert steps["samples_per_s"].iloc[1:].mean() == pytest.approx(wall_rate, rel=0.25)


def test_compress_a_cuda_model() -> None:  # item 9
    from lepton_nb.compress import quantize, report
    from lepton_nb.compress._data import forward_checked

    split = datasets.mnist()
    model = LeNet5().cuda().eval()
    q = quantize(model, "static-int8", calibration_data=split.train)
    assert next(iter(q.state_dict().values())).device.type == "cpu"
    table = report({"fp32-cuda": model, "int8": q}, split.test, runs=5, warmup=2)
    assert table.loc["fp32-cuda", "latency_ms"] > 0
    with pytest.raises(ConfigError, match="is on cpu but the model is on cuda:0"):
        forward_checked(model, torch.zeros(2, 1, 28, 28))


def test_auto_precision_follows_compute_capability(gpu_cluster: Any) -> None:  # item 10
    major = torch.cuda.get_device_capability(0)[0]
    assert choose_precision(gpu_cluster) == ("bf16" if major >= 8 else "fp16")


def test_cuda_rng_survives_a_checkpoint(tmp_path: Path) -> None:  # item 11
    from lepton_nb.train.checkpoint import (
        load_checkpoint,
        rng_state,
        save_checkpoint,
        set_rng_state,
    )

    dev = torch.device("cuda", 0)
    torch.cuda.manual_seed(0)
    path = save_checkpoint({"rng": rng_state(dev)}, tmp_path / "latest.pt")
    first = torch.nn.functional.dropout(torch.ones(64, device=dev), 0.5)
    set_rng_state(load_checkpoint(path)["rng"], dev)
    again = torch.nn.functional.dropout(torch.ones(64, device=dev), 0.5)
    assert torch.equal(first, again)
