"""Issue 11 item 7: an unknown strategy is refused first, with or without a cluster."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from lepton_nb.errors import LeptonError
from lepton_nb.models import MLP
from lepton_nb.train import fit


def test_bogus_strategy_without_a_cluster_is_refused_before_anything_runs() -> None:
    data = TensorDataset(torch.randn(8, 784), torch.randint(0, 10, (8,)))
    with pytest.raises(LeptonError, match=r"unknown strategy 'bogus'.*'ddp'"):
        fit(MLP(), data, strategy="bogus", epochs=1, progress=False)
    # checked before the other arguments, as with a cluster
    with pytest.raises(LeptonError, match="unknown strategy"):
        fit("not a model", None, strategy="bogus")
