"""A scheduler plugin that keeps Dask from retiring a worker in the middle of a rank's step.

Dask 2026.7 retires workers in two ways, and neither knows about training ranks:

- ``Scheduler.workers_to_close`` (what ``cluster.adapt`` asks) skips only workers running
  ``secede``-d tasks and whatever ``SchedulerPlugin.valid_workers_downscaling`` removes; this
  plugin offers at most ``world - min_workers`` of a run's workers (highest ranks first), so
  the adaptive scaler never shrinks a run below its ``min_workers``;
- ``Scheduler.retire_workers`` (``client.retire_workers``, ``cluster.scale`` down, and
  ``adapt`` with the names it chose) moves the worker's unique data away, then closes it at
  once, whatever it runs; ``SpecCluster`` then closes its process regardless of the answer.
  No plugin hook can delay that, so the plugin wraps the scheduler's ``retire_workers``
  handler: a worker holding a rank is marked *retiring*, the run's driver sees it (one RPC per
  poll), stops the ranks at their next checkpoint boundary and re-forms the world without it,
  and the retirement proceeds once no rank is left there (or after ``HOLD_TIMEOUT_S``, in
  case the driver is gone).  Holds of a client that disconnects are dropped.

Installed by the first elastic run on a cluster (``client.register_plugin``, idempotent), on
the scheduler, which must be able to import lepton_nb; without it elastic runs still handle
lost workers, but a retirement is seen as a lost worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

log = logging.getLogger("lepton_nb.train")
NAME = "lepton-rank-guard"
HOLD_TIMEOUT_S = 600.0


class RankGuard(SchedulerPlugin):
    """Scheduler side: which workers hold ranks of which elastic run, and deferred
    retirements of those workers."""

    idempotent = True
    name = NAME

    def __init__(self) -> None:
        # run_id -> (client, workers in rank order, min_workers)
        self.holds: dict[str, tuple[str, list[str], int]] = {}
        self.retiring: set[str] = set()

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self._retire = scheduler.retire_workers
        scheduler.handlers.update(
            {
                "retire_workers": self.retire_workers,
                "lepton_rank_hold": self.hold,
                "lepton_rank_release": self.release,
                "lepton_rank_retiring": self.retiring_of,
            }
        )

    # --- what the driver calls (RPC handlers) --------------------------------------------
    def hold(self, run_id: str, workers: list[str], client: str = "", min_workers: int = 1) -> None:
        self.holds[run_id] = (client, list(workers), min_workers)

    def release(self, run_id: str) -> None:
        self.holds.pop(run_id, None)

    def retiring_of(self, run_id: str) -> list[str]:
        held = self.holds.get(run_id, ("", [], 1))[1]
        return sorted(set(held) & self.retiring)

    # --- scheduler hooks ------------------------------------------------------------------
    def held(self) -> set[str]:
        return {a for _, ws, _ in self.holds.values() for a in ws}

    def valid_workers_downscaling(self, scheduler: Any, workers: list[Any]) -> list[Any]:
        barred: set[str] = set()
        for _, held, minimum in self.holds.values():
            staying = [a for a in held if a not in self.retiring]
            spare = max(0, len(staying) - minimum)
            barred.update(staying[: len(staying) - spare])  # rank 0 and the low ranks stay
        return [ws for ws in workers if ws.address not in barred]

    def remove_client(self, scheduler: Any, client: str) -> None:
        for run_id in [r for r, (c, _, _) in self.holds.items() if c and c == client]:
            self.holds.pop(run_id, None)

    def _addresses(self, workers: list[Any] | None, names: list[Any] | None) -> set[str]:
        ws = self.scheduler.workers
        if names is not None:
            wanted = {str(n) for n in names}
            return {a for a, w in ws.items() if str(w.name) in wanted}
        by_name = {str(w.name): a for a, w in ws.items()}
        # SpecCluster.scale passes worker *names* as ``workers``
        return {w if w in ws else by_name.get(str(w), "") for w in workers or ()} - {""}

    async def retire_workers(
        self, workers: list[Any] | None = None, *, names: list[Any] | None = None, **kwargs: Any
    ) -> Any:
        if workers is None and names is None:  # the scheduler picks: it skips rank holders
            return await self._retire(**kwargs)
        held = self._addresses(workers, names) & self.held()
        if held:
            log.info(
                "retirement of %s deferred to the ranks' next checkpoint boundary", sorted(held)
            )
            self.retiring |= held
            deadline = time.monotonic() + HOLD_TIMEOUT_S
            try:
                while held & self.held() and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                # the old world's parameter-server actor (which Dask never retires a worker
                # from) is released by the driver right after
                settle = time.monotonic() + 10
                while time.monotonic() < settle and any(
                    self.scheduler.workers[a].actors for a in held if a in self.scheduler.workers
                ):
                    await asyncio.sleep(0.1)
            finally:
                self.retiring -= held
        if workers is not None:
            kwargs["workers"] = workers
        if names is not None:
            kwargs["names"] = names
        return await self._retire(**kwargs)


def install(client: Any) -> bool:
    """Register the guard on the client's scheduler (once); False if it cannot be (e.g. the
    scheduler cannot import lepton_nb): retirements are then seen as lost workers."""
    try:
        client.register_plugin(RankGuard(), name=NAME)
    except Exception as e:  # noqa: BLE001 - any failure on the scheduler side means "no guard"
        log.warning(
            "could not install the rank guard on the scheduler (%s: %s); a retired "
            "worker will count as lost",
            type(e).__name__,
            e,
        )
        return False
    return True


def hold(client: Any, run_id: str, workers: list[str], min_workers: int) -> None:
    client.sync(
        client.scheduler.lepton_rank_hold,
        run_id=run_id,
        workers=workers,
        client=client.id,
        min_workers=min_workers,
    )


def release(client: Any, run_id: str) -> None:
    client.sync(client.scheduler.lepton_rank_release, run_id=run_id)


def retiring(client: Any, run_id: str) -> set[str]:
    return set(client.sync(client.scheduler.lepton_rank_retiring, run_id=run_id))


__all__ = ["HOLD_TIMEOUT_S", "NAME", "RankGuard", "hold", "install", "release", "retiring"]
