"""Distillation runs distributed: fit's DDP ranks on the 2-worker cluster train the student."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from lepton_nb import compress
from lepton_nb.compress._data import accuracy
from lepton_nb.datasets import Split
from lepton_nb.models import MLP

pytestmark = pytest.mark.integration


def test_distill_on_the_cluster_with_ddp(
    cluster2: Any, trained_lenet: nn.Module, split: Split
) -> None:
    torch.manual_seed(0)
    student = MLP(hidden=32)
    before = accuracy(student, split.test)
    taught = compress.distill(trained_lenet, student, split.train, cluster=cluster2,
                              strategy="ddp", epochs=2, batch_size=64, lr=3e-3, progress=False,
                              checkpoint_every=10**9)  # fmt: skip
    assert taught.distill_metrics["world_size"] == 2
    assert taught.distill_metrics["strategy"] == "ddp"
    assert set(taught.distill_history["rank"].dropna().astype(int)) == {0, 1}
    assert accuracy(taught, split.test) > max(0.85, before + 0.5)
    assert isinstance(taught, MLP)
