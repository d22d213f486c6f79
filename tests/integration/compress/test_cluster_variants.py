"""Sensitivity and explorer variants as tasks on a real 2-worker Dask cluster."""

from __future__ import annotations

from typing import Any

import pytest
from torch import nn

from lepton_nb import compress
from lepton_nb.compress import Variant
from lepton_nb.datasets import Split
from lepton_nb.widgets.explorer import CompressionExplorer

pytestmark = pytest.mark.integration


def test_sensitivity_runs_each_variant_as_a_task(
    cluster2: Any, trained_lenet: nn.Module, split: Split
) -> None:
    layers = ["features.0", "features.3", "classifier.1"]
    table = compress.sensitivity(trained_lenet, split.test, cluster=cluster2, method="prune",
                                 levels=(0.5, 0.9), layers=layers)  # fmt: skip
    assert len(table) == 6 and set(table["layer"]) == set(layers)
    workers = {w["address"] for w in cluster2.workers}
    assert set(table["worker"]) == workers  # spread over both workers, not run locally
    local = compress.sensitivity(trained_lenet, split.test, method="prune", levels=(0.5, 0.9),
                                 layers=layers)  # fmt: skip
    assert table["accuracy"].tolist() == local["accuracy"].tolist()  # same answers either way


def test_explorer_runs_variants_on_the_cluster(
    cluster2: Any, trained_lenet: nn.Module, split: Split
) -> None:
    calib = split.train.tensors[0][:500]
    ex = CompressionExplorer(trained_lenet, split.test, cluster=cluster2, calibration_data=calib,
                             settings={"runs": 5, "warmup": 2})  # fmt: skip
    table = ex.run([Variant("static-int8"), Variant("prune-structured", 0.5),
                    Variant("prune-l1", 0.5)])  # fmt: skip
    assert not ex.errors, ex.errors
    assert set(table.index) == {"baseline", "static-int8", "prune-structured@0.5", "prune-l1@0.5"}
    assert table.loc["static-int8", "size_x"] >= 3.5
    assert table.loc["prune-structured@0.5", "params"] < table.loc["baseline", "params"] / 1.8
    assert ex.models["prune-structured@0.5"].features[0].out_channels == 3
    assert len(ex.figure.data[0].x) == 4
