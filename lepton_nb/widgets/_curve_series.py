"""Growable, step-sorted numpy series and the array maths LossCurve draws with."""

from __future__ import annotations

import math

import numpy as np


class Series:
    """(step, value) pairs of one rank, sorted by step; NaN values are kept as gaps."""

    __slots__ = ("_x", "_y", "epoch", "n", "version")

    def __init__(self) -> None:
        self._x = np.empty(256)
        self._y = np.empty(256)
        self.n = 0
        self.version = 0  # bumped on every change: the widget redraws a trace when it moves
        self.epoch = 0  # bumped when anything but the tail changed: cached EMAs are stale

    def append(self, x: float, y: float) -> None:
        if self.n == len(self._x):  # double: appends stay amortised O(1) on 100k-step runs
            self._x = np.concatenate([self._x, np.empty(self.n)])
            self._y = np.concatenate([self._y, np.empty(self.n)])
        self._x[self.n] = x
        self._y[self.n] = y
        self.n += 1
        self.version += 1

    def truncate_from(self, x: float) -> tuple[np.ndarray, np.ndarray]:
        """Drop every point at step >= x and return them (the caller un-counts them)."""
        cut = int(np.searchsorted(self._x[: self.n], x, side="left"))
        dropped = (self._x[cut : self.n].copy(), self._y[cut : self.n].copy())
        if cut < self.n:
            self.n = cut
            self.version += 1
            self.epoch += 1
        return dropped

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        return self._x[: self.n], self._y[: self.n]


class StepAgg:
    """Sum and count of values per step over ranks, sorted by step.

    Ranks of a synchronous run report the same steps in order, so nearly every add hits the
    last step or appends; an out-of-order step (async ranks) costs one insert.  ``_t`` counts
    every report, NaN included: a step whose reports were all NaN is a gap, while a step whose
    reports were all withdrawn (a rank rewound after a restart) is not drawn at all.
    """

    __slots__ = ("_c", "_m", "_s", "_t", "_x", "epoch", "n", "version", "withdrawn")

    def __init__(self) -> None:
        self._x = np.empty(256)
        self._s = np.zeros(256)
        self._m = np.full(256, np.nan)  # mean kept per add: drawing never divides 10^5 sums
        self._c = np.zeros(256, dtype=np.int64)
        self._t = np.zeros(256, dtype=np.int64)
        self.withdrawn = 0  # steps whose every report was removed (t == 0)
        self.n = 0
        self.version = 0
        self.epoch = 0

    def _index(self, x: float) -> int:
        n = self.n
        if n and self._x[n - 1] == x:
            return n - 1
        if n == 0 or x > self._x[n - 1]:
            pos = n
        else:
            pos = int(np.searchsorted(self._x[:n], x, side="left"))
            if self._x[pos] == x:
                return pos
        if n == len(self._x):
            self._x = np.concatenate([self._x, np.empty(n)])
            self._s = np.concatenate([self._s, np.zeros(n)])
            self._m = np.concatenate([self._m, np.full(n, np.nan)])
            self._c = np.concatenate([self._c, np.zeros(n, dtype=np.int64)])
            self._t = np.concatenate([self._t, np.zeros(n, dtype=np.int64)])
        if pos < n:
            self.epoch += 1
            for arr in (self._x, self._s, self._m, self._c, self._t):
                arr[pos + 1 : n + 1] = arr[pos:n].copy()
        self._x[pos], self._s[pos], self._m[pos], self._c[pos], self._t[pos] = x, 0, np.nan, 0, 0
        self.withdrawn += 1  # until add() counts its first report
        self.n += 1
        return pos

    def add(self, x: float, y: float) -> None:
        i = self._index(x)
        if self._t[i] == 0:
            self.withdrawn -= 1
            if i < self.n - 1:  # a withdrawn step comes back mid-series
                self.epoch += 1
        self._t[i] += 1
        if not math.isnan(y):
            self._s[i] += y
            self._c[i] += 1
            self._m[i] = self._s[i] / self._c[i]
        self.version += 1

    def remove(self, x: float, y: float) -> None:
        if self.n == 0:
            return
        i = int(np.searchsorted(self._x[: self.n], x, side="left"))
        if i >= self.n or self._x[i] != x or self._t[i] == 0:
            return
        self._t[i] -= 1
        self.withdrawn += self._t[i] == 0
        self.epoch += 1
        if not math.isnan(y) and self._c[i] > 0:
            self._s[i] -= y
            self._c[i] -= 1
            self._m[i] = self._s[i] / self._c[i] if self._c[i] else np.nan
        self.version += 1

    def _reported(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self._x[: self.n]
        if not self.withdrawn:  # the common case: views, no copy
            return x, y
        keep = self._t[: self.n] > 0
        return x[keep], y[keep]

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        return self._reported(self._m[: self.n])

    def sums(self) -> tuple[np.ndarray, np.ndarray]:
        c = self._c[: self.n]
        return self._reported(np.where(c > 0, self._s[: self.n], np.nan))


def ema(y: np.ndarray, weight: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing); NaN gaps stay gaps and
    are skipped, not propagated."""
    from scipy.signal import lfilter

    out = np.full(len(y), np.nan)
    valid = ~np.isnan(y)
    v = y[valid]
    if len(v) == 0:
        return out
    raw = lfilter([1.0 - weight], [1.0, -weight], v)
    # weight**k underflows to 0 for long runs, which is exactly the unbiased limit.
    debias = 1.0 - weight ** np.arange(1, len(v) + 1)
    out[valid] = raw / debias
    return out


class EmaCache:
    """Incremental :func:`ema` of one growing series: a redraw smooths only the new points.

    Valid while the source's ``epoch`` is unchanged (appends, and in-place updates of the last
    point, which is always recomputed); the cached raw state is carried over NaN gaps.
    """

    __slots__ = ("_cnt", "_out", "_raw", "epoch", "n", "weight")

    def __init__(self) -> None:
        self.weight, self.epoch, self.n = -1.0, -1, 0
        self._raw = np.empty(0)
        self._cnt = np.empty(0, dtype=np.int64)
        self._out = np.empty(0)

    def smooth(self, y: np.ndarray, weight: float, epoch: int) -> np.ndarray:
        from scipy.signal import lfilter

        n = len(y)
        start = 0
        if weight == self.weight and epoch == self.epoch and self.n > 0:
            start = min(self.n - 1, n)
        if len(self._raw) < n:
            size = max(n, 2 * len(self._raw), 256)
            self._raw = np.concatenate([self._raw[:start], np.empty(size - start)])
            self._cnt = np.concatenate([self._cnt[:start], np.zeros(size - start, np.int64)])
            self._out = np.concatenate([self._out[:start], np.empty(size - start)])
        state = float(self._raw[start - 1]) if start else 0.0
        count = int(self._cnt[start - 1]) if start else 0
        seg = y[start:n]
        valid = ~np.isnan(seg)
        filtered = np.empty(0)
        if valid.any():
            filtered, _ = lfilter([1.0 - weight], [1.0, -weight], seg[valid], zi=[weight * state])
        seen = np.cumsum(valid)
        self._raw[start:n] = np.concatenate([[state], filtered])[seen]
        self._cnt[start:n] = count + seen
        with np.errstate(invalid="ignore", divide="ignore"):
            debiased = self._raw[start:n] / (1.0 - weight ** self._cnt[start:n])
        self._out[start:n] = np.where(valid, debiased, np.nan)
        self.weight, self.epoch, self.n = weight, epoch, n
        return self._out[:n]


def downsample(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most max_points points keeping each bucket's min and max (spikes stay visible).

    Each bucket becomes two points at its first and last step, ordered min->max when the
    bucket rises and max->min when it falls, so the trend and the envelope both survive.
    """
    n = len(x)
    buckets = max(1, max_points // 2)
    if n <= max_points:
        return x, y
    starts = np.linspace(0, n, buckets, endpoint=False).astype(np.int64)
    ends = np.append(starts[1:], n) - 1
    with np.errstate(invalid="ignore"):
        lo = np.fmin.reduceat(y, starts)
        hi = np.fmax.reduceat(y, starts)
    rising = ~(y[ends] < y[starts])
    first = np.where(rising, lo, hi)
    second = np.where(rising, hi, lo)
    xs = np.empty(2 * buckets)
    ys = np.empty(2 * buckets)
    xs[0::2], xs[1::2] = x[starts], x[ends]
    ys[0::2], ys[1::2] = first, second
    return xs, ys


__all__ = [
    "EmaCache",
    "Series",
    "StepAgg",
    "downsample",
    "ema",
]
