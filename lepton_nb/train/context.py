"""What a rank sees: :class:`TrainContext` (rank, device, report, checkpoints).

Metric events leave a rank through ``distributed.get_worker().log_event(topic, msg)`` when the
rank runs in a Dask task (the client subscribes to the topic), or through an in-process sink for
the ``single`` strategy.  Every event is also kept in ``ctx.events`` and returned with the
rank's result, so the history is complete even if a streamed event arrives late.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lepton_nb.train.callbacks import Event
from lepton_nb.train.checkpoint import latest_path, latest_state, save_checkpoint

Sink = Callable[[Event], None]


def _plain(v: Any) -> Any:
    """Make a metric msgpack-able (tensors and numpy scalars become Python numbers)."""
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    item = getattr(v, "item", None)
    if callable(item):
        return item()
    return str(v)


def event_topic(run_id: str) -> str:
    """The Dask event topic a run's ranks log to and its driver subscribes to."""
    return f"lepton-train-{run_id}"


@dataclass
class TrainContext:
    """Handed to ``train_fn(ctx)`` by :func:`lepton_nb.train.run` (and used by ``fit``)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: Any = "cpu"
    run_id: str = ""
    attempt: int = 0
    checkpoint_dir: str | None = None
    worker_address: str | None = None
    storage_options: dict[str, Any] | None = field(default=None, repr=False)
    events: list[Event] = field(default_factory=list, repr=False)
    sink: Sink | None = field(default=None, repr=False)
    _step: int = field(default=0, repr=False)

    @property
    def topic(self) -> str:
        return event_topic(self.run_id)

    def emit(self, kind: str, step: int, epoch: int | None, **metrics: Any) -> Event:
        event: Event = {
            "kind": kind,
            "rank": self.rank,
            "step": int(step),
            "epoch": epoch,
            "time": time.time(),
            "attempt": self.attempt,
            **{k: _plain(v) for k, v in metrics.items()},
        }
        self.events.append(event)
        if self.sink is not None:
            self.sink(event)
        else:
            from distributed import get_worker

            get_worker().log_event(self.topic, event)
        return event

    def report(self, step: int | None = None, epoch: int | None = None, kind: str = "step",
               **metrics: Any) -> None:
        """Send metrics (``loss=..., lr=...``) to the client's callbacks and the history."""
        if step is None:
            self._step += 1
            step = self._step
        else:
            self._step = int(step)
        self.emit(kind, step, epoch, **metrics)

    def save_checkpoint(self, state: dict[str, Any]) -> Path | str | None:
        """Rank 0 writes ``state`` atomically to ``<checkpoint_dir>/latest.pt`` (a local path
        or an fsspec URL such as ``s3://bucket/run``); other ranks skip."""
        if self.checkpoint_dir is None or self.rank != 0:
            return None
        return save_checkpoint(state, latest_path(self.checkpoint_dir), self.storage_options)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The latest checkpoint (loaded with ``weights_only=True``), or None if there is none."""
        return latest_state(self.checkpoint_dir, self.storage_options)


def torchrun_env(rank: int, world_size: int, local_rank: int, local_world: int,
                 master_addr: str, master_port: int) -> dict[str, str]:
    return {
        "RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_RANK": str(local_rank),
        "LOCAL_WORLD_SIZE": str(local_world),
        "GROUP_RANK": "0",
        "MASTER_ADDR": master_addr,
        "MASTER_PORT": str(master_port),
    }


def pick_device(local_rank: int, own_first: bool = False) -> Any:
    """See :func:`lepton_nb.train._gpu.pick_device`."""
    from lepton_nb.train._gpu import pick_device as pick

    return pick(local_rank, own_first)


__all__ = ["TrainContext", "event_topic", "pick_device", "torchrun_env"]
