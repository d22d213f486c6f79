from __future__ import annotations

import pytest
from torch import nn

from lepton_nb import compress
from lepton_nb.datasets import Split
from lepton_nb.errors import ConfigError, NotFoundError


def test_prune_sensitivity_per_layer_and_level(trained_lenet: nn.Module, split: Split) -> None:
    layers = ["features.0", "classifier.1"]
    table = compress.sensitivity(
        trained_lenet, split.test, method="prune", levels=(0.25, 0.95), layers=layers
    )
    assert len(table) == 4
    assert set(table["layer"]) == set(layers)
    assert {"accuracy", "accuracy_drop", "level", "method"} <= set(table.columns)
    first = table[table["layer"] == "features.0"].set_index("level")["accuracy_drop"]
    assert first[0.95] > first[0.25] + 5  # 95% of 6 filters' weights gone hurts a lot
    assert table.attrs["baseline_accuracy"] > 0.95


def test_quantize_sensitivity_bits(trained_lenet: nn.Module, split: Split) -> None:
    table = compress.sensitivity(trained_lenet, split.test, method="quantize", levels=(8, 2),
                                 layers=["features.0"])  # fmt: skip
    drops = table.set_index("level")["accuracy_drop"]
    assert abs(drops[8]) <= 1.0
    assert drops[2] > drops[8]


def test_bad_inputs(trained_lenet: nn.Module, split: Split) -> None:
    with pytest.raises(NotFoundError, match="'prune', 'quantize'"):
        compress.sensitivity(trained_lenet, split.test, method="shuffle")
    with pytest.raises(ConfigError, match="unknown layers"):
        compress.sensitivity(trained_lenet, split.test, layers=["nope"])
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        compress.sensitivity(trained_lenet, split.test, levels=(1.5,), layers=["features.0"])
