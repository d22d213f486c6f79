"""The client-side event hub: de-duplication, batching, history order, callbacks."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from lepton_nb.errors import ConfigError
from lepton_nb.train import Callback
from lepton_nb.train._events import EventHub, check_callbacks


class Rec(Callback):
    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.start: dict[str, Any] = {}
        self.end: dict[str, Any] = {}

    def on_train_start(self, info: dict[str, Any]) -> None:
        self.start = info

    def on_events(self, events: list[dict[str, Any]]) -> None:
        self.batches.append(list(events))

    def on_train_end(self, info: dict[str, Any]) -> None:
        self.end = info


def ev(step: int, rank: int = 0, kind: str = "step", attempt: int = 0, **kw: Any) -> dict:
    return {
        "kind": kind,
        "rank": rank,
        "step": step,
        "epoch": 0,
        "time": 1.0 + step,
        "attempt": attempt,
        **kw,
    }


def test_events_are_deduplicated_and_batched() -> None:
    rec = Rec()
    hub = EventHub([rec], progress=False, total_steps=None, interval=3600)
    hub.push(ev(10, loss=2.0))
    hub.on_dask_event((0.0, ev(10, rank=1, loss=2.1)))  # subscribe_topic's (time, msg)
    hub.drain(force=True)
    hub.push(ev(20, loss=1.0))
    hub.drain()  # within the interval: held back
    assert [len(b) for b in rec.batches] == [2]
    # the rank's own record arrives again with the result: only the unseen one is new
    hub.merge([ev(10, loss=2.0), ev(10, rank=1, loss=2.1), ev(20, loss=1.0), ev(30, loss=0.5)])
    hub.drain(force=True)
    assert [len(b) for b in rec.batches] == [2, 2]
    assert [e["step"] for e in hub.events] == [10, 10, 20, 30]


def test_history_orders_attempts_steps_and_kinds() -> None:
    hub = EventHub([], progress=False, total_steps=None)
    hub.push(ev(20, kind="epoch", val_loss=0.3))
    hub.push(ev(20, rank=1))
    hub.push(ev(20))
    hub.push(ev(5, attempt=1))
    hub.restart_marker(1, "lost worker", step=10)
    h = hub.history()
    assert list(h.columns[:5]) == ["kind", "attempt", "step", "epoch", "rank"]
    rows = list(zip(h.attempt, h.kind, h.step, h["rank"], strict=True))
    assert rows == [
        (0, "step", 20, 0),
        (0, "step", 20, 1),
        (0, "epoch", 20, 0),
        (1, "step", 5, 0),
        (1, "restart", 10, -1),
    ]
    assert h.loc[h.kind == "restart", "reason"].item() == "lost worker"
    assert h.val_accuracy.isna().all()  # every standard column exists


def test_start_end_and_bad_callbacks() -> None:
    rec = Rec()
    hub = EventHub([rec], progress=False, total_steps=3)
    hub.start({"strategy": "ddp"})
    hub.push(ev(1))
    hub.end({"status": "succeeded"})  # end drains what is left first
    assert rec.start == {"strategy": "ddp"} and rec.end == {"status": "succeeded"}
    assert len(rec.batches) == 1
    with pytest.raises(ConfigError, match="lacks on_train_start"):
        check_callbacks([object()])


def test_world_rows_and_the_world_size_column() -> None:
    hub = EventHub([], progress=False, total_steps=None)
    hub.push(ev(10, world_size=1))
    hub.world_marker(1, 1, 2, "worker joined: tcp://127.0.0.1:4", step=10)
    hub.push(ev(12, attempt=1, world_size=2))
    hub.push(ev(12, rank=1, attempt=1, world_size=2))
    hub.restart_marker(2, "lost worker", step=10)
    hub.push(ev(12, attempt=2, world_size=2))
    hub.drain(force=True)
    h = hub.history()
    assert list(h.columns[:6]) == ["kind", "attempt", "step", "epoch", "rank", "world_size"]
    sizes = [None if pd.isna(w) else int(w) for w in h.world_size]
    rows = list(zip(h.attempt, h.kind, h.step, h["rank"], sizes, strict=True))
    # the world row sorts where a restart row would: before the new generation's steps
    assert rows == [
        (0, "step", 10, 0, 1),
        (1, "world", 10, -1, 2),
        (1, "step", 12, 0, 2),
        (1, "step", 12, 1, 2),
        (2, "restart", 10, -1, None),
        (2, "step", 12, 0, 2),
    ]
    world = h[h.kind == "world"].iloc[0]
    assert (world.old_size, world.new_size, world.restart) == (1, 2, False)
    assert str(h.old_size.dtype) == "Int64"  # shown as 1 -> 2, not 1.0 -> 2.0
    assert world.reason == "worker joined: tcp://127.0.0.1:4"
    assert (h.kind == "restart").sum() == 1  # a world change is not a restart


def test_progress_bar_shows_the_world_size_and_keeps_its_place() -> None:
    hub = EventHub([], progress=True, total_steps=100)
    hub.start({"world_size": 1})
    assert hub._bar.postfix == "world=1"
    hub.push(ev(20, world_size=1, loss=0.5))
    hub.drain(force=True)
    assert hub._bar.n == 20 and hub._bar.postfix == "loss=0.5000, world=1"
    hub.world_marker(1, 1, 2, "worker joined: tcp://127.0.0.1:4", step=20)
    assert hub._bar.postfix == "loss=0.5000, world=2" and hub._bar.n == 20
    # a straggler of the old world, then the new world's ranks: the bar neither goes back
    # nor counts the step twice, and the size stays the new one
    hub.push(ev(20, rank=0, world_size=1, loss=0.4))
    hub.push(ev(25, attempt=1, world_size=2, loss=0.3))
    hub.push(ev(25, rank=1, attempt=1, world_size=2, loss=0.3))
    hub.drain(force=True)
    assert hub._bar.n == 25 and hub._bar.postfix == "loss=0.3000, world=2"
    # shrinking back to the last checkpoint: steps after it are redone, the bar counts on
    hub.world_marker(2, 2, 1, "worker lost: tcp://127.0.0.1:4", step=20)
    hub.push(ev(22, attempt=2, world_size=1, loss=0.3))
    hub.drain(force=True)
    assert hub._bar.n == 27 and hub._bar.postfix.endswith("world=1")
    hub.end({})
