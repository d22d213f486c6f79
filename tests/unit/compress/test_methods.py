from __future__ import annotations

import pytest
from torch import nn

from lepton_nb import compress
from lepton_nb.compress.methods import VariantContext, build_and_measure
from lepton_nb.datasets import Split
from lepton_nb.errors import ConfigError, NotFoundError


def test_variant_round_trips_and_labels() -> None:
    v = compress.Variant("prune-l1", 0.5)
    assert compress.Variant.from_dict(v.to_dict()) == v
    assert v.label == "prune-l1@0.5"
    assert compress.Variant("dynamic-int8").label == "dynamic-int8"


def test_registry_knows_every_method() -> None:
    assert {"dynamic-int8", "static-int8", "weight-only-int8", "weight-only-intx", "prune-l1",
            "prune-structured", "distill"} <= set(compress.METHODS.names())  # fmt: skip
    assert compress.METHODS.get("weight-only-intx").strength == "bits"
    with pytest.raises(NotFoundError, match="prune-structured"):
        compress.make_variant(nn.Linear(2, 2), compress.Variant("magic"))


def test_strength_out_of_range(trained_mlp: nn.Module) -> None:
    with pytest.raises(ConfigError, match=r"sparsity must be in \[0.0, 0.95\]"):
        compress.make_variant(trained_mlp, compress.Variant("prune-l1", 0.99))


def test_build_and_measure_row(trained_lenet: nn.Module, split: Split) -> None:
    ctx = VariantContext(example_input=split.train.tensors[0][:1])
    row, model = build_and_measure(
        trained_lenet, compress.Variant("prune-structured", 0.5), ctx, split.test, {"runs": 3}
    )
    assert row["label"] == "prune-structured@0.5"
    assert row["params"] < 20_000 and 0.0 < row["accuracy"] <= 1.0
    assert model.features[0].out_channels == 3
