"""Shared fixtures: a real 2-worker cluster and an isolated LEPTON_HOME."""

from __future__ import annotations

import os
import shutil
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest


def _has_gpu() -> bool:
    from lepton_nb.cluster import detect_gpus

    return bool(detect_gpus())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _has_gpu():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU; none found (NVML / nvidia-smi)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:  # not keywords: a folder may be "gpu"
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cluster2() -> Iterator[object]:
    """A real LocalCluster of 2 worker processes with 1 thread each (don't kill its workers)."""
    import lepton_nb as ln

    cluster = ln.launch_cluster(
        n_workers=2, threads_per_worker=1, gpu=False, dashboard_address="127.0.0.1:0"
    )
    cluster.wait_for_workers(2)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "lepton-home"
    home.mkdir()
    monkeypatch.setenv("LEPTON_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    return path


# -- a fake NVML (nvidia-ml-py's ``pynvml`` API) describing a made-up machine: a V100, an A100
# in MIG mode with two instances, an H100.  Source text, so a test can install it in a worker
# process too: ``client.run(exec, fake_nvml.INSTALL, {"SOURCE": fake_nvml.SOURCE})``.
FAKE_NVML_SOURCE = '''
class NVMLError(Exception):
    pass

class NVMLError_NotSupported(NVMLError):
    pass

class _Mem:
    def __init__(self, total):
        self.total = total

# (name, GiB, uuid, capability, mig_mode, mig instances [(name, GiB, uuid)], broken)
MACHINE = [
    ("Tesla V100-SXM2-16GB", 16, "GPU-aaaa1111", (7, 0), None, [], False),
    ("NVIDIA A100-SXM4-40GB", 40, "GPU-bbbb2222", (8, 0), (1, 1),
     [("NVIDIA A100-SXM4-40GB MIG 3g.20gb", 20, "MIG-cccc3333"),
      ("NVIDIA A100-SXM4-40GB MIG 3g.20gb", 20, "MIG-dddd4444")], False),
    ("NVIDIA H100 80GB HBM3", 80, "GPU-eeee5555", (9, 0), (0, 0), [], False),
]
INIT_FAILS = False
_inits = [0]

def nvmlInit():
    if INIT_FAILS:
        raise NVMLError("Driver Not Loaded")
    _inits[0] += 1

def nvmlShutdown():
    _inits[0] -= 1

def nvmlDeviceGetCount():
    return len(MACHINE)

def nvmlDeviceGetHandleByIndex(i):
    if MACHINE[i][6]:
        raise NVMLError("Unknown Error")
    return ("gpu", i)

def _dev(h):
    return MACHINE[h[1]]

def nvmlDeviceGetName(h):
    return _dev(h)[0] if h[0] == "gpu" else _dev(h)[5][h[2]][0]

def nvmlDeviceGetMemoryInfo(h):
    gib = _dev(h)[1] if h[0] == "gpu" else _dev(h)[5][h[2]][1]
    return _Mem(gib * 2**30)

def nvmlDeviceGetUUID(h):
    return _dev(h)[2] if h[0] == "gpu" else _dev(h)[5][h[2]][2]

def nvmlDeviceGetCudaComputeCapability(h):
    return _dev(h)[3]

def nvmlDeviceGetMigMode(h):
    if _dev(h)[4] is None:
        raise NVMLError_NotSupported("Not Supported")
    return _dev(h)[4]

def nvmlDeviceGetMaxMigDeviceCount(h):
    return 7

def nvmlDeviceGetMigDeviceHandleByIndex(h, j):
    if j >= len(_dev(h)[5]):
        raise NVMLError("Not Found")
    return ("mig", h[1], j)
'''

FAKE_NVML_INSTALL = (
    "import sys, types\n"
    "m = types.ModuleType('pynvml')\n"
    "exec(SOURCE, m.__dict__)\n"
    "sys.modules['pynvml'] = m\n"
)
FAKE_NVML_UNINSTALL = "import sys\nsys.modules.pop('pynvml', None)\n"


def _fake_nvml_module() -> types.ModuleType:
    m = types.ModuleType("pynvml")
    exec(FAKE_NVML_SOURCE, m.__dict__)
    return m


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The fake NVML installed as ``pynvml`` in this process (``.SOURCE``/``.INSTALL`` ride
    along to install it elsewhere); CUDA_VISIBLE_DEVICES unset."""
    m = _fake_nvml_module()
    m.SOURCE, m.INSTALL = FAKE_NVML_SOURCE, FAKE_NVML_INSTALL  # type: ignore[attr-defined]
    m.UNINSTALL = FAKE_NVML_UNINSTALL  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", m)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return m
