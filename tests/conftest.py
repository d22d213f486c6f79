"""Shared fixtures: real 2-worker clusters (``cluster2``, ``launch_cluster2``), a worker killer
for recovery tests (``kill_worker_at``), an isolated LEPTON_HOME, a fake NVML."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

_session_home: tempfile.TemporaryDirectory[str] | None = None


def pytest_configure(config: pytest.Config) -> None:
    # The whole session (and every process it starts: workers, kernels, servers, runners) gets a
    # LEPTON_HOME of its own, so no test reads, writes or migrates the developer's ~/.lepton
    # (job store, cluster ledger, caches); ``tmp_home`` still isolates one test from another.
    global _session_home
    _session_home = tempfile.TemporaryDirectory(
        prefix="lepton-tests-home-", ignore_cleanup_errors=True
    )
    os.environ["LEPTON_HOME"] = _session_home.name


def pytest_unconfigure(config: pytest.Config) -> None:
    if _session_home is not None:
        _session_home.cleanup()


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


@contextmanager
def _launch_cluster2(n_workers: int = 2) -> Iterator[Any]:
    import lepton_nb as ln

    cluster = ln.launch_cluster(
        n_workers=n_workers, threads_per_worker=1, gpu=False, dashboard_address="127.0.0.1:0"
    )
    try:
        cluster.wait_for_workers(n_workers)
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def cluster2() -> Iterator[object]:
    """A real LocalCluster of 2 worker processes with 1 thread each (don't kill its workers)."""
    with _launch_cluster2() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def launch_cluster2() -> Callable[..., AbstractContextManager[Any]]:
    """``with launch_cluster2() as cluster:`` a cluster like ``cluster2`` but the caller's own,
    closed at the end of the block: for tests that kill its workers or need it started after
    something else (an S3 server whose address the workers inherit). ``launch_cluster2(1)``:
    one worker."""
    return _launch_cluster2


@pytest.fixture(scope="session")
def kill_worker_at() -> type[Any]:
    """``KillWorkerAt(client, step, rank=1)``: a training callback that SIGKILLs the Dask worker
    running ``rank`` once that rank reports step ``step`` (once); ``killed_at`` and
    ``restart_seen_at`` (the driver's first ``restart`` row) are ``time.monotonic()`` readings,
    ``pid`` the killed worker's. For tests of recovery on a cluster of their own."""
    from lepton_nb.train import Callback  # here: conftest imports no lepton_nb.train

    class KillWorkerAt(Callback):
        def __init__(self, client: Any, step: int, rank: int = 1) -> None:
            self.client, self.step, self.rank = client, step, rank
            self.killed_at: float | None = None
            self.restart_seen_at: float | None = None
            self.pid: int | None = None

        def on_events(self, events: list[dict[str, Any]]) -> None:
            for e in events:
                if e["kind"] == "restart" and self.restart_seen_at is None:
                    self.restart_seen_at = time.monotonic()
                if (
                    self.killed_at is None
                    and e["kind"] == "step"
                    and e["rank"] == self.rank
                    and e["step"] >= self.step
                ):
                    worker = e["worker"]  # the scheduler stamps relayed events with the sender
                    self.pid = self.client.run(os.getpid, workers=[worker])[worker]
                    os.kill(self.pid, signal.SIGKILL)
                    self.killed_at = time.monotonic()

    return KillWorkerAt


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """``free_port()``: a TCP port on 127.0.0.1 that nothing listens on (for a `dask scheduler`
    the test starts, or an address that must refuse connections)."""
    return _free_port


@pytest.fixture(scope="session")
def dask_cli() -> list[str]:
    """The ``dask`` command (``dask scheduler``, ``dask worker``) of this environment."""
    exe = shutil.which("dask")
    return [exe] if exe else [sys.executable, "-m", "dask"]


DaskProcesses = Callable[..., AbstractContextManager[tuple[str, list[Any]]]]


@pytest.fixture(scope="session")
def dask_processes(free_port: Callable[[], int], dask_cli: list[str]) -> DaskProcesses:
    """``with dask_processes(nthreads=1, nanny=True, env=None) as (address, procs)``: a real
    ``dask scheduler`` and one ``dask worker`` (``procs[1]``) on loopback, as separate processes;
    both are ended when the block exits (a test may kill the worker first)."""

    @contextmanager
    def start(
        nthreads: int = 1, nanny: bool = True, env: dict[str, str] | None = None
    ) -> Iterator[tuple[str, list[Any]]]:
        port = free_port()
        address = f"tcp://127.0.0.1:{port}"
        quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        scheduler = [*dask_cli, "scheduler", "--host", "127.0.0.1", "--port", str(port)]
        procs = [subprocess.Popen([*scheduler, "--dashboard-address", "127.0.0.1:0"], **quiet)]
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.2)
            worker = [*dask_cli, "worker", address, "--nthreads", str(nthreads)]
            worker += ["--host", "127.0.0.1", "--no-dashboard"] + ([] if nanny else ["--no-nanny"])
            procs.append(subprocess.Popen(worker, env=env, **quiet))
            yield address, procs
        finally:
            for p in reversed(procs):
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    return start


MakeNB = Callable[..., Path]


@pytest.fixture
def make_nb(tmp_path: Path) -> MakeNB:
    """``make_nb(name, *cells, params=None, where=None) -> Path``: a small real notebook (code
    cells, an optional cell tagged ``parameters`` first, the python3 kernelspec) written to
    ``where`` (created if missing; default ``tmp_path``)."""

    def make(name: str, *cells: str, params: str | None = None, where: Path | None = None) -> Path:
        import nbformat
        from nbformat.v4 import new_code_cell, new_notebook

        body = [new_code_cell(c) for c in cells]
        if params is not None:
            body.insert(0, new_code_cell(params, metadata={"tags": ["parameters"]}))
        nb = new_notebook(cells=body)
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        folder = where or tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        nbformat.write(nb, path)
        return path

    return make


# -- small models trained once per session on the shipped MNIST subset (compress, widgets and
# their cluster tests share them); torch is imported inside, so a session that uses none of them
# never imports it here.
def train_quick(
    model: Any, data: Any, epochs: int, seed: int = 0, lr: float = 1e-3, bs: int = 64
) -> Any:
    """A plain training loop for fixtures (the code under test never uses it)."""
    import torch
    from torch.utils.data import DataLoader

    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loader = DataLoader(
        data, batch_size=bs, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def split() -> Any:
    """``lepton_nb.datasets.mnist()``: the shipped 4,000/1,000 MNIST subset."""
    from lepton_nb.datasets import mnist

    return mnist()


@pytest.fixture(scope="session")
def trained_mlp(split: Any) -> Any:
    import torch

    from lepton_nb.models import MLP

    torch.manual_seed(0)  # the initial weights
    return train_quick(MLP(), split.train, epochs=4, lr=3e-3, bs=32)


@pytest.fixture(scope="session")
def trained_lenet(split: Any) -> Any:
    import torch

    from lepton_nb.models import LeNet5

    torch.manual_seed(0)  # the initial weights
    return train_quick(LeNet5(), split.train, epochs=3, lr=3e-3, bs=32)


@pytest.fixture(scope="session")
def calib(split: Any) -> Any:
    """1,000 training images for calibration (static int8)."""
    return split.train.tensors[0][:1000]


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
FAKE_NVML_SOURCE = """
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
"""

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
