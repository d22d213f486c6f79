from __future__ import annotations

import pytest
import torch
from torch import nn

from lepton_nb import compress
from lepton_nb.datasets import Split
from lepton_nb.errors import CompressionError, ConfigError, NotFoundError
from lepton_nb.models import LeNet5, count_parameters


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_unstructured_l1_is_permanent_and_reaches_the_amount(
    trained_lenet: nn.Module, scope: str
) -> None:
    p = compress.prune(trained_lenet, amount=0.6, structured=False, scope=scope)
    weights = [m.weight for m in p.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(0.6, abs=0.01)
    assert not any(hasattr(m, "weight_orig") for m in p.modules())  # masks removed
    assert not list(p._forward_pre_hooks.values())
    assert count_parameters(p) == count_parameters(trained_lenet)  # dense zeros: same size
    if scope == "layer":
        first = p.features[0].weight
        assert float((first == 0).float().mean()) == pytest.approx(0.6, abs=0.02)


def test_structured_physically_removes_channels(trained_lenet: nn.Module, split: Split) -> None:
    x = split.train.tensors[0][:1]
    p = compress.prune(trained_lenet, amount=0.5, structured=True, example_input=x)
    assert p.features[0].out_channels == 3 and p.features[0].weight.shape[0] == 3
    assert p.features[3].in_channels == 3 and p.features[3].out_channels == 8
    assert p.classifier[5].out_features == 10  # the output layer is kept
    assert count_parameters(trained_lenet) / count_parameters(p) >= 1.8
    assert p(split.test.tensors[0][:4]).shape == (4, 10)
    assert trained_lenet.features[0].out_channels == 6  # original untouched


@pytest.mark.parametrize("amount", [-0.1, 1.0, 1.5])
def test_amount_outside_unit_interval(amount: float) -> None:
    with pytest.raises(ConfigError, match=r"amount must be in \[0, 1\)"):
        compress.prune(LeNet5(), amount=amount)


def test_unknown_scope_lists_known() -> None:
    with pytest.raises(NotFoundError, match="'global', 'layer'"):
        compress.prune(LeNet5(), amount=0.3, scope="row")


def test_structured_needs_example_input() -> None:
    with pytest.raises(ConfigError, match="example_input"):
        compress.prune(LeNet5(), amount=0.3, structured=True)


class _WithLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 16)
        self.rnn = nn.LSTM(16, 16, batch_first=True)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(self.proj(x))[0][:, -1])


def test_structured_names_a_layer_it_cannot_handle() -> None:
    with pytest.raises(CompressionError, match=r"'rnn' \(LSTM\)"):
        compress.prune(_WithLSTM(), 0.5, structured=True, example_input=torch.ones(1, 3, 8))


def test_nothing_to_prune() -> None:
    with pytest.raises(CompressionError, match="nothing to compress"):
        compress.prune(nn.Sequential(nn.ReLU(), nn.Flatten()), amount=0.5)
    only_output = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(CompressionError, match="nothing to compress"):
        compress.prune(only_output, 0.5, structured=True, example_input=torch.ones(1, 4))


def test_config_round_trips() -> None:
    cfg = compress.PruneConfig(amount=0.3, structured=True, scope="global", steps=2)
    assert compress.PruneConfig.from_dict(cfg.to_dict()) == cfg
