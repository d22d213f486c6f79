"""Issue 11 item 7: an unknown strategy is refused first, with or without a cluster; garbage
bytes as a training checkpoint are called corrupt, not "pickled objects"."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from lepton_nb.errors import CheckpointError, LeptonError
from lepton_nb.models import MLP
from lepton_nb.train import fit
from lepton_nb.train.checkpoint import load_checkpoint


def test_bogus_strategy_without_a_cluster_is_refused_before_anything_runs() -> None:
    data = TensorDataset(torch.randn(8, 784), torch.randint(0, 10, (8,)))
    with pytest.raises(LeptonError, match=r"unknown strategy 'bogus'.*'ddp'"):
        fit(MLP(), data, strategy="bogus", epochs=1, progress=False)
    # checked before the other arguments, as with a cluster
    with pytest.raises(LeptonError, match="unknown strategy"):
        fit("not a model", None, strategy="bogus")


def test_garbage_checkpoint_is_corrupt_not_pickled(tmp_path: Path) -> None:
    for data in (b"", b"\x00\x01garbage" * 50):
        path = tmp_path / "latest.pt"
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match=r"latest\.pt is truncated or corrupt") as e:
            load_checkpoint(path)
        assert "pickled" not in str(e.value)
