"""Small models trained once per session on the shipped MNIST subset."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lepton_nb.datasets import Split, mnist
from lepton_nb.models import MLP, LeNet5


def train_quick(
    model: nn.Module,
    data: TensorDataset,
    epochs: int,
    seed: int = 0,
    lr: float = 1e-3,
    bs: int = 64,
) -> nn.Module:
    """A plain training loop for fixtures (the code under test never uses it)."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loader = DataLoader(
        data, batch_size=bs, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def split() -> Split:
    return mnist()


@pytest.fixture(scope="session")
def trained_mlp(split: Split) -> nn.Module:
    torch.manual_seed(0)
    return train_quick(MLP(), split.train, epochs=4, lr=3e-3, bs=32)


@pytest.fixture(scope="session")
def trained_lenet(split: Split) -> nn.Module:
    torch.manual_seed(0)
    return train_quick(LeNet5(), split.train, epochs=3, lr=3e-3, bs=32)


@pytest.fixture(scope="session")
def calib(split: Split) -> torch.Tensor:
    return split.train.tensors[0][:1000]

