"""Bad input to fit/run is refused up front with a message that says what and how to fix."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from lepton_nb.errors import ConfigError, LeptonError
from lepton_nb.models import MLP
from lepton_nb.train import STRATEGIES, FitConfig, fit, run

DATA = TensorDataset(torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": 3}, "nn.Module or a zero-argument factory"),
        ({"train_data": TensorDataset(torch.empty(0, 1), torch.empty(0))}, "empty"),
        ({"train_data": 5}, "torch Dataset"),
        ({"batch_size": 0}, "batch_size must be a whole number >= 1"),
        ({"lr": 0}, "lr must be a positive number"),
        ({"lr": -1e-3}, "lr must be a positive number"),
        ({"epochs": 0}, "epochs"),
        ({"optimizer": "adamax"}, "unknown optimizer 'adamax'; choose one of: 'adam'"),
        ({"loss": "hinge"}, "unknown loss 'hinge'; choose one of: 'cross_entropy', 'mse'"),
        ({"precision": "fp8"}, "unknown precision 'fp8'"),
        ({"max_restarts": -1}, "max_restarts"),
        ({"callbacks": [object()]}, "lacks on_train_start"),
    ],
)
def test_bad_input_raises_config_error(kwargs: dict, match: str) -> None:
    args = {"model": MLP(), "train_data": DATA, **kwargs}
    with pytest.raises(ConfigError, match=match):
        fit(args.pop("model"), args.pop("train_data"), progress=False, **args)


def test_unknown_strategy_lists_available() -> None:
    class FakeCluster:  # never reached: the strategy is checked first
        client = None

    with pytest.raises(LeptonError) as e:
        fit(MLP(), DATA, cluster=FakeCluster(), strategy="horovod", progress=False)
    for name in ("ddp", "ps-async", "ps-sync", "single"):
        assert repr(name) in str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is allowed with a GPU")
def test_fp16_on_cpu_refused() -> None:
    with pytest.raises(ConfigError, match=r"fp16.*bf16"):
        fit(MLP(), DATA, precision="fp16", progress=False)


def test_run_rejects_non_callable() -> None:
    with pytest.raises(ConfigError, match="train_fn"):
        run(42)  # type: ignore[arg-type]


def test_config_round_trips() -> None:
    cfg = FitConfig(epochs=2, strategy="ps-sync", lr=0.01)
    assert FitConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown fit settings"):
        FitConfig.from_dict({"epochz": 1})


def test_registry_names() -> None:
    assert STRATEGIES.names() == ["ddp", "ps-async", "ps-sync", "single"]
