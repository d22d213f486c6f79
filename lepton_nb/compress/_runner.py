"""Where search tasks run: as Dask tasks on a cluster, or one after another in-process.

Both runners hand out opaque handles, yield results as tasks finish and stop at a deadline;
:meth:`close` cancels whatever is still queued or running, so nothing is left on the cluster.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any


class OutOfTime(Exception):
    """The search's time budget ran out while tasks were still running."""


class LocalRunner:
    """Runs each task lazily, in this process, when its result is first asked for."""

    n_workers = 1

    def __init__(self) -> None:
        self._results: dict[int, Any] = {}
        self._tasks: dict[int, tuple[Callable[..., Any], tuple[Any, ...]]] = {}

    def put(self, value: Any) -> Any:
        return value

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        key = len(self._tasks)
        self._tasks[key] = (fn, args)
        return key

    def result(self, key: int) -> Any:
        if key not in self._results:
            fn, args = self._tasks[key]
            args = tuple(self.result(a.key) if isinstance(a, _Ref) else a for a in args)
            self._results[key] = fn(*args)
        return self._results[key]

    def ref(self, key: int) -> Any:
        return _Ref(key)

    def completed(self, keys: Sequence[int], deadline: float) -> Iterator[tuple[int, Any]]:
        for key in keys:
            if time.monotonic() > deadline:
                raise OutOfTime
            yield key, self.result(key)

    def close(self) -> None:
        self._tasks.clear()


class _Ref:
    def __init__(self, key: int) -> None:
        self.key = key


class DaskRunner:
    """Every task is a Dask task; inputs are scattered once to every worker."""

    def __init__(self, cluster: Any) -> None:
        from lepton_nb.cluster._client import client_of, live_workers

        self.client = client_of(cluster)
        self.n_workers = max(1, len(live_workers(self.client)))
        self._futures: list[Any] = []

    def put(self, value: Any) -> Any:
        [fut] = self.client.scatter([value], broadcast=True)
        self._futures.append(fut)
        return fut

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        fut = self.client.submit(fn, *args, pure=False)
        self._futures.append(fut)
        return fut

    def ref(self, fut: Any) -> Any:
        return fut  # Dask passes a future's result to the task that takes it

    def result(self, fut: Any) -> Any:
        return fut.result()

    def completed(self, futs: Sequence[Any], deadline: float) -> Iterator[tuple[Any, Any]]:
        from distributed import wait

        pending = set(futs)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise OutOfTime
            timeout = None if math.isinf(left) else left  # dask cannot parse an infinite timeout
            try:
                done, pending = wait(pending, timeout=timeout, return_when="FIRST_COMPLETED")
            except TimeoutError:
                raise OutOfTime from None
            for fut in done:
                yield fut, fut.result()

    def close(self) -> None:
        """Cancel every task and release every scattered input this search made."""
        if self._futures:
            self.client.cancel(self._futures, force=True)
            self._futures.clear()


def runner_for(cluster: Any) -> LocalRunner | DaskRunner:
    return LocalRunner() if cluster is None else DaskRunner(cluster)


__all__ = ["DaskRunner", "LocalRunner", "OutOfTime", "runner_for"]
