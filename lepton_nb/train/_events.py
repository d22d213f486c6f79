"""Client side of the metric stream: collect, coalesce, dispatch to callbacks, draw progress.

Events arrive on the Dask client's event-loop thread (``subscribe_topic`` handler) or from an
in-process rank; they are queued and handed to callbacks in batches from the thread that runs
``fit``, so callbacks never run concurrently with each other.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Sequence
from typing import Any

from lepton_nb.errors import ConfigError
from lepton_nb.train.callbacks import Callback, Event

_COLUMNS = [
    "kind",
    "attempt",
    "step",
    "epoch",
    "rank",
    "world_size",
    "time",
    "loss",
    "samples_per_s",
    "lr",
    "val_loss",
    "val_accuracy",
]
# Within one (attempt, step): a step's rows, its epoch row, then the markers of what happened
# after it (a restart or a world change continues from that step).
_ORDER = {"step": 0, "epoch": 1, "restart": 2, "world": 2, "log": 3}


def _key(e: Event) -> tuple[Any, ...]:
    return (e.get("attempt", 0), e.get("kind"), e.get("rank"), e.get("step"), e.get("epoch"))


def check_callbacks(callbacks: Sequence[Any]) -> list[Callback]:
    out = []
    for cb in callbacks:
        if not all(
            callable(getattr(cb, m, None)) for m in ("on_train_start", "on_events", "on_train_end")
        ):
            raise ConfigError(
                f"callback {cb!r} lacks on_train_start/on_events/on_train_end; subclass "
                "lepton_nb.train.callbacks.Callback"
            )
        out.append(cb)
    return out


def _is_widget(cb: Any) -> bool:
    return hasattr(cb, "_repr_mimebundle_") or hasattr(cb, "_ipython_display_")


class EventHub:
    """Queue + history + callback dispatch (at most every ``interval`` seconds)."""

    def __init__(
        self,
        callbacks: Sequence[Callback],
        progress: bool | None,
        total_steps: int | None,
        interval: float = 0.2,
    ) -> None:
        self.callbacks = list(callbacks)
        self.interval = interval
        self._queue: collections.deque[Event] = collections.deque()
        self._seen: set[tuple[Any, ...]] = set()
        self.events: list[Event] = []
        self._last = 0.0
        self._lock = threading.Lock()
        show = progress if progress is not None else not any(_is_widget(c) for c in callbacks)
        self._bar: Any = None
        if show:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total_steps, desc="training", unit="step", leave=True)
        self._bar_step = 0
        self._world: int | None = None
        self._world_attempt = 0
        self._loss: str | None = None

    def push(self, event: Event) -> None:
        self._queue.append(event)

    def on_dask_event(self, event: tuple[float, Event | Sequence[Event]]) -> None:
        msg = event[1]
        if not isinstance(msg, dict):  # a batch (ranks in a child process send these; msgpack
            # may hand a list back as a tuple)
            self._queue.extend(msg)
        else:
            self._queue.append(msg)

    def start(self, info: dict[str, Any]) -> None:
        if isinstance(info.get("world_size"), int):
            self._world = info["world_size"]
            if self._bar is not None:  # shown from the start, before the first loss arrives
                self._bar.set_postfix(world=str(self._world), refresh=False)
        for cb in self.callbacks:
            cb.on_train_start(info)

    def drain(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        batch: list[Event] = []
        with self._lock:
            while self._queue:
                e = self._queue.popleft()
                k = _key(e)
                if k in self._seen:
                    continue
                self._seen.add(k)
                batch.append(e)
            self.events.extend(batch)
        if not batch:
            return
        for cb in self.callbacks:
            cb.on_events(batch)
        self._progress(batch)

    def merge(self, events: Sequence[Event]) -> None:
        """Add a rank's own record of its events (any the stream has not delivered yet)."""
        for e in events:
            self.push(e)

    def _progress(self, batch: list[Event]) -> None:
        if self._bar is None:
            return
        # the world size of the newest generation seen: a straggling event of the world
        # before a change must not set it back
        for e in batch:
            size = e.get("new_size") if e.get("kind") == "world" else e.get("world_size")
            if isinstance(size, int) and e.get("attempt", 0) >= self._world_attempt:
                self._world, self._world_attempt = size, e.get("attempt", 0)
        steps = [e["step"] for e in batch if e.get("kind") == "step" and e.get("rank") == 0]
        if steps and max(steps) > self._bar_step:
            self._bar.update(max(steps) - self._bar_step)
            self._bar_step = max(steps)
        last = next((e for e in reversed(batch) if e.get("loss") is not None), None)
        if last is not None:
            self._loss = f"{last['loss']:.4f}"
        postfix = {"loss": self._loss} if self._loss is not None else {}
        if self._world is not None:
            postfix["world"] = str(self._world)
        if postfix:
            self._bar.set_postfix(postfix, refresh=False)

    def restart_marker(self, attempt: int, reason: str, step: int) -> None:
        self.push(
            {
                "kind": "restart",
                "rank": -1,
                "step": step,
                "epoch": None,
                "time": time.time(),
                "attempt": attempt,
                "reason": reason,
            }
        )
        self._bar_step = min(self._bar_step, step)
        self.drain(force=True)

    def world_marker(
        self, attempt: int, old_size: int, new_size: int, reason: str, step: int
    ) -> None:
        """Record a world change: the run continues from ``step`` as generation ``attempt``
        with ``new_size`` ranks (``reason``: "worker joined: tcp://...", "worker retired:
        ...", "worker lost: ...").  Not a restart: ``restart`` is False and restarts are
        counted by ``kind == "restart"`` rows only."""
        self.push(
            {
                "kind": "world",
                "rank": -1,
                "step": step,
                "epoch": None,
                "time": time.time(),
                "attempt": attempt,
                "old_size": old_size,
                "new_size": new_size,
                "reason": reason,
                "restart": False,
            }
        )
        # Like a restart, steps after ``step`` are redone (a grow at a checkpoint boundary
        # redoes none); the bar counts forward from wherever rank 0 reports next.
        self._bar_step = min(self._bar_step, step)
        self.drain(force=True)

    def history(self) -> Any:
        import pandas as pd

        df = pd.DataFrame(self.events)
        for col in _COLUMNS:
            if col not in df.columns:
                df[col] = None
        extra = [c for c in df.columns if c not in _COLUMNS]
        df = df[_COLUMNS + extra]
        # a world row's size is the new world's, so the column reads as "size from here on"
        world = df["kind"] == "world"
        if world.any() and "new_size" in df.columns:
            df.loc[world, "world_size"] = df.loc[world, "new_size"]
        # whole numbers, blank where unknown (restart and log rows, old-style events)
        for col in ("world_size", "old_size", "new_size"):
            if col in df.columns:
                df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
        df["_o"] = df["kind"].map(_ORDER).fillna(4)
        df = df.sort_values(["attempt", "step", "_o", "rank"], kind="stable")
        return df.drop(columns="_o").reset_index(drop=True)

    def end(self, info: dict[str, Any]) -> None:
        self.drain(force=True)
        if self._bar is not None:
            self._bar.close()
        for cb in self.callbacks:
            cb.on_train_end(info)


__all__ = ["EventHub", "check_callbacks"]
