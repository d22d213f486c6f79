"""What happens to a run when its Dask scheduler dies.

Client side: the client notices at once (its status leaves ``running`` and the rank futures are
cancelled), so the watch loop raises :class:`SchedulerLost` instead of waiting ~10 s for an RPC
to time out.  Worker side: a worker whose scheduler connection breaks starts closing, but Dask
cannot stop a task's thread, so a rank would train on for nobody until the nanny kills the
process (30 s later, measured).  :func:`stop_with_worker` watches the worker's status from a
small thread and raises :class:`RankStopped` in the rank's thread when it closes; the rank's
usual teardown (destroy the process group, free memory) then runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
from collections.abc import Iterator
from typing import Any

from lepton_nb.errors import ClusterError

log = logging.getLogger("lepton_nb.train")
_POLL_S = 0.2


class SchedulerLost(ClusterError):
    """The run's Dask scheduler went away mid-run."""


class RankStopped(Exception):
    """Raised inside a rank whose worker is closing (its scheduler is gone)."""


def scheduler_gone(client: Any, futures: list[Any]) -> bool:
    """True once the client has lost its scheduler (it is reconnecting or closed, and the
    scheduler-side state of the rank futures is gone with it)."""
    if getattr(client, "status", "running") in ("connecting", "closing", "closed"):
        return True
    return any(f.status == "cancelled" for f in futures)


def _closing(worker: Any) -> bool:
    from distributed.core import Status

    return worker.status in (Status.closing, Status.closed, Status.failed)


@contextlib.contextmanager
def stop_with_worker(enabled: bool = True) -> Iterator[None]:
    """Inside a Dask task: raise RankStopped in this thread when the worker starts closing."""
    worker = None
    if enabled:
        try:
            from distributed import get_worker

            worker = get_worker()
        except ValueError:  # not inside a Dask task
            worker = None
    if worker is None:
        yield
        return
    target = threading.get_ident()
    done = threading.Event()
    lock = threading.Lock()

    def watch() -> None:
        while not done.wait(_POLL_S):
            if _closing(worker):
                with lock:
                    if done.is_set():
                        return
                    log.warning(
                        "worker %s is closing (scheduler gone?): stopping its rank", worker.address
                    )
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(
                        ctypes.c_ulong(target), ctypes.py_object(RankStopped)
                    )
                return

    thread = threading.Thread(target=watch, name="lepton-rank-lifeline", daemon=True)
    thread.start()
    try:
        yield
    finally:
        with lock:
            done.set()


def lost_message(address: str, checkpoint: str | None, step: int | None) -> str:
    where = (
        f"the last checkpoint is {checkpoint} (step {step})"
        if checkpoint and step
        else f"no checkpoint was written yet in {checkpoint}"
        if checkpoint
        else "no checkpoint_dir was set"
    )
    return (
        f"the Dask scheduler at {address} is gone (its connection closed mid-run); the ranks "
        f"on its workers were stopped. {where}. Start or reconnect a cluster and call fit again "
        "with that checkpoint_dir to resume"
    )


__all__ = ["RankStopped", "SchedulerLost", "lost_message", "scheduler_gone", "stop_with_worker"]
