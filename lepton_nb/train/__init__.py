"""Distributed training on the Dask cluster: ``fit`` for models, ``run`` for custom loops.

Strategies (registry :data:`STRATEGIES` of :class:`Strategy` objects): ``single``
(in-process), ``ddp`` (DistributedDataParallel, one pinned task per worker), ``ps-sync`` and
``ps-async`` (a Dask Actor parameter server).  Metrics stream to callbacks on the client;
checkpoints are atomic and load with ``weights_only=True``; a lost worker triggers a restart
from the last checkpoint, or, in an elastic run (``min_workers``/``max_workers``,
docs/elastic.md), a new world without it.
"""

from lepton_nb.train._api import FitResult, RunResult, choose_precision, fit, run
from lepton_nb.train._rendezvous import RankSpec
from lepton_nb.train.callbacks import Callback
from lepton_nb.train.checkpoint import load_checkpoint, save_checkpoint
from lepton_nb.train.config import LOSSES, OPTIMIZERS, FitConfig
from lepton_nb.train.context import TrainContext, WorldChange
from lepton_nb.train.frameworks import FRAMEWORKS, Framework
from lepton_nb.train.skeleton import RankLoop
from lepton_nb.train.strategies import STRATEGIES
from lepton_nb.train.strategy import FunctionStrategy, Strategy

__all__ = [
    "FRAMEWORKS",
    "LOSSES",
    "OPTIMIZERS",
    "STRATEGIES",
    "Callback",
    "FitConfig",
    "FitResult",
    "Framework",
    "FunctionStrategy",
    "RankLoop",
    "RankSpec",
    "RunResult",
    "Strategy",
    "TrainContext",
    "WorldChange",
    "choose_precision",
    "fit",
    "load_checkpoint",
    "run",
    "save_checkpoint",
]
