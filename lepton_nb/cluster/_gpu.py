"""GPU discovery that never initialises CUDA in the calling process.

Creating a CUDA context in the notebook process would pin memory on GPU 0 and break forked
workers, so we ask NVML (the driver's management library) or ``nvidia-smi`` instead of torch,
and apply ``CUDA_VISIBLE_DEVICES`` with the CUDA runtime's rules (see :func:`select_visible`).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger("lepton_nb.cluster")

_MIG_ENABLED = 1  # pynvml.NVML_DEVICE_MIG_ENABLE


@dataclass(frozen=True)
class GPUInfo:
    """One device CUDA can use: a whole GPU or one MIG instance of a GPU.

    ``index`` is NVML's index of the physical GPU (of the parent GPU for a MIG instance);
    ``compute_capability`` is ``(major, minor)`` when the driver reports it.
    """

    index: int
    name: str
    memory_bytes: int
    uuid: str | None = None
    compute_capability: tuple[int, int] | None = None
    mig: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_visible(env: str | None) -> list[int | str] | None:
    """``CUDA_VISIBLE_DEVICES`` as the CUDA runtime reads it: None when unset (every device),
    else the entries up to the first invalid one (``"0,1,-1,2"`` -> ``[0, 1]``), each an
    index or a ``GPU-``/``MIG-`` UUID (or unique UUID prefix); ``""`` hides every device."""
    if env is None:
        return None
    out: list[int | str] = []
    for raw in env.split(","):
        part = raw.strip()
        if part.lstrip("+").isdigit():
            out.append(int(part))
        elif part.startswith(("GPU-", "MIG-")):
            out.append(part)
        else:  # "-1", "", a typo: CUDA ignores this entry and every later one
            break
    return out


def _match(devices: list[GPUInfo], entry: int | str) -> GPUInfo | None:
    if isinstance(entry, int):
        whole = [d for d in devices if d.index == entry]
        # an index of a MIG-enabled GPU gives its first instance (CUDA shows one per process)
        return whole[0] if whole else None
    hits = [d for d in devices if d.uuid and d.uuid.startswith(entry)]
    return hits[0] if len(hits) == 1 else None  # an ambiguous prefix is invalid for CUDA


def select_visible(devices: list[GPUInfo], env: str | None) -> list[GPUInfo]:
    """The devices CUDA enumerates under ``CUDA_VISIBLE_DEVICES=env``, in CUDA's order: an
    entry that matches nothing, or a device listed twice, ends the list as it does for CUDA."""
    entries = parse_visible(env)
    if entries is None:
        return list(devices)
    out: list[GPUInfo] = []
    for entry in entries:
        dev = _match(devices, entry)
        if dev is None or dev in out:
            break
        out.append(dev)
    return out


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _optional(fn: Any, *args: Any) -> Any:
    """An NVML query that older drivers or GPUs may not support: None instead of an error."""
    import pynvml

    try:
        return fn(*args)
    except pynvml.NVMLError:
        return None


def _nvml_device(pynvml: Any, i: int) -> list[GPUInfo]:
    h = pynvml.nvmlDeviceGetHandleByIndex(i)
    cc = _optional(pynvml.nvmlDeviceGetCudaComputeCapability, h)
    cc = (int(cc[0]), int(cc[1])) if cc else None
    mode = _optional(pynvml.nvmlDeviceGetMigMode, h)
    if not mode or mode[0] != _MIG_ENABLED:
        uuid = _optional(pynvml.nvmlDeviceGetUUID, h)
        return [
            GPUInfo(
                i,
                _text(pynvml.nvmlDeviceGetName(h)),
                int(pynvml.nvmlDeviceGetMemoryInfo(h).total),
                None if uuid is None else _text(uuid),
                cc,
            )
        ]
    out = []  # a MIG-enabled GPU is used through its instances, not as a whole
    for j in range(int(pynvml.nvmlDeviceGetMaxMigDeviceCount(h))):
        m = _optional(pynvml.nvmlDeviceGetMigDeviceHandleByIndex, h, j)
        if m is None:  # an empty slot
            continue
        uuid = _optional(pynvml.nvmlDeviceGetUUID, m)
        out.append(
            GPUInfo(
                i,
                _text(pynvml.nvmlDeviceGetName(m)),
                int(pynvml.nvmlDeviceGetMemoryInfo(m).total),
                None if uuid is None else _text(uuid),
                cc,
                mig=True,
            )
        )
    return out


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
        out: list[GPUInfo] = []
        for i in range(int(pynvml.nvmlDeviceGetCount())):
            try:
                out.extend(_nvml_device(pynvml, i))
            except pynvml.NVMLError as e:  # one broken GPU must not hide the others
                log.warning("GPU %d skipped: NVML could not read it (%s); check nvidia-smi", i, e)
        return out
    except pynvml.NVMLError as e:
        log.warning("NVML could not count the GPUs (%s); check nvidia-smi", e)
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def _from_smi() -> list[GPUInfo] | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        res = subprocess.run(
            [smi, "--query-gpu=index,name,memory.total,uuid", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = []
    for line in res.stdout.strip().splitlines():
        parts = [x.strip() for x in line.split(",")]
        try:
            out.append(
                GPUInfo(
                    int(parts[0]),
                    parts[1],
                    int(float(parts[2])) * 2**20,
                    parts[3] if len(parts) > 3 else None,
                )
            )
        except (ValueError, IndexError):  # "[N/A]" or "[Unknown Error]" for a broken GPU
            log.warning("nvidia-smi line skipped: %r", line)
    return out


def detect_gpus() -> list[GPUInfo]:
    """The devices this process could use, in CUDA's order (whole GPUs and MIG instances,
    ``CUDA_VISIBLE_DEVICES`` applied as the CUDA runtime does); [] when none."""
    gpus = _from_nvml()
    if gpus is None:
        gpus = _from_smi() or []
    return select_visible(gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))


__all__ = ["GPUInfo", "detect_gpus", "parse_visible", "select_visible"]
