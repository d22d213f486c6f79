"""The framework registry of :func:`lepton_nb.train.run`: which strategy runs ``train_fn``.

- ``torch`` (default; alias ``pytorch``): :class:`~lepton_nb.train.strategy.FunctionStrategy`,
  ``train_fn(ctx)`` in a child process of the worker (:mod:`lepton_nb.train._procs`) with
  torchrun's environment (RANK, MASTER_ADDR, ...).
- ``tensorflow``: :class:`~lepton_nb.train._tf.KerasStrategy`, each rank in its own child
  process with ``TF_CONFIG`` for ``tf.distribute.MultiWorkerMirroredStrategy`` and
  ``TF_USE_LEGACY_KERAS=1``; recovery through Keras ``BackupAndRestore`` in
  ``ctx.checkpoint_dir`` (a temporary directory when none is given).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from lepton_nb._registry import Registry
from lepton_nb.train import _tf
from lepton_nb.train.strategy import FunctionStrategy, Strategy


@dataclass(frozen=True)
class Framework:
    """``strategy(train_fn)`` builds the run's strategy; ``require()`` raises a LeptonError
    naming what to install when the framework is missing; ``location(checkpoint_dir)`` is a
    context manager yielding the directory the ranks get as ``ctx.checkpoint_dir``."""

    name: str
    strategy: Callable[[Callable[..., Any]], Strategy]
    require: Callable[[], None] = lambda: None
    location: Callable[[str | None], AbstractContextManager[str | None]] = nullcontext

    @contextmanager
    def checkpoint_location(self, checkpoint_dir: str | None) -> Iterator[str | None]:
        with self.location(checkpoint_dir) as where:
            yield where


FRAMEWORKS: Registry[Framework] = Registry("framework")
FRAMEWORKS.add("torch", Framework("torch", FunctionStrategy))
FRAMEWORKS.add("pytorch", FRAMEWORKS.get("torch"))
FRAMEWORKS.add(
    "tensorflow",
    Framework(
        "tensorflow", _tf.KerasStrategy, require=_tf.require, location=_tf.checkpoint_location
    ),
)

__all__ = ["FRAMEWORKS", "Framework"]
