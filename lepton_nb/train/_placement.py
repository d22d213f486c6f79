"""Which workers hold which ranks of which run: a small record in the scheduler's metadata.

The driver publishes the placement at every world formation and clears it when the run ends;
anything holding a client of the same scheduler (a ClusterWidget in another kernel, the
dashboard extension) reads it back.  The record lives at ``["lepton-ranks", run_id]`` in the
scheduler's ``task_metadata`` (``Client.set_metadata``): msgpack-able, per scheduler, gone with
the scheduler.  The scheduler has no call that deletes a metadata key, so ``clear`` writes an
empty record, which readers skip.

A kernel that dies mid-run never clears its record; :func:`ranks_by_worker` therefore lists
only workers the scheduler still has (a dead run's record naming a live worker stays listed
until the scheduler restarts: there is no way to tell from the scheduler that a run died).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from lepton_nb.cluster._client import live_workers
from lepton_nb.errors import ConfigError

ROOT = "lepton-ranks"
CLEAR_TIMEOUT_S = 5.0


def publish(client: Any, run_id: str, ranks: dict[str, int]) -> None:
    """Record that ``run_id``'s rank ``ranks[address]`` runs on worker ``address``."""
    if not isinstance(run_id, str) or not run_id:
        raise ConfigError(f"run_id must be a non-empty string, got {run_id!r}")
    bad = {
        a: r
        for a, r in ranks.items()
        if not isinstance(a, str) or isinstance(r, bool) or not isinstance(r, int) or r < 0
    }
    if bad:
        raise ConfigError(
            f"placement must map worker addresses (str) to ranks (int >= 0); bad entries: {bad!r}"
        )
    record = {"ranks": dict(ranks), "time": time.time()}
    client.set_metadata([ROOT, run_id], record)


def clear(client: Any, run_id: str) -> None:
    """Forget ``run_id``'s placement.  Never raises for a closed client or a gone scheduler:
    it runs in the ``finally`` of runs that may be failing for exactly that reason."""
    if getattr(client, "status", None) != "running":
        return
    try:  # bounded: a scheduler that just died would otherwise be retried for the connect timeout
        client.sync(
            client.scheduler.set_metadata,
            keys=[ROOT, run_id],
            value={},
            callback_timeout=CLEAR_TIMEOUT_S,
        )
    except (OSError, RuntimeError, TimeoutError):  # CommClosedError is an OSError
        pass


def _records(client: Any) -> dict[str, Any]:
    got = client.get_metadata([ROOT], default=None)
    return got if isinstance(got, dict) else {}


def ranks_by_worker(
    client: Any, workers: Iterable[str] | None = None
) -> dict[str, list[tuple[str, int]]]:
    """``{worker_address: [(run_id, rank), ...]}`` for the ranks of every run that has
    published a placement on this scheduler and not cleared it, limited to current workers
    (``workers``, when the caller has just fetched them, else asked from the scheduler);
    lists are sorted by run id then rank."""
    records = _records(client)
    if not records:
        return {}
    alive = set(live_workers(client) if workers is None else workers)
    out: dict[str, list[tuple[str, int]]] = {}
    for run_id, record in records.items():
        ranks = record.get("ranks") if isinstance(record, dict) else None
        if not isinstance(ranks, dict):
            continue
        for address, rank in ranks.items():
            if address in alive:
                out.setdefault(address, []).append((str(run_id), int(rank)))
    return {a: sorted(v) for a, v in out.items()}


__all__ = ["clear", "publish", "ranks_by_worker"]
