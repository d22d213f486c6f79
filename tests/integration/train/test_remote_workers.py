"""Training on real `dask scheduler` + `dask worker` processes started in their own directory:
the user's modules travel to workers that do not have them, and losing the scheduler mid-fit
ends the fit with a ClusterError while the ranks on the workers stop."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import Subset, TensorDataset

import lepton_nb as ln
from lepton_nb import datasets
from lepton_nb.errors import ClusterError, ConfigError
from lepton_nb.models import MLP
from lepton_nb.train.checkpoint import latest_path, load_checkpoint

pytestmark = pytest.mark.integration


class DaskProcesses:
    """A `dask scheduler` and n `dask worker` processes, all started with ``cwd=where``."""

    def __init__(self, where: Path, n_workers: int, port: int, dask_cli: list[str]) -> None:
        where.mkdir(parents=True, exist_ok=True)
        self.where = where
        self.address = f"tcp://127.0.0.1:{port}"
        self.scheduler = subprocess.Popen(
            [
                *dask_cli,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                "127.0.0.1:0",
            ],
            cwd=where,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.logs = [where / f"worker-{i}.log" for i in range(n_workers)]
        self.workers = []
        for log in self.logs:
            with open(log, "wb") as out:
                self.workers.append(
                    subprocess.Popen(
                        [
                            *dask_cli,
                            "worker",
                            self.address,
                            "--nthreads",
                            "1",
                            "--host",
                            "127.0.0.1",
                            "--no-dashboard",
                            "--memory-limit",
                            "2GiB",
                        ],
                        cwd=where,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )

    def stop(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                p.terminate()
        for p in [*self.workers, self.scheduler]:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def procs(
    tmp_path_factory: pytest.TempPathFactory, free_port: Any, dask_cli: list[str]
) -> Iterator[DaskProcesses]:
    """Shared by this module's tests; the last one kills its scheduler."""
    procs = DaskProcesses(tmp_path_factory.mktemp("workers-dir"), 2, free_port(), dask_cli)
    try:
        yield procs
    finally:
        procs.stop()


@pytest.fixture(scope="module")
def remote(procs: DaskProcesses) -> Iterator[Any]:
    cluster = ln.connect(procs.address, timeout=60)
    cluster.wait_for_workers(2, timeout=120)
    yield cluster
    cluster.close()


USER_MODULE = '''
import torch
from torch import nn
from torch.utils.data import Dataset


class TwoBlobs(Dataset):
    """Two Gaussian blobs, built from a seed (no files)."""

    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.y = torch.randint(0, 2, (n,), generator=g)
        self.x = torch.randn(n, 8, generator=g) + 2.0 * self.y[:, None]

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i]


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))

    def forward(self, x):
        return self.fc(x)


def smooth_ce(out, y):
    return nn.functional.cross_entropy(out, y, label_smoothing=0.05)
'''


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A module next to 'the notebook' (a folder only this process has on sys.path)."""
    name = f"lepton_user_models_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    yield module
    sys.modules.pop(name, None)


def _has(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def test_user_module_travels_to_workers_without_it(remote: Any, user_module: Any) -> None:
    name = user_module.__name__
    assert set(remote.client.run(_has, name).values()) == {False}  # really not on the workers
    res = ln.fit(
        user_module.TinyNet,
        user_module.TwoBlobs(256),
        cluster=remote,
        epochs=1,
        batch_size=64,
        loss=user_module.smooth_ce,
        strategy="ddp",
        progress=False,
    )
    assert res.metrics["world_size"] == 2 and res.metrics["steps"] > 0
    assert isinstance(res.model, user_module.TinyNet)
    # ln.run: a train_fn that uses the module's classes travels too
    out = ln.run(_count_with(user_module), cluster=remote)
    assert out == [256, 256]
    # and nothing was left installed on the workers
    assert set(remote.client.run(_has, name).values()) == {False}


def _count_with(module: Any) -> Any:
    def train_fn(ctx: Any) -> int:
        return len(module.TwoBlobs(256))

    return train_fn


BAD_MODULE = """
import threading

_LOCK = threading.Lock()


class LockedNet:
    def __call__(self):
        with _LOCK:
            import torch
            return torch.nn.Linear(8, 2)
"""


def test_module_that_cannot_travel_is_a_config_error(
    remote: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"lepton_bad_models_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(BAD_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    try:
        data = TensorDataset(torch.randn(64, 8), torch.randint(0, 2, (64,)))
        with pytest.raises(
            ConfigError,
            match=rf"'{name}' are not installed on the workers.*"
            r"upload_file",
        ):
            ln.fit(module.LockedNet(), data, cluster=remote, epochs=1, progress=False)
    finally:
        sys.modules.pop(name, None)


def test_losing_the_scheduler_ends_the_fit_and_stops_the_ranks(
    procs: DaskProcesses, remote: Any, tmp_path: Path
) -> None:
    """Last in this module: it kills the shared scheduler."""
    ckpt = tmp_path / "ckpt"
    killed: dict[str, float] = {}

    def kill_after_first_checkpoint() -> None:
        deadline = time.monotonic() + 240
        while not latest_path(ckpt).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        killed["at"] = time.perf_counter()
        procs.scheduler.kill()

    train = Subset(datasets.mnist().train, range(2048))
    killer = threading.Thread(target=kill_after_first_checkpoint, daemon=True)
    killer.start()
    with pytest.raises(ClusterError) as err:
        ln.fit(
            MLP,
            train,
            cluster=remote,
            epochs=100,
            batch_size=64,
            strategy="ddp",
            checkpoint_dir=str(ckpt),
            checkpoint_every=5,
            progress=False,
        )
    detected = time.perf_counter() - killed["at"]
    print(f"scheduler loss -> ClusterError: {detected:.2f} s")
    msg = str(err.value)
    assert f"scheduler at {procs.address} is gone" in msg
    assert f"the last checkpoint is {latest_path(ckpt)} (step " in msg
    said_step = int(re.search(r"\(step (\d+)\)", msg).group(1))  # type: ignore[union-attr]
    assert 5 <= said_step <= load_checkpoint(latest_path(ckpt))["step"]
    # the ranks on the workers stopped, each worker says so
    said = "is closing (scheduler gone?): stopping its rank"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(said in p.read_text() for p in procs.logs):
        time.sleep(0.2)
    assert all(said in p.read_text() for p in procs.logs)
