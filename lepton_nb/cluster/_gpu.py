"""GPU discovery that never initialises CUDA in the calling process.

Creating a CUDA context in the notebook process would pin memory on GPU 0 and break forked
workers, so we ask NVML (the driver's management library) or ``nvidia-smi`` instead of torch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class GPUInfo:
    index: int
    name: str
    memory_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _visible(indices: list[int]) -> list[int]:
    """Apply CUDA_VISIBLE_DEVICES (integer form) the way the CUDA runtime would."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return indices
    wanted: list[int] = []
    for part in env.split(","):
        part = part.strip()
        if not part.isdigit():  # UUID/MIG forms or "" (hide all): trust NVML order no further
            return [] if part == "" or part == "-1" else indices
        if int(part) in indices:
            wanted.append(int(part))
    return wanted


def _from_nvml() -> list[GPUInfo] | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:  # no driver, no devices: not an error, just no GPUs
        return None
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h).total
            out.append(GPUInfo(i, name.decode() if isinstance(name, bytes) else name, int(mem)))
        return out
    finally:
        pynvml.nvmlShutdown()


def _from_smi() -> list[GPUInfo] | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        res = subprocess.run(
            [smi, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = []
    for line in res.stdout.strip().splitlines():
        idx, name, mib = (x.strip() for x in line.split(","))
        out.append(GPUInfo(int(idx), name, int(float(mib)) * 2**20))
    return out


def detect_gpus() -> list[GPUInfo]:
    """The GPUs this process could use (respecting CUDA_VISIBLE_DEVICES); [] when none."""
    gpus = _from_nvml()
    if gpus is None:
        gpus = _from_smi() or []
    keep = set(_visible([g.index for g in gpus]))
    return [g for g in gpus if g.index in keep]
