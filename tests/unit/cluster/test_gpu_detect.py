"""GPU discovery against a fake NVML: CUDA_VISIBLE_DEVICES rules, MIG, broken devices, and the
dask-cuda "Can not scale beyond visible devices" error in the user's terms."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import pytest

from lepton_nb.cluster import detect_gpus
from lepton_nb.cluster._gpu import parse_visible
from lepton_nb.cluster._handle import Cluster
from lepton_nb.errors import ConfigError


def _names(monkeypatch: pytest.MonkeyPatch, env: str | None) -> list[str]:
    if env is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", env)
    return [g.uuid or "" for g in detect_gpus()]


def test_every_device_and_mig_instances_counted(fake_nvml: ModuleType) -> None:
    gpus = detect_gpus()
    # the A100 in MIG mode is used through its two instances, not as a whole
    assert [g.uuid for g in gpus] == [
        "GPU-aaaa1111",
        "MIG-cccc3333",
        "MIG-dddd4444",
        "GPU-eeee5555",
    ]
    assert [g.mig for g in gpus] == [False, True, True, False]
    assert gpus[0].compute_capability == (7, 0) and gpus[1].memory_bytes == 20 * 2**30
    assert fake_nvml._inits[0] == 0  # every nvmlInit was matched by nvmlShutdown


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ("0,2,-1", ["GPU-aaaa1111", "GPU-eeee5555"]),  # CUDA keeps the entries before -1
        ("2,0", ["GPU-eeee5555", "GPU-aaaa1111"]),  # and CUDA's order
        ("-1", []),
        ("", []),
        ("0,7,2", ["GPU-aaaa1111"]),
        ("0,0", ["GPU-aaaa1111"]),
        ("GPU-eeee5555,GPU-aaaa1111", ["GPU-eeee5555", "GPU-aaaa1111"]),
        ("GPU-eeee", ["GPU-eeee5555"]),  # a unique UUID prefix is enough
        ("MIG-dddd4444", ["MIG-dddd4444"]),
        ("MIG-", []),  # an ambiguous prefix is invalid
        ("1", ["MIG-cccc3333"]),  # an index of a MIG GPU: its first instance
        ("GPU-ffff", []),
        (None, ["GPU-aaaa1111", "MIG-cccc3333", "MIG-dddd4444", "GPU-eeee5555"]),
    ],
)
def test_cuda_visible_devices_rules(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, env: str | None, expected: list[str]
) -> None:
    assert _names(monkeypatch, env) == expected


def test_parse_visible() -> None:
    assert parse_visible(None) is None
    assert parse_visible("0, 1 ,-1,2") == [0, 1]
    assert parse_visible("GPU-12,x,1") == ["GPU-12"]


def test_a_broken_device_is_skipped_not_fatal(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    m = fake_nvml.MACHINE
    m[0] = (*m[0][:6], True)
    with caplog.at_level(logging.WARNING, logger="lepton_nb.cluster"):
        gpus = detect_gpus()
    assert [g.uuid for g in gpus] == ["MIG-cccc3333", "MIG-dddd4444", "GPU-eeee5555"]
    assert "GPU 0 skipped: NVML could not read it" in caplog.text


def test_no_driver_means_no_gpus(fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake_nvml, "INIT_FAILS", True)
    monkeypatch.setenv("PATH", "")  # and no nvidia-smi to fall back to
    assert detect_gpus() == []


class _CudaClusterLike:
    def scale(self, n: int) -> None:  # what dask-cuda's new_worker_spec raises
        raise ValueError("Can not scale beyond visible devices", [0, 1])


def test_scale_beyond_visible_devices_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    c = Cluster(client=None, cluster=_CudaClusterLike(), kind="local-cuda")  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError,
        match=r"3 GPU workers asked for.*visible: \[0, 1\] "
        r"\(CUDA_VISIBLE_DEVICES='0,1'\)",
    ):
        c.scale(3)


def test_launch_refuses_more_workers_than_gpus_before_starting(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lepton_nb as ln

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    started: list[Any] = []
    monkeypatch.setitem(
        ln.cluster.CLUSTER_KINDS._items,
        "local-cuda",  # never reached
        lambda *a, **k: started.append(a),
    )
    with pytest.raises(ConfigError, match=r"2 GPU workers asked for.*GPU-aaaa1111"):
        ln.launch_cluster(n_workers=2, gpu=True)
    assert started == []
