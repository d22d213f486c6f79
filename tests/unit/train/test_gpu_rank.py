"""The GPU side of a rank with fake ``torch.cuda`` functions (no GPU here): device choice and
LOCAL_RANK, NCCL environment and timeout, sticky CUDA errors, synchronized clocks, CUDA RNG in
checkpoints, precision choice.  tests/gpu/ runs the same paths on real GPUs."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from lepton_nb.train import _gpu, fit
from lepton_nb.train._common import Meter
from lepton_nb.train._rendezvous import RankSpec, rank_task
from lepton_nb.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from lepton_nb.train.strategy import FunctionStrategy


@pytest.fixture
def four_gpus(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """torch.cuda says 4 devices; set_device calls are recorded."""
    chosen: list[Any] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    return chosen


def test_own_gpu_first_tells_dask_cuda_rotation_from_a_shared_list() -> None:
    same = {"a": "h", "b": "h"}
    assert _gpu.own_gpu_first({"a": "0,1", "b": "1,0"}, same) == {"a": True, "b": True}
    assert _gpu.own_gpu_first({"a": "GPU-x,GPU-y", "b": "GPU-y,GPU-x"}, same) == {
        "a": True,
        "b": True,
    }
    assert _gpu.own_gpu_first({"a": "0,1", "b": "0,1"}, same) == {"a": False, "b": False}
    assert _gpu.own_gpu_first({"a": None, "b": None}, same) == {"a": False, "b": False}
    assert _gpu.own_gpu_first({"a": "0,1", "b": "0,1"}, {"a": "h1", "b": "h2"}) == {
        "a": True,
        "b": True,
    }


def test_device_choice(four_gpus: list[Any]) -> None:
    assert _gpu.pick_device(2, own_first=False) == torch.device("cuda", 2)
    assert _gpu.pick_device(5, own_first=False) == torch.device("cuda", 1)
    assert _gpu.pick_device(3, own_first=True) == torch.device("cuda", 0)
    assert _gpu.env_local_rank(torch.device("cuda", 2), 5) == 2
    assert _gpu.env_local_rank(torch.device("cpu"), 3) == 3


def test_one_visible_device_is_always_cuda0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert _gpu.pick_device(3, own_first=False) == torch.device("cuda", 0)


def _env_of_rank(ctx: Any) -> dict[str, Any]:
    return {
        "LOCAL_RANK": os.environ["LOCAL_RANK"],
        "device": ctx.device,
        "local_rank": ctx.local_rank,
    }


@pytest.mark.parametrize(("own", "local", "index"), [(True, 1, 0), (False, 1, 1), (False, 6, 2)])
def test_rank_exports_local_rank_valid_as_device_index(
    four_gpus: list[Any], own: bool, local: int, index: int
) -> None:
    spec = RankSpec(
        rank=local,
        world_size=8,
        local_rank=local,
        local_world=8,
        address="local",
        host="127.0.0.1",
        master_addr="127.0.0.1",
        master_port=1,
        run_id="t",
        attempt=0,
        checkpoint_dir=None,
        own_gpu_first=own,
    )
    out = rank_task(spec, FunctionStrategy(_env_of_rank), None, sink=lambda e: None)["result"]
    assert out == {
        "LOCAL_RANK": str(index),
        "device": torch.device("cuda", index),
        "local_rank": index,
    }
    assert four_gpus == [torch.device("cuda", index)]
    assert "LOCAL_RANK" not in os.environ  # restored after the rank


def test_nccl_env_and_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NCCL_SOCKET_IFNAME", raising=False)
    monkeypatch.delenv("TORCH_NCCL_ASYNC_ERROR_HANDLING", raising=False)
    assert _gpu.nccl_env("eth1") == {
        "TORCH_NCCL_ASYNC_ERROR_HANDLING": "2",
        "NCCL_SOCKET_IFNAME": "eth1",
    }
    monkeypatch.setenv("NCCL_SOCKET_IFNAME", "ib0")  # the user's choice wins
    assert "NCCL_SOCKET_IFNAME" not in _gpu.nccl_env("eth1")
    assert _gpu.group_timeout_s("nccl", 60.0) == _gpu.NCCL_MIN_TIMEOUT_S
    assert _gpu.group_timeout_s("nccl", 3600.0) == 3600.0
    assert _gpu.group_timeout_s("gloo", 60.0) == 60.0


def test_sticky_cuda_errors() -> None:
    assert _gpu.is_sticky_cuda_error(
        "rank 1 on worker tcp://x failed: RuntimeError: CUDA error: an illegal memory access "
        "was encountered"
    )
    assert _gpu.is_sticky_cuda_error("RuntimeError: CUDA error: device-side assert triggered")
    assert not _gpu.is_sticky_cuda_error("torch.OutOfMemoryError: CUDA out of memory.")
    assert not _gpu.is_sticky_cuda_error("ValueError: bad shape")


def test_throughput_clock_waits_for_the_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []

    def slow_sync(device: Any = None) -> None:  # the device still busy with queued steps
        calls.append(device)
        time.sleep(0.05)

    monkeypatch.setattr(torch.cuda, "synchronize", slow_sync)
    meter = Meter(torch.device("cuda", 0))
    meter.add(torch.tensor(1.0), 4)
    out = meter.flush(0.1)
    assert calls == [torch.device("cuda", 0)]
    assert out["samples_per_s"] <= 4 / 0.05  # the wait is inside the measured time
    Meter(torch.device("cpu")).flush(0.1)
    assert len(calls) == 1


def test_checkpoint_keeps_the_rank_gpu_rng(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    state = torch.arange(16, dtype=torch.uint8)
    restored: list[Any] = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device=None: state.clone())
    monkeypatch.setattr(
        torch.cuda, "set_rng_state", lambda s, device=None: restored.append((s, device))
    )
    dev = torch.device("cuda", 1)
    path = save_checkpoint({"rng": rng_state(dev)}, tmp_path / "latest.pt")
    loaded = load_checkpoint(path)  # weights_only=True
    set_rng_state(loaded["rng"], torch.device("cuda", 0))
    assert torch.equal(restored[0][0], state) and restored[0][1] == torch.device("cuda", 0)
    assert "cuda" not in rng_state(torch.device("cpu"))
    set_rng_state(loaded["rng"], torch.device("cpu"))  # a CPU resume ignores the GPU state
    assert len(restored) == 1


def _info(*caps: tuple[int, int] | None) -> dict[str, dict[str, Any]]:
    return {
        f"w{i}": {
            "gpus": [] if cc is False else [{"name": f"gpu{i}", "compute_capability": cc}],
            "visible": None,
        }
        for i, cc in enumerate(caps)
    }


def test_precision_choice_by_compute_capability() -> None:
    assert _gpu.auto_precision(_info((8, 0), (9, 0))) == "bf16"
    assert _gpu.auto_precision(_info((8, 0), (7, 5))) == "fp16"  # a T4 among them
    assert _gpu.auto_precision(_info((8, 0), False)) == "fp32"  # type: ignore[arg-type]
    assert _gpu.auto_precision({}) == "fp32"
    with pytest.warns(UserWarning, match=r"bf16.*older than Ampere \(gpu1 \(7\.0\)\)"):
        _gpu.warn_slow_bf16(_info((8, 6), (7, 0)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _gpu.warn_slow_bf16(_info((8, 0)))


def test_fit_auto_precision_on_cpu_is_fp32() -> None:
    from torch.utils.data import TensorDataset

    from lepton_nb.train import choose_precision

    assert choose_precision() == "fp32"
    data = TensorDataset(torch.randn(16, 4), torch.randint(0, 2, (16,)))
    res = fit(
        torch.nn.Linear(4, 2), data, epochs=1, batch_size=16, precision="auto", progress=False
    )
    assert res.config["precision"] == "fp32"
