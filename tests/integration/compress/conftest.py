"""A LeNet5 trained once per session on the shipped MNIST subset (fixture-only training loop)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from lepton_nb.datasets import Split, mnist
from lepton_nb.models import LeNet5


@pytest.fixture(scope="session")
def split() -> Split:
    return mnist()


@pytest.fixture(scope="session")
def trained_lenet(split: Split) -> nn.Module:
    torch.manual_seed(0)
    model = LeNet5()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(split.train, batch_size=32, shuffle=True,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    for _ in range(3):
        for x, y in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model.eval()
