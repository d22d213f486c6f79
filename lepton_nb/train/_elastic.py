"""Elastic runs (``fit``/``run`` with ``min_workers``/``max_workers``), driver side.

A run's world is re-formed at a checkpoint boundary when a worker joins (up to
``max_workers``) or one of its workers is being retired (``client.retire_workers``,
``cluster.scale`` down, ``adapt``; the scheduler plugin in :mod:`lepton_nb.train._guard`
holds the retirement until then): the driver sets the generation's stop flag (a Dask
``Event``), rank 0 reads it at its next boundary and broadcasts the answer, every rank saves
and returns, and the driver starts the next generation on the new set of workers, which resumes
from that boundary's checkpoint.  A lost worker costs the steps since the last checkpoint but
not a restart.  Below ``min_workers`` the driver waits ``wait_timeout_s`` for workers.

The global batch is kept: each rank takes ``batch_size / world`` samples per step, so the
world sizes a run may take must divide ``batch_size``, and the checkpoint's place in the epoch
(samples consumed, a multiple of the global batch) is the same place for any world: the
remaining part of the epoch is re-sharded with no sample skipped or repeated.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lepton_nb.errors import TrainingError

POLL_S = 0.2


class StopFlag:
    """Worker side: the driver's request that this generation's ranks stop at their next
    boundary.  Relayed into rank processes (a Dask client lives only in the worker)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def is_set(self) -> bool:
        from distributed import Event

        return bool(Event(self.name).is_set())


@dataclass
class Elastic:
    """The elastic bounds of one run (``batch_size`` None: ``run``, no batch to divide)."""

    min_workers: int
    max_workers: int | None
    wait_timeout_s: float
    batch_size: int | None = None

    def world_for(self, available: int) -> int:
        """The world size for ``available`` usable workers: the largest size within the
        bounds that divides the global batch, or 0 when below ``min_workers``."""
        cap = available if self.max_workers is None else min(available, self.max_workers)
        for n in range(cap, self.min_workers - 1, -1):
            if self.batch_size is None or self.batch_size % n == 0:
                return n
        return 0


def usable(workers: dict[str, dict[str, Any]], retiring: set[str]) -> dict[str, dict[str, Any]]:
    """Workers a new world may use: alive, running, and not being retired."""
    return {
        a: w
        for a, w in workers.items()
        if a not in retiring and w.get("status", "running") == "running"
    }


def wait_for_world(
    client: Any, elastic: Elastic, retiring: Any, why: str, workers_of: Any
) -> dict[str, dict[str, Any]]:
    """Usable workers enough for ``min_workers``, waiting up to ``wait_timeout_s``; else a
    :class:`TrainingError` that says what it waited for."""
    deadline = time.monotonic() + elastic.wait_timeout_s
    while True:
        ws = usable(workers_of(client), retiring())
        if elastic.world_for(len(ws)):
            return ws
        if time.monotonic() > deadline:
            raise TrainingError(
                f"elastic training waited {elastic.wait_timeout_s:g} s for at least "
                f"min_workers={elastic.min_workers} usable worker(s) after {why}; the cluster "
                f"has {len(ws)} ({', '.join(sorted(ws)) or 'none'}). Scale the cluster up "
                f"(cluster.scale({elastic.min_workers})), lower min_workers, or raise "
                "wait_timeout_s; the last checkpoint is kept for the next fit"
            )
        time.sleep(POLL_S)


def _warm() -> bool:
    """On a joining worker, before the world stops for it: the worker itself imports torch
    (it unpickles the run's payload, tensors and all; measured ~5 s of the re-formation on a
    busy 2-core machine) and starts its rank fork server (torch imported there too)."""
    import torch  # noqa: F401

    from lepton_nb.train import _procs

    _procs.prewarm()
    return True


class Monitor:
    """Driver side, during one generation: notices joins and retirements and asks the ranks
    to stop at their next boundary (once)."""

    def __init__(
        self, client: Any, elastic: Elastic, run_id: str, gen: int, addresses: list[str], warm: bool
    ) -> None:
        from distributed import Event

        self.client, self.elastic, self.addresses = client, elastic, set(addresses)
        self.event = Event(f"lepton-elastic-{run_id}-{gen}", client=client)
        self.run_id, self.warm = run_id, warm
        self.reason: str | None = None
        self.noticed: float | None = None  # when the change was seen (unix s)
        self.on_stop: Any = None  # tells ranks that do not read the flag (strategy hook)
        self._warming: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return str(self.event.name)

    def check(self, alive: dict[str, dict[str, Any]], retiring: set[str]) -> None:
        if self.reason is not None:
            return
        leaving = sorted(self.addresses & retiring)
        if leaving:
            return self._stop(f"worker retired: {', '.join(leaving)}")
        joined = sorted(set(usable(alive, retiring)) - self.addresses)
        grown = self.elastic.world_for(len(self.addresses) + len(joined))
        if grown <= len(self.addresses):
            return
        if not self.warm:
            return self._stop(f"worker joined: {', '.join(joined)}")
        # start the joiners' rank fork servers first (torch imported), so the new world's
        # first step is not delayed by their imports; the old world trains meanwhile
        for a in joined:
            if a not in self._warming:
                self._warming[a] = self.client.submit(
                    _warm, workers=[a], pure=False, allow_other_workers=False
                )
        ready = [a for a in joined if self._warming[a].status != "pending"]
        if self.elastic.world_for(len(self.addresses) + len(ready)) > len(self.addresses):
            self._stop(f"worker joined: {', '.join(ready)}")

    def _stop(self, reason: str) -> None:
        self.reason, self.noticed = reason, time.time()
        self.event.set()
        if self.on_stop is not None:
            self.on_stop()

    def close(self) -> None:
        self.client.cancel(list(self._warming.values()))
        self.event.clear()


__all__ = ["Elastic", "Monitor", "StopFlag", "usable", "wait_for_world"]
