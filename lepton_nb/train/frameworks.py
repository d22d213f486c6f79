"""The framework registry of :func:`lepton_nb.train.run`: what a rank runs and how it starts.

- ``torch`` (default; alias ``pytorch``): ``train_fn(ctx)`` runs in the worker's task with
  torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, ...).
- ``tensorflow``: each rank in its own child process with ``TF_CONFIG`` for
  ``tf.distribute.MultiWorkerMirroredStrategy`` and ``TF_USE_LEGACY_KERAS=1`` (see
  :mod:`lepton_nb.train._tf`); recovery through Keras ``BackupAndRestore`` in
  ``ctx.checkpoint_dir``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from lepton_nb._registry import Registry
from lepton_nb.train import _tf
from lepton_nb.train.context import TrainContext

Body = Callable[[TrainContext, Any], Any]


@dataclass(frozen=True)
class Framework:
    """``require`` raises a LeptonError when the framework is not installed; ``body`` wraps the
    user's ``train_fn`` into a rank body; ``prepare(client, specs, payload)`` runs on the client
    once per attempt; ``location`` yields the checkpoint directory the ranks get;
    ``resume_step(dir)`` is where the restart marker goes."""

    name: str
    body: Callable[[Callable[[TrainContext], Any]], Body]
    require: Callable[[], None] = lambda: None
    prepare: Callable[[Any, list[Any], Any], Any] | None = None
    location: Callable[[str | None], Any] | None = None
    resume_step: Callable[[str | None], int] | None = None

    @contextmanager
    def checkpoint_location(self, checkpoint_dir: str | None) -> Iterator[str | None]:
        if self.location is None:
            yield checkpoint_dir
            return
        with self.location(checkpoint_dir) as where:
            yield where


def _call_user(train_fn: Callable[[TrainContext], Any], ctx: TrainContext, _: Any) -> Any:
    return train_fn(ctx)


def _torch_body(train_fn: Callable[[TrainContext], Any]) -> Body:
    return partial(_call_user, train_fn)


def _tf_body(train_fn: Callable[[TrainContext], Any]) -> Body:
    return partial(_tf.rank_body, train_fn)


FRAMEWORKS: Registry[Framework] = Registry("framework")
FRAMEWORKS.add("torch", Framework("torch", _torch_body))
FRAMEWORKS.add("pytorch", FRAMEWORKS.get("torch"))
FRAMEWORKS.add("tensorflow", Framework("tensorflow", _tf_body, require=_tf.require,
                                       prepare=_tf.prepare, location=_tf.checkpoint_location,
                                       resume_step=_tf.resume_step))

__all__ = ["FRAMEWORKS", "Framework"]
