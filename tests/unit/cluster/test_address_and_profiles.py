from __future__ import annotations

import logging

import pytest

from lepton_nb.cluster import detect_gpus, get_profile, list_profiles
from lepton_nb.cluster._launch import _normalise_address, _resolve_gpu
from lepton_nb.errors import ConfigError, GPUUnavailableError, LeptonError


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("tcp://127.0.0.1:8786", "tcp://127.0.0.1:8786"),
        ("127.0.0.1:8786", "tcp://127.0.0.1:8786"),
        ("TLS://sched.example:9000", "tls://sched.example:9000"),
        ("tcp://[::1]:8786", "tcp://[::1]:8786"),
    ],
)
def test_addresses_are_normalised(given: str, expected: str) -> None:
    assert _normalise_address(given) == expected


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("localhost", "malformed scheduler address 'localhost'"),
        ("foo://h:1", "unknown scheme 'foo'"),
        ("", "must be a string"),
        ("tcp://host", "expected SCHEME://HOST:PORT"),
    ],
)
def test_bad_addresses_say_what_and_how(bad: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        _normalise_address(bad)
    assert says in str(err.value)
    assert isinstance(err.value, LeptonError)


def test_builtin_profiles_exist() -> None:
    profiles = list_profiles()
    assert {"local-cpu", "local-gpu"} <= profiles.keys()
    assert get_profile("local-cpu")["kind"] == "local"


def test_profile_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import dask.config

    monkeypatch.setenv("DASK_LEPTON__PROFILES__CLASSROOM__N_WORKERS", "3")
    monkeypatch.setenv("DASK_LEPTON__PROFILES__CLASSROOM__KIND", "local")
    dask.config.refresh()
    try:
        assert get_profile("classroom") == {"n_workers": 3, "kind": "local"}
    finally:
        monkeypatch.undo()
        dask.config.refresh()


def test_unknown_profile_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"known profiles: .*local-cpu"):
        get_profile("nope")


def test_profile_with_unknown_key_is_refused() -> None:
    import dask.config

    with dask.config.set({"lepton.profiles.bad": {"kind": "local", "n_wrkers": 2}}):
        with pytest.raises(ConfigError, match="unknown keys \\['n_wrkers'\\]"):
            get_profile("bad")


def test_no_gpu_here_and_fallback_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    if detect_gpus():
        pytest.skip("this machine has a GPU")
    with caplog.at_level(logging.INFO, logger="lepton_nb.cluster"):
        assert _resolve_gpu("auto") is False
    assert [r.message for r in caplog.records].count(
        "no GPU found: launching a CPU cluster (LocalCluster)"
    ) == 1
    with pytest.raises(GPUUnavailableError, match="gpu=True but no NVIDIA GPU"):
        _resolve_gpu(True)
    with pytest.raises(ConfigError, match="gpu must be True, False or 'auto'"):
        _resolve_gpu("yes")  # type: ignore[arg-type]


def test_cuda_visible_devices_filters() -> None:
    from lepton_nb.cluster._gpu import GPUInfo, select_visible

    gpus = [GPUInfo(i, "gpu", 1) for i in range(3)]
    assert [g.index for g in select_visible(gpus, "1,3")] == [1]  # 3 does not exist: CUDA stops
    assert select_visible(gpus, "") == []
    assert select_visible(gpus, None) == gpus
