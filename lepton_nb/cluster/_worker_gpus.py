"""GPU facts asked from the workers themselves.

A nanny-started worker (every LocalCUDACluster worker) copies its startup information before
its SystemMonitor initialises NVML, so it registers *without* the ``gpu`` entry
(distributed ``worker.py``; dask/distributed#8567): the scheduler's worker list says "no GPU"
for GPU workers.  So we run :func:`probe` on each worker (``client.run``) and cache the answer
per worker (a worker's devices do not change while it lives).  Workers without lepton_nb
fall back to what they registered.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from lepton_nb.cluster._client import live_workers
from lepton_nb.cluster._gpu import detect_gpus

_CACHE: dict[tuple[str, str], dict[str, Any]] = {}
_LOCK = threading.Lock()


def probe() -> dict[str, Any]:
    """Runs on a worker: the devices it sees (its CUDA device 0 first) and its
    ``CUDA_VISIBLE_DEVICES``, read through NVML without creating a CUDA context."""
    return {
        "gpus": [g.to_dict() for g in detect_gpus()],
        "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def _from_registration(w: dict[str, Any]) -> dict[str, Any]:
    gpu = w.get("gpu") or {}
    gpus = []
    if gpu.get("name"):
        gpus.append(
            {
                "index": 0,
                "name": gpu["name"],
                "memory_bytes": gpu.get("memory-total"),
                "uuid": None,
                "compute_capability": None,
                "mig": False,
            }
        )
    return {"gpus": gpus, "visible": None}


def worker_gpus(
    client: Any, workers: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """``{address: {"gpus": [GPUInfo dicts, the worker's cuda:0 first], "visible": str|None}}``
    for the scheduler's workers (or the given ``identity()["workers"]`` entries)."""
    if workers is None:
        workers = live_workers(client)
    keys = {a: (a, str(w.get("id") or w.get("name"))) for a, w in workers.items()}
    with _LOCK:
        missing = [a for a, k in keys.items() if k not in _CACHE]
    if missing:
        replies = client.run(probe, workers=missing, on_error="return")
        with _LOCK:
            for a in missing:
                r = replies.get(a)
                # an exception: lepton_nb is not importable there, or the worker just left
                _CACHE[keys[a]] = r if isinstance(r, dict) else _from_registration(workers[a])
            live = set(keys.values())
            for k in [k for k in _CACHE if k not in live and k[0] in keys]:
                del _CACHE[k]  # a restarted worker at a reused address
    with _LOCK:
        return {a: _CACHE[k] for a, k in keys.items()}


def all_have_gpus(info: dict[str, dict[str, Any]]) -> bool:
    return bool(info) and all(v["gpus"] for v in info.values())


__all__ = ["all_have_gpus", "probe", "worker_gpus"]
