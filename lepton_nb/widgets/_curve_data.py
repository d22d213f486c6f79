"""The model behind LossCurve: metric events in, trace arrays out.

Pure numpy (no plotly, no ipywidgets) so it is testable without a frontend and cheap to feed:
every append is amortised O(1), and the arrays stay sorted by step so drawing never sorts.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lepton_nb.widgets._curve_series import EmaCache, Series, StepAgg, downsample

# Keys that describe an event rather than measure something; DESCRIPTIVE ones are kept in
# the history.  ``worker`` is the sender's address, which the scheduler adds to every event a
# worker relays one at a time (``Scheduler.log_worker_event``): not a metric, not a bad value.
DESCRIPTIVE = frozenset(
    {"attempt", "reason", "message", "worker", "world_size", "old_size", "new_size", "restart"}
)
RESERVED = frozenset({"kind", "rank", "step", "epoch", "time"}) | DESCRIPTIVE
# metric -> (panel, secondary y axis); anything else goes on the second panel's primary axis.
PLACEMENT: dict[str, tuple[int, bool]] = {
    "loss": (1, False),
    "val_loss": (1, False),
    "val_accuracy": (1, True),
    "samples_per_s": (2, False),
    "lr": (2, True),
}
# Throughput adds up over ranks; every other metric is averaged over them.
SUMMED = frozenset({"samples_per_s"})


@dataclass(frozen=True)
class TraceInfo:
    """What one plotly trace shows; ``key`` is stable for the life of a curve."""

    key: str
    name: str
    role: str  # "rank" | "mean" | "smoothed" | "epoch" | "metric"
    panel: int
    secondary: bool
    rank: int | None = None


@dataclass(frozen=True)
class Mark:
    step: float
    label: str  # "epoch 3" | "restart" | "restart (attempt 2)" | "world 1→2"
    kind: str  # "epoch" | "restart" | "world"


def to_number(value: Any) -> float | None:
    """A finite float, or None for anything that cannot be drawn (str, None, NaN, inf, ...)."""
    if isinstance(value, str | bytes) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass
class CurveData:
    """Every event ever seen (``columns``) plus the per-rank and per-step series drawn from
    them.  Events are kept column-wise: 100k-step runs would otherwise hold ~10^5 dicts that
    every full garbage collection walks, a pause that lands in the middle of a redraw."""

    columns: dict[str, list[Any]] = field(default_factory=dict)
    n_rows: int = 0
    bad_values: Counter[str] = field(default_factory=Counter)
    marks: list[Mark] = field(default_factory=list)
    version: int = 0
    marks_version: int = 0
    _rank: dict[tuple[str, int], Series] = field(default_factory=dict)
    _agg: dict[str, StepAgg] = field(default_factory=dict)
    _epoch: dict[str, StepAgg] = field(default_factory=dict)
    _last_step: dict[int, float] = field(default_factory=dict)
    _attempt: dict[int, int] = field(default_factory=dict)
    _epoch_steps: set[float] = field(default_factory=set)
    _ema: dict[str, EmaCache] = field(default_factory=dict)
    _announced: set[int] = field(default_factory=set)  # ranks a restart event already marked
    _world: tuple[int, int] | None = None  # (attempt, size) of the newest generation seen
    _cut: tuple[int, float] | None = None  # (attempt, step) of the latest world change

    # ---- ingest -------------------------------------------------------------------------
    def ingest(self, events: list[dict[str, Any]]) -> int:
        """Add a batch of events; returns how many were usable (the rest are counted as bad)."""
        used = 0
        for event in events:
            used += self._ingest_one(event)
        if used:
            self.version += 1
        return used

    def _ingest_one(self, event: dict[str, Any]) -> int:
        kind = str(event.get("kind", "step"))
        step = to_number(event.get("step"))
        if step is None:
            self.bad_values["step"] += 1
            return 0
        rank_num = to_number(event.get("rank", 0))
        rank = int(rank_num) if rank_num is not None else 0
        row: dict[str, Any] = {"kind": kind, "rank": rank, "step": int(step)}
        row["epoch"] = event.get("epoch")
        row["time"] = event.get("time")
        metrics: dict[str, float] = {}
        for key, value in event.items():
            if key in RESERVED:
                if key in DESCRIPTIVE:
                    row[key] = value
                continue
            number = to_number(value)
            if number is None:
                self.bad_values[key] += 1
            metrics[key] = number if number is not None else math.nan
        row.update(metrics)
        self._append_row(row)
        attempt = to_number(event.get("attempt"))
        if kind == "step":
            cut = self._cut
            if cut is not None and attempt is not None and attempt < cut[0] and step > cut[1]:
                return 1  # an old world's straggler past the change: in the history, not drawn
            self._add_step(rank, step, metrics, None if attempt is None else int(attempt))
            self._note_world(attempt, event.get("world_size"))
        elif kind == "epoch":
            self._add_epoch(step, event.get("epoch"), metrics)
        elif kind == "restart":
            attempt = event.get("attempt")
            label = f"restart (attempt {attempt})" if attempt is not None else "restart"
            self._mark(step, label, "restart")
            self._announced = set(self._last_step)
        elif kind == "world":
            old, new = event.get("old_size"), event.get("new_size")
            self._mark(step, f"world {old}\u2192{new}", "world")
            # the ranks continue as a new generation: that is this change, not a restart
            self._announced = set(self._last_step)
            self._note_world(attempt, new)
            # training continues after ``step``: what the old world did past it is redone
            # (or lost, for a rank that left, which would never rewind its own line)
            if attempt is not None:
                self._cut = (int(attempt), step)
            for r in list(self._last_step):
                if self._last_step[r] > step:
                    self._truncate(r, step + 0.5)
                    self._last_step[r] = step
        return 1

    def _note_world(self, attempt: float | None, size: Any) -> None:
        size_num = to_number(size)
        if size_num is None:
            return
        generation = int(attempt) if attempt is not None else 0
        if self._world is None or generation >= self._world[0]:  # not an old world's straggler
            self._world = (generation, int(size_num))

    def _append_row(self, row: dict[str, Any]) -> None:
        cols = self.columns
        for key, value in row.items():
            col = cols.get(key)
            if col is None:
                cols[key] = col = [None] * self.n_rows
            col.append(value)
        self.n_rows += 1
        if len(row) < len(cols):
            for col in cols.values():
                if len(col) < self.n_rows:
                    col.append(None)

    def _add_step(
        self, rank: int, step: float, metrics: dict[str, float], attempt: int | None
    ) -> None:
        last = self._last_step.get(rank)
        previous = self._attempt.get(rank)
        new_attempt = attempt is not None and previous is not None and attempt > previous
        if last is not None and (step < last or new_attempt):
            self._rewind(rank, step)
        self._last_step[rank] = step
        if attempt is not None:
            self._attempt[rank] = attempt
        for key, value in metrics.items():
            series = self._rank.get((key, rank))
            if series is None:
                series = self._rank[(key, rank)] = Series()
            series.append(step, value)
            self._agg.setdefault(key, StepAgg()).add(step, value)

    def _rewind(self, rank: int, step: float) -> None:
        """A rank went back in steps (recovery from a checkpoint): drop what it will redo."""
        if rank not in self._announced and not any(
            m.kind in ("restart", "world") and m.step == step for m in self.marks
        ):
            self._mark(step, "restart", "restart")
        self._announced.discard(rank)
        self._truncate(rank, step)

    def _truncate(self, rank: int, step: float) -> None:
        """Drop a rank's points at steps >= ``step`` from its lines and the per-step means."""
        for (key, r), series in self._rank.items():
            if r != rank:
                continue
            xs, ys = series.truncate_from(step)
            agg = self._agg[key]
            for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
                agg.remove(x, y)

    def _add_epoch(self, step: float, epoch: Any, metrics: dict[str, float]) -> None:
        if step not in self._epoch_steps:
            self._epoch_steps.add(step)
            self._mark(step, f"epoch {epoch}" if epoch is not None else "epoch", "epoch")
        for key, value in metrics.items():
            self._epoch.setdefault(key, StepAgg()).add(step, value)

    def _mark(self, step: float, label: str, kind: str) -> None:
        self.marks.append(Mark(step, label, kind))
        self.marks_version += 1

    # ---- queries ------------------------------------------------------------------------
    @property
    def ranks(self) -> list[int]:
        return sorted(self._last_step)

    @property
    def last_step(self) -> int | None:
        return int(max(self._last_step.values())) if self._last_step else None

    @property
    def restarts(self) -> int:
        return sum(1 for m in self.marks if m.kind == "restart")

    @property
    def world_changes(self) -> int:
        return sum(1 for m in self.marks if m.kind == "world")

    @property
    def world_size(self) -> int | None:
        """Ranks in the newest generation, when events say (``world_size``/world rows)."""
        return self._world[1] if self._world is not None else None

    def traces(self) -> list[TraceInfo]:
        """The traces to draw, in a stable order (new metrics append at the end)."""
        out: list[TraceInfo] = []
        for key, rank in sorted(self._rank, key=lambda kr: (kr[0] != "loss", kr)):
            if key == "loss":
                out.append(TraceInfo(f"rank{rank}:loss", f"rank {rank}", "rank", 1, False, rank))
        for key in sorted(self._agg, key=lambda k: k != "loss"):
            panel, secondary = PLACEMENT.get(key, (2, False))
            if key == "loss":
                out.append(TraceInfo("mean:loss", "mean loss", "mean", 1, False))
                out.append(TraceInfo("ema:loss", "mean loss (smoothed)", "smoothed", 1, False))
            else:
                name = f"{key} (sum of ranks)" if key in SUMMED else key
                out.append(TraceInfo(f"step:{key}", name, "metric", panel, secondary))
        for key in self._epoch:
            panel, secondary = PLACEMENT.get(key, (2, False))
            out.append(TraceInfo(f"epoch:{key}", f"{key} (epoch)", "epoch", panel, secondary))
        return out

    def series_version(self, info: TraceInfo) -> int:
        return self._source(info).version

    def _source(self, info: TraceInfo) -> Series | StepAgg:
        kind, _, key = info.key.partition(":")
        if info.role == "rank":
            return self._rank[(key, int(kind[4:]))]
        if info.role == "epoch":
            return self._epoch[key]
        return self._agg[key]

    def xy(
        self, info: TraceInfo, smoothing: float = 0.0, max_points: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Arrays for one trace: smoothed (rank lines and the bold mean) and downsampled."""
        source = self._source(info)
        key = info.key.partition(":")[2]
        if isinstance(source, Series):
            x, y = source.view()
        elif key in SUMMED and info.role != "epoch":
            x, y = source.sums()
        else:
            x, y = source.means()
        if info.role in ("rank", "smoothed") and smoothing > 0:
            cache = self._ema.get(info.key)
            if cache is None:
                cache = self._ema[info.key] = EmaCache()
            y = cache.smooth(y, smoothing, source.epoch)
        if max_points is not None and len(x) > max_points:
            x, y = downsample(x, y, max_points)
        return x, y


__all__ = [
    "DESCRIPTIVE",
    "PLACEMENT",
    "RESERVED",
    "SUMMED",
    "CurveData",
    "Mark",
    "TraceInfo",
    "to_number",
]
