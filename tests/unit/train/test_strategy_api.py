"""The Strategy API: strategies are objects fit hands around whole; RankSpec by keywords."""

from __future__ import annotations

import ast
import inspect
from typing import Any

import pytest
import torch
from torch.utils.data import TensorDataset

from lepton_nb.errors import ConfigError
from lepton_nb.models import MLP
from lepton_nb.train import STRATEGIES, Strategy, TrainContext, config, fit
from lepton_nb.train._loop import SingleStrategy
from lepton_nb.train._rendezvous import RankSpec
from lepton_nb.train.strategies import resolve_strategy

DATA = TensorDataset(torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,)))


def test_registry_holds_strategy_objects() -> None:
    for name in STRATEGIES:
        s = STRATEGIES.get(name)
        assert isinstance(s, Strategy) and s.name == name
    assert STRATEGIES.get("single").in_process and STRATEGIES.get("ddp").init_group
    assert not STRATEGIES.get("ps-sync").init_group


def test_unknown_strategy_refused_without_a_cluster() -> None:
    with pytest.raises(ConfigError, match=r"unknown strategy 'bogus'; choose one of: 'ddp'"):
        fit(MLP(), DATA, strategy="bogus", progress=False)
    with pytest.raises(ConfigError, match="strategy must be a name"):
        resolve_strategy(3)  # type: ignore[arg-type]


def test_config_does_not_import_strategies() -> None:
    """config.py sits below the strategies in the import graph (no cycle, not even lazily)."""
    tree = ast.parse(inspect.getsource(config))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in imported if m and m.startswith("lepton_nb.train")}


class Tracing(SingleStrategy):
    """A user-defined in-process strategy: the base loop plus a record of the calls."""

    name = "tracing"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def body(self, ctx: TrainContext, payload: Any) -> dict[str, Any]:
        self.calls.append(f"body rank={ctx.rank}/{ctx.world_size}")
        return super().body(ctx, payload)


def test_fit_takes_a_strategy_object() -> None:
    strat = Tracing()
    res = fit(MLP(), DATA, strategy=strat, epochs=1, batch_size=16, progress=False)
    assert strat.calls == ["body rank=0/1"]
    assert res.metrics["strategy"] == "tracing" and res.config["strategy"] == "tracing"
    assert res.metrics["steps"] == 2


def test_rankspec_is_built_with_keywords() -> None:
    with pytest.raises(TypeError):
        RankSpec(0, 1, 0, 1, "a", "h", "h", 1, "r", 0, None)  # type: ignore[misc]
    spec = RankSpec(
        rank=1,
        world_size=2,
        local_rank=1,
        local_world=2,
        address="tcp://a:1",
        host="a",
        master_addr="a",
        master_port=1234,
        run_id="r",
        attempt=0,
        checkpoint_dir=None,
    )
    assert spec.timeout_s == 60.0 and spec.threads == 1
