"""Imported by a worker's rank fork server (:mod:`lepton_nb.train._procs`) so every rank forked
from it starts warm: torch and the train modules imported, DDP's lazy imports done
(``torch._dynamo`` and its dependencies: ~800 modules, seconds on 2 cores, paid by the first
``DistributedDataParallel(...)`` of a process), and the common CPU kernels (convolution,
linear, cross-entropy, Adam) run once.  One thread only: the fork server must not start a
thread pool, or forking it would be unsafe.
"""

from __future__ import annotations

import torch
import torch._dynamo  # what DistributedDataParallel.__init__ imports lazily
import torch.distributed
import torch.nn.functional as F
import torch.nn.parallel
from torch import nn

import lepton_nb.models
import lepton_nb.train.strategies  # noqa: F401


def _warm_kernels() -> None:
    torch.set_num_threads(1)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 10)
    )
    opt = torch.optim.Adam(net.parameters())
    x, y = torch.randn(2, 1, 8, 8), torch.tensor([1, 2])
    F.cross_entropy(net(x), y).backward()
    opt.step()


_warm_kernels()

__all__: list[str] = []
