"""Mixed precision in-process: bf16 autocast works on CPU; fp16 is GPU-only."""

from __future__ import annotations

import pytest
import torch

from lepton_nb import datasets
from lepton_nb.models import MLP
from lepton_nb.train import fit


def test_bf16_autocast_on_cpu_learns() -> None:
    split = datasets.digits()
    res = fit(
        MLP(in_features=64, hidden=64),
        split.train,
        split.test,
        epochs=2,
        batch_size=32,
        lr=3e-3,
        precision="bf16",
        progress=False,
    )
    assert res.config["precision"] == "bf16"
    assert res.metrics["val_accuracy"] >= 0.85
    assert all(p.dtype == torch.float32 for p in res.model.parameters())  # master weights fp32


@pytest.mark.gpu
def test_fp16_with_grad_scaler_on_gpu() -> None:
    split = datasets.digits()
    res = fit(
        MLP(in_features=64, hidden=64),
        split.train,
        split.test,
        epochs=2,
        batch_size=32,
        lr=3e-3,
        precision="fp16",
        progress=False,
    )
    assert res.metrics["val_accuracy"] >= 0.85
