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


class WorldChange(BaseException):
    """Raised in a rank at a checkpoint boundary when the driver re-forms the world (a worker
    joined or is retiring): the rank's task ends cleanly and the run continues from that
    boundary's checkpoint with the new world.  A BaseException, so a training loop's
    ``except Exception`` does not swallow it."""

    def __init__(self, step: int) -> None:
        super().__init__(f"world change at step {step}")
        self.step = step


def _value(v: Any) -> Any:
    """A relayed call's result (a rank process gets ``.result()`` objects), or ``v``."""
    return v.result() if hasattr(v, "result") else v


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
    elastic: Any = field(default=None, repr=False)  # the driver's stop flag (elastic runs)
    boundary_on_save: bool = field(default=False, repr=False)  # run(): saves are boundaries
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
            "world_size": self.world_size,
            **{k: _plain(v) for k, v in metrics.items()},
        }
        self.events.append(event)
        if self.sink is not None:
            self.sink(event)
        else:
            from distributed import get_worker

            get_worker().log_event(self.topic, event)
        return event

    def report(
        self, step: int | None = None, epoch: int | None = None, kind: str = "step", **metrics: Any
    ) -> None:
        """Send metrics (``loss=..., lr=...``) to the client's callbacks and the history."""
        if step is None:
            self._step += 1
            step = self._step
        else:
            self._step = int(step)
        self.emit(kind, step, epoch, **metrics)

    def save_checkpoint(self, state: dict[str, Any]) -> Path | str | None:
        """Rank 0 writes ``state`` atomically to ``<checkpoint_dir>/latest.pt`` (a local path
        or an fsspec URL such as ``s3://bucket/run``); other ranks skip.  In an elastic
        ``run`` every rank must call it at the same points: each save is a boundary where the
        world may be re-formed (the loop is left with :class:`WorldChange` and the next world
        resumes from :meth:`load_checkpoint`)."""
        out = None
        if self.checkpoint_dir is not None and self.rank == 0:
            out = save_checkpoint(state, latest_path(self.checkpoint_dir), self.storage_options)
        if self.boundary_on_save and self.world_boundary():
            raise WorldChange(self._step)
        return out

    def world_boundary(self) -> bool:
        """At a checkpoint boundary of an elastic run: True when the driver asked the ranks to
        stop here so it can re-form the world.  Rank 0 asks the driver's flag (one scheduler
        round trip) and broadcasts the answer, so every rank of a process group stops at the
        same step; call it at the same points on every rank.  False outside elastic runs."""
        if self.elastic is None:
            return False
        import torch
        import torch.distributed as dist

        stop = bool(_value(self.elastic.is_set())) if self.rank == 0 else False
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dev = self.device if dist.get_backend() == "nccl" else "cpu"
            flag = torch.tensor([1 if stop else 0], dtype=torch.int32, device=dev)
            dist.broadcast(flag, 0)
            stop = bool(flag.item())
        elif self.rank != 0:  # no group to share rank 0's answer: ask on our own
            stop = bool(_value(self.elastic.is_set()))
        return stop

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The latest checkpoint (loaded with ``weights_only=True``), or None if there is none."""
        return latest_state(self.checkpoint_dir, self.storage_options)


def torchrun_env(
    rank: int,
    world_size: int,
    local_rank: int,
    local_world: int,
    master_addr: str,
    master_port: int,
) -> dict[str, str]:
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


__all__ = ["TrainContext", "WorldChange", "event_topic", "pick_device", "torchrun_env"]
