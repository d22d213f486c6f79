"""The client-side event hub: de-duplication, batching, history order, callbacks."""

from __future__ import annotations

from typing import Any

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
    return {"kind": kind, "rank": rank, "step": step, "epoch": 0, "time": 1.0 + step,
            "attempt": attempt, **kw}


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
    assert rows == [(0, "step", 20, 0), (0, "step", 20, 1), (0, "epoch", 20, 0),
                    (1, "step", 5, 0), (1, "restart", 10, -1)]
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
