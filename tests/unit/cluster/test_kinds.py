"""Cluster kinds and their profiles: every bad profile is a LeptonError before anything starts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dask.config
import pytest

import lepton_nb as ln
from lepton_nb.cluster import CLUSTER_KINDS
from lepton_nb.cluster._factory import resolve_factory
from lepton_nb.errors import ConfigError, LeptonError


@pytest.fixture
def profile() -> Iterator[Any]:
    """Set lepton.profiles.<name> for one test."""
    stack: list[Any] = []

    def set_profile(name: str, **settings: Any) -> str:
        cm = dask.config.set({f"lepton.profiles.{name}": settings})
        cm.__enter__()
        stack.append(cm)
        return name

    yield set_profile
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


def test_every_kind_is_registered() -> None:
    assert {"local", "local-cuda", "remote", "factory", "gateway"} <= set(CLUSTER_KINDS)


def test_unknown_kind_names_the_known_ones(profile: Any) -> None:
    with pytest.raises(ConfigError, match=r"unknown kind 'slurm'; use one of: .*factory.*gateway"):
        ln.launch_cluster(profile=profile("weird", kind="slurm"))


@pytest.mark.parametrize(
    ("module", "cls", "says"),
    [
        ("dask_jobqueue", "SLURMCluster", "pip install dask-jobqueue"),
        ("dask_kubernetes.operator", "KubeCluster", "pip install dask-kubernetes"),
        ("no_such_pkg.sub", "X", "no module named 'no_such_pkg'.*pip install no-such-pkg"),
        ("distributed", "LocalClustr", r"no class 'LocalClustr' \(did you mean LocalCluster"),
        ("collections", "OrderedDict", "not a Dask cluster manager"),
        ("distributed", "", "needs 'module' and 'class'"),
    ],
)
def test_bad_factory_says_what_and_what_to_install(module: str, cls: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        resolve_factory(module, cls, "profile 'p'")


def test_factory_errors_come_from_launch_cluster_too(profile: Any) -> None:
    name = profile("hpc", kind="factory", module="dask_jobqueue", **{"class": "SLURMCluster"})
    with pytest.raises(ConfigError, match=r"profile 'hpc'.*pip install dask-jobqueue") as e:
        ln.launch_cluster(profile=name)
    assert isinstance(e.value, LeptonError)


def test_factory_arguments_it_refuses_are_a_config_error(profile: Any) -> None:
    name = profile(
        "typo",
        kind="factory",
        module="distributed",
        kwargs={"shutdown_on_clos": 1},
        **{"class": "SpecCluster"},
    )
    with pytest.raises(ConfigError, match=r"SpecCluster refused its arguments.*shutdown_on_clos"):
        ln.launch_cluster(profile=name)
    name = profile(
        "notalist", kind="factory", module="distributed", args="x", **{"class": "SpecCluster"}
    )
    with pytest.raises(ConfigError, match="'args' must be a list"):
        ln.launch_cluster(profile=name)


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({}, "needs 'address'"),
        ({"address": "tcp://127.0.0.1:8786"}, "must be an http:// or https:// URL"),
        ({"address": "http://127.0.0.1:1", "auth": "password"}, "auth must be one of basic"),
        (
            {"address": "http://127.0.0.1:1", "auth": {"type": "basic", "token": "x"}},
            "auth 'basic' does not take",
        ),
    ],
)
def test_bad_gateway_profiles(profile: Any, settings: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        ln.launch_cluster(profile=profile("gw", kind="gateway", **settings))


def test_listing_needs_a_gateway_profile() -> None:
    with pytest.raises(ConfigError, match="only gateway profiles can list"):
        ln.clusters(profile="local-cpu")


@pytest.mark.parametrize("address", ["gateway://127.0.0.1:8000", "gateway://127.0.0.1:8000/a/b"])
def test_malformed_gateway_addresses(address: str) -> None:
    with pytest.raises(ConfigError, match="expected gateway://HOST:PORT/CLUSTER-NAME"):
        ln.connect(address)
