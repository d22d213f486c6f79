"""The GPU side of a rank: which device it uses, the NCCL environment, CUDA clocks and errors,
and which precision a cluster's GPUs do well.  Pure functions of their inputs where possible,
so they are unit-tested with fakes on CPU machines (``tests/unit/train/test_gpu_rank.py``) and
for real by ``tests/gpu/`` and ``benchmarks/gpu_check.py``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

# torch's own NCCL default (kProcessGroupNCCLDefaultTimeout).  On NCCL a collective's timeout
# also runs while a peer does rank-local work (a first torch.compile step, a checkpoint
# write); a lost peer is still found within seconds by the driver (worker list poll, stuck
# ranks' workers restarted), not by this timeout.
NCCL_MIN_TIMEOUT_S = 600.0

# Errors after which the CUDA context of the process is unusable ("sticky"): a retry in the
# same process fails again, so the rank's worker process must be replaced.
_STICKY = (
    "illegal memory access",
    "an illegal address",
    "device-side assert",
    "unspecified launch failure",
    "misaligned address",
    "illegal instruction",
    "uncorrectable ecc",
    "hardware stack error",
    "launch timed out",
    "cudaerrorillegaladdress",
    "cudaerrorassert",
    "cudaerrorlaunchfailure",
    "cublas_status_execution_failed",
    "cudnn_status_execution_failed",
)


def own_gpu_first(visible: dict[str, str | None], hosts: dict[str, str]) -> dict[str, bool]:
    """For each worker address: is its CUDA device 0 its own GPU?

    True where each worker of a host sees a different first device: dask-cuda rotates
    ``CUDA_VISIBLE_DEVICES`` per worker (``"1,2,3,0"`` for the second), and one device per
    worker is the same case.  False where the host's workers share one list (plain
    ``dask worker --nworkers N`` in a SLURM job, or nothing set): then ranks spread by
    ``local_rank % device_count``.
    """
    firsts: dict[str, list[str | None]] = {}
    for a, v in visible.items():
        first = None if v is None else (v.split(",")[0].strip() or None)
        firsts.setdefault(hosts.get(a, ""), []).append(first)
    out = {}
    for a, v in visible.items():
        first = None if v is None else (v.split(",")[0].strip() or None)
        mates = firsts[hosts.get(a, "")]
        out[a] = first is not None and mates.count(first) == 1
    return out


def pick_device(local_rank: int, own_first: bool) -> Any:
    """``cuda:0`` where the worker's device 0 is its own GPU (or it sees one device), else
    ``cuda:<local_rank % device_count>``; CPU without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return torch.device("cpu")
    n = torch.cuda.device_count()
    if own_first or n == 1:
        return torch.device("cuda", 0)
    return torch.device("cuda", local_rank % n)


def env_local_rank(device: Any, local_rank: int) -> int:
    """The ``LOCAL_RANK`` to export: a valid device index on GPUs, so torchrun-style
    ``torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))`` lands on the rank's own GPU."""
    if getattr(device, "type", "cpu") == "cuda":
        return int(device.index or 0)
    return local_rank


def nccl_env(iface: str | None) -> dict[str, str]:
    """Environment for an NCCL group, without overriding what the user set: NCCL's sockets on
    the interface that owns the worker's address (as for gloo), and collective errors or
    timeouts raised in the rank (abort the communicators) instead of the default of tearing
    the whole worker process down."""
    env = {"TORCH_NCCL_ASYNC_ERROR_HANDLING": "2"}  # CleanUpOnly
    if iface:
        env["NCCL_SOCKET_IFNAME"] = iface
    return {k: v for k, v in env.items() if k not in os.environ}


def group_timeout_s(backend: str, timeout_s: float) -> float:
    return max(timeout_s, NCCL_MIN_TIMEOUT_S) if backend == "nccl" else timeout_s


def is_sticky_cuda_error(text: str) -> bool:
    low = text.lower()
    return any(m in low for m in _STICKY)


def synchronizer(device: Any) -> Callable[[], None]:
    """A no-argument function that waits for the device's queued work (a no-op on CPU), to
    call before reading a clock: CUDA kernels run asynchronously."""
    if getattr(device, "type", "cpu") != "cuda":
        return lambda: None
    import torch

    return lambda: torch.cuda.synchronize(device)


def _capabilities(info: dict[str, dict[str, Any]]) -> list[tuple[str, tuple[int, int] | None]]:
    out = []
    for v in info.values():
        if v["gpus"]:
            g = v["gpus"][0]
            cc = g.get("compute_capability")
            out.append((str(g.get("name")), None if cc is None else (int(cc[0]), int(cc[1]))))
    return out


def auto_precision(info: dict[str, dict[str, Any]]) -> str:
    """``bf16`` where every worker has an Ampere-or-newer GPU (compute capability >= 8.0),
    ``fp16`` (with loss scaling) on older GPUs, where bf16 is emulated and slow, and ``fp32``
    when any worker lacks a GPU.  ``info``: what ``cluster._worker_gpus.worker_gpus`` returns."""
    caps = _capabilities(info)
    if not info or len(caps) < len(info):
        return "fp32"
    if any(cc is not None and cc < (8, 0) for _, cc in caps):
        return "fp16"
    return "bf16"


def warn_slow_bf16(info: dict[str, dict[str, Any]]) -> None:
    old = sorted(
        {
            f"{n} ({cc[0]}.{cc[1]})"
            for n, cc in _capabilities(info)
            if cc is not None and cc < (8, 0)
        }
    )
    if old:
        warnings.warn(
            f"precision='bf16' on GPUs older than Ampere ({', '.join(old)}): they have no bf16 "
            "tensor cores, so bf16 is emulated and slower than fp32; use precision='fp16' "
            "(loss-scaled) or 'auto'",
            UserWarning,
            stacklevel=3,
        )


__all__ = [
    "NCCL_MIN_TIMEOUT_S",
    "auto_precision",
    "env_local_rank",
    "group_timeout_s",
    "is_sticky_cuda_error",
    "nccl_env",
    "own_gpu_first",
    "pick_device",
    "synchronizer",
    "warn_slow_bf16",
]
