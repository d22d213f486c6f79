"""Runs rank tasks on a Dask cluster, watches them, and recovers from a lost worker.

Each rank is one pinned Dask task; the task runs the rank in a child process of its worker
(:mod:`lepton_nb.train._procs`, forked from a per-worker fork server that has imported torch),
as torchrun runs each rank in its own process: the worker keeps its scheduler link and relays
the rank's events, the rank gets a whole interpreter (issue 14: a rank in the worker's thread
shared the GIL with the worker's event loop and the nanny's malloc settings).  The group's
collectives have a short timeout (``collective_timeout_s``, default 60 s) as a backstop.  When a
rank's process ends, by an exception or with its killed worker (its socket to the worker
closes and it exits at once), its gloo pairs are reset and the peers' collectives fail at once:
the restart marker follows a ``SIGKILL`` of a worker within a fraction of a second
(``tests/integration/train/test_recovery.py``).  Strategies with ``rank_process = False`` run
in the worker's thread; a peer that raised there keeps its sockets open, so the blocked ranks'
workers are restarted by their nannies after ``stuck_grace_s`` (5 s), as torchrun's agent kills
its stuck children.  The client also polls the scheduler's worker list (every 0.25 s) because a
killed worker's pinned task never errors: the nanny restarts the worker at a NEW address.  On a
failure the client marks the restart in the history, calls the strategy's ``abort``, ends the
surviving ranks, cancels the pinned tasks, waits for the nanny's replacement (or continues with
the workers left after ``replace_timeout_s``), re-plans ranks on the current workers with a new
port, and resumes from the last checkpoint.  A rank that failed with a sticky CUDA error
(illegal address, device-side assert: the CUDA context is unusable for the rest of the
process) has its worker restarted through the nanny before the retry.  On GPUs each rank's
device comes from its worker's ``CUDA_VISIBLE_DEVICES`` (asked from the workers, see
:func:`lepton_nb.train._gpu.own_gpu_first`).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from lepton_nb.cluster._client import live_workers as workers_of
from lepton_nb.cluster._worker_gpus import worker_gpus
from lepton_nb.errors import ClusterError, TrainingError
from lepton_nb.train import _guard, _placement
from lepton_nb.train._codeship import ship_user_code
from lepton_nb.train._elastic import Elastic, Monitor, wait_for_world
from lepton_nb.train._events import EventHub
from lepton_nb.train._gpu import is_sticky_cuda_error, own_gpu_first
from lepton_nb.train._lifeline import SchedulerLost, lost_message, scheduler_gone
from lepton_nb.train._rendezvous import RankSpec, free_port, plan, rank_task
from lepton_nb.train.checkpoint import latest_path, latest_state
from lepton_nb.train.context import event_topic
from lepton_nb.train.strategy import Strategy

POLL_S = 0.05
RESTART = "a restart"  # why a generation began, when it is a restart (not a world change)
WORKER_POLL_S = 0.25


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _wait_for(client: Any, n: int, timeout: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    ws = workers_of(client)
    while len(ws) < n and time.monotonic() < deadline:
        time.sleep(0.2)
        ws = workers_of(client)
    return ws


class Failure(Exception):
    def __init__(self, what: str, rank: int, address: str, lost: bool = False) -> None:
        super().__init__(what)
        self.what, self.rank, self.address, self.lost = what, rank, address, lost


def _watch(
    client: Any,
    futures: list[Any],
    specs: list[RankSpec],
    hub: EventHub,
    monitor: Monitor | None = None,
    retiring: Any = None,
) -> None:
    last = 0.0
    while True:
        hub.drain()
        if scheduler_gone(client, futures):
            raise SchedulerLost("scheduler gone")
        if any(f.status == "error" for f in futures):
            _name_lost_worker(client, specs)  # a peer's death surfaces as a gloo error
            errors = [
                (s, f.exception())
                for f, s in zip(futures, specs, strict=True)
                if f.status == "error"
            ]
            # the root cause, not the peers' "connection reset" that it triggered
            s, exc = min(errors, key=lambda e: _is_peer_error(e[1]))
            raise Failure(
                f"rank {s.rank} on worker {s.address} failed: "
                f"{type(exc).__name__}: {str(exc)[:300]}",
                s.rank,
                s.address,
            )
        if all(f.status == "finished" for f in futures):
            return
        now = time.monotonic()
        if now - last > WORKER_POLL_S:
            last = now
            try:
                alive = _check_alive(client, specs)
                if monitor is not None:
                    monitor.check(alive, retiring())
            except OSError:
                if scheduler_gone(client, futures):
                    raise SchedulerLost("scheduler gone") from None
                raise
        time.sleep(POLL_S)


def _is_peer_error(exc: BaseException) -> bool:
    text = str(exc)
    return any(m in text for m in ("gloo", "Connection reset", "Connection closed", "NCCL"))


def _check_alive(client: Any, specs: list[RankSpec]) -> dict[str, dict[str, Any]]:
    alive = workers_of(client)
    for s in specs:
        if s.address not in alive:
            raise Failure(f"lost worker {s.address} (rank {s.rank})", s.rank, s.address, lost=True)
    return alive


def _name_lost_worker(client: Any, specs: list[RankSpec], within: float = 1.0) -> None:
    """Raise the lost-worker failure if the scheduler notices one shortly (it learns of a
    killed worker from the closed connection, usually a few ms after the peers do)."""
    deadline = time.monotonic() + within
    while True:
        _check_alive(client, specs)
        if time.monotonic() > deadline:
            return
        time.sleep(0.1)


def _teardown(client: Any, futures: list[Any], grace: float) -> list[str]:
    """End the surviving ranks, then cancel everything (a task pinned to a dead worker would
    otherwise wait for it forever).  Ranks whose peer died leave their collective at once
    (gloo sees the reset connection); ranks whose peer raised stay blocked, because gloo
    keeps a live process's sockets open even after ``destroy_process_group``, so after
    ``grace`` seconds their worker processes are restarted by their nannies, as torchrun's
    agent kills its stuck children.  Returns the restarted workers."""
    deadline = time.monotonic() + grace
    stuck: list[str] = []
    while True:
        alive = workers_of(client)
        stuck = [a for f, a in futures if f.status == "pending" and a in alive]
        if not stuck or time.monotonic() > deadline:
            break
        time.sleep(POLL_S)
    client.cancel([f for f, _ in futures], force=True)
    if stuck:
        client.restart_workers(stuck, raise_for_error=False)
    return stuck


def run_ranks(
    client: Any,
    strategy: Strategy,
    payload: Any,
    hub: EventHub,
    *,
    run_id: str,
    n_workers: int | None,
    max_restarts: int,
    checkpoint_dir: str | None,
    collective_timeout_s: float = 60.0,
    replace_timeout_s: float = 30.0,
    stuck_grace_s: float = 5.0,
    storage_options: dict[str, Any] | None = None,
    elastic: Elastic | None = None,
) -> list[dict[str, Any]]:
    """Run ``strategy.body(ctx, payload)`` once per rank (pinned tasks) until all ranks
    succeed; ``strategy.prepare`` runs before each generation, ``strategy.abort`` after a
    failed one.  With ``elastic`` the world is re-formed when workers join, retire or are lost
    (see :mod:`lepton_nb.train._elastic`); only failures of other kinds spend a restart."""
    topic = event_topic(run_id)
    scheduler = str(client.scheduler.address)
    # the user's own modules travel with the run to workers that cannot import them
    shipped_strategy, payload = ship_user_code(client, strategy, payload)
    client.subscribe_topic(topic, hub.on_dask_event)
    target = n_workers or len(workers_of(client))
    guarded = elastic is not None and _guard.install(client)

    def retiring() -> set[str]:
        return _guard.retiring(client, run_id) if guarded else set()

    gen, restarts, size, why = 0, 0, 0, "the start"
    try:
        while True:
            if elastic is None:
                workers = _wait_for(client, target, replace_timeout_s if gen else 0)
                if not workers:
                    raise ClusterError("the cluster has no workers left; scale it up and rerun")
                n = target
            else:
                workers = wait_for_world(client, elastic, retiring, why, workers_of)
                n = elastic.world_for(len(workers))
                if gen and (why != RESTART or n != size):  # a restart has its own row
                    hub.world_marker(
                        attempt=gen,
                        old_size=size,
                        new_size=n,
                        reason=why,
                        step=resume_step(checkpoint_dir, storage_options),
                    )
            specs = _specs(
                client,
                workers,
                n,
                run_id,
                gen,
                checkpoint_dir,
                collective_timeout_s,
                storage_options,
            )
            size = len(specs)
            monitor = None
            if elastic is not None:
                monitor = Monitor(
                    client,
                    elastic,
                    run_id,
                    gen,
                    [s.address for s in specs],
                    warm=strategy.rank_process,
                )
                for s in specs:
                    s.elastic = monitor.name
            if guarded and elastic is not None:
                _guard.hold(client, run_id, [s.address for s in specs], elastic.min_workers)
            _placement.publish(client, run_id, {s.address: s.rank for s in specs})
            run_payload = strategy.prepare(client, specs, payload)
            if monitor is not None:
                monitor.on_stop = lambda p=run_payload: strategy.request_stop(p)
            # to this world's workers only: a worker just retired may vanish mid-broadcast
            data = client.scatter(
                run_payload, workers=[s.address for s in specs], broadcast=True, hash=False
            )
            futures = [
                client.submit(
                    rank_task,
                    s,
                    shipped_strategy,
                    data,
                    workers=[s.address],
                    allow_other_workers=False,
                    pure=False,
                    retries=0,
                    key=f"lepton-rank-{run_id}-{gen}-{s.rank}",
                )
                for s in specs
            ]
            try:
                _watch(client, futures, specs, hub, monitor, retiring)
            except SchedulerLost:
                last = resume_step(checkpoint_dir, storage_options)
                path = str(latest_path(checkpoint_dir)) if checkpoint_dir and last else None
                raise SchedulerLost(lost_message(scheduler, path or checkpoint_dir, last)) from None
            except Failure as fail:
                elastic_loss = elastic is not None and fail.lost
                if not elastic_loss and restarts < max_restarts:
                    step = strategy.resume_step(checkpoint_dir)
                    hub.restart_marker(
                        gen + 1,
                        fail.what,
                        resume_step(checkpoint_dir, storage_options) if step is None else step,
                    )
                strategy.abort(run_payload, fail.what)
                restarted = _teardown(
                    client,
                    list(zip(futures, [s.address for s in specs], strict=True)),
                    stuck_grace_s,
                )
                if is_sticky_cuda_error(fail.what) and fail.address not in restarted:
                    # its CUDA context is poisoned for the life of the process: a new one
                    client.restart_workers([fail.address], raise_for_error=False)
                if not elastic_loss:
                    if restarts == max_restarts:
                        raise TrainingError(
                            f"training failed after {max_restarts} restart(s): {fail.what}; "
                            "check that worker's logs, or raise max_restarts"
                        ) from None
                    restarts += 1
                gen, why = gen + 1, (f"worker lost: {fail.address}" if elastic_loss else RESTART)
                del run_payload, data, futures  # release the generation's actor (if any)
                continue
            finally:
                if monitor is not None:
                    monitor.close()
            results = client.gather(futures)
            for r in results:
                hub.merge(r["events"])
            hub.drain(force=True)
            if monitor is not None and any(r.get("stopped") is not None for r in results):
                gen, why = gen + 1, monitor.reason or "world re-formed"
                del run_payload, data, futures, results
                continue
            return list(results)
    finally:
        if client.status == "running":  # with the scheduler gone there is nothing to tell
            client.unsubscribe_topic(topic)
            _placement.clear(client, run_id)
            if guarded:
                _guard.release(client, run_id)


def _specs(
    client: Any,
    workers: dict[str, dict[str, Any]],
    n: int,
    run_id: str,
    gen: int,
    checkpoint_dir: str | None,
    timeout_s: float,
    storage_options: dict[str, Any] | None,
) -> list[RankSpec]:
    """One generation's ranks on ``workers``: placement, rendezvous port, devices."""
    placed = plan(workers, n)
    a0, h0 = placed[0][0], placed[0][1]
    port = client.submit(free_port, h0, workers=[a0], allow_other_workers=False, pure=False).result(
        timeout=60
    )
    threads = max(1, int(workers[a0].get("nthreads") or 1))
    own = _own_gpu_first(client, workers, placed)
    return [
        RankSpec(
            rank=r,
            world_size=len(placed),
            local_rank=lr,
            local_world=lw,
            address=a,
            host=h,
            master_addr=h0,
            master_port=port,
            run_id=run_id,
            attempt=gen,
            checkpoint_dir=checkpoint_dir,
            timeout_s=timeout_s,
            threads=threads,
            own_gpu_first=own[a],
            storage_options=storage_options,
        )
        for r, (a, h, lr, lw) in enumerate(placed)
    ]


def _own_gpu_first(
    client: Any, workers: dict[str, dict[str, Any]], placed: list[tuple[str, str, int, int]]
) -> dict[str, bool]:
    chosen = {a: workers[a] for a, *_ in placed}
    info = worker_gpus(client, chosen)
    return own_gpu_first({a: v["visible"] for a, v in info.items()}, {a: h for a, h, *_ in placed})


def resume_step(checkpoint_dir: str | None, storage_options: dict[str, Any] | None = None) -> int:
    """The step a restart resumes at: the last checkpoint's, or 0 without one."""
    state = latest_state(checkpoint_dir, storage_options)
    return 0 if state is None else int(state.get("step", 0))


__all__ = ["resume_step", "run_ranks"]
