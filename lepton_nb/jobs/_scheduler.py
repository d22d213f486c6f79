"""The scheduler: fires due schedules as queued jobs, one scheduler per store.

It runs as a thread of the Jupyter server or of ``lepton-nb scheduler``. Only the holder of
the exclusive ``flock`` on ``<store>.scheduler.lock`` fires; the others stay on standby and take
over when it goes (the kernel releases the lock of a dead process). The firing itself is a
compare-and-set in the store (:meth:`ScheduleStore.fire`), so even two schedulers that both
believed they held the lock could not fire one slot twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from lepton_nb.errors import LeptonError
from lepton_nb.jobs._dispatcher import lock_path
from lepton_nb.jobs._queue import failed_record, queued_record
from lepton_nb.jobs._schedules import Schedule, ScheduleStore
from lepton_nb.jobs.models import JobRecord

log = logging.getLogger("lepton_nb.scheduler")


def job_for(schedule: Schedule, output_dir: str | Path | None = None) -> JobRecord:
    """The queued job of one firing, or a failed record saying why it could not be queued."""
    try:
        return queued_record(
            schedule.notebook,
            schedule.parameters,
            output_dir=schedule.output_dir or output_dir,
            profile=schedule.profile,
        )
    except LeptonError as e:
        return failed_record(schedule.notebook, e, parameters=schedule.parameters)


def fire_due(
    schedules: ScheduleStore, now: float | None = None, output_dir: str | Path | None = None
) -> list[JobRecord]:
    """Fire every due schedule once (a single catch-up firing for any missed slots)."""
    fired = []
    for s in schedules.due(now):
        job = job_for(s, output_dir)
        if schedules.fire(s, job, slot=s.next_fire):
            fired.append(job)
    return fired


def run_now(
    schedules: ScheduleStore, schedule_id: str, output_dir: str | Path | None = None
) -> JobRecord:
    """Queue one job of ``schedule_id`` now; its cron slots are untouched."""
    s = schedules.get(schedule_id)
    job = job_for(s, output_dir)
    if not schedules.fire(s, job, slot=None):
        schedules.get(schedule_id)  # removed meanwhile: NotFoundError
    return job


class Scheduler(threading.Thread):
    """Fire while holding the store's scheduler lock.

    It looks every ``tick`` seconds, and sooner when the earliest firing is nearer: a schedule
    fires on its slot, not up to a tick late. :meth:`wake` makes it look now (a schedule was
    added or edited in this process).
    """

    def __init__(
        self,
        schedules: ScheduleStore,
        *,
        tick: float = 5.0,
        output_dir: str | Path | None = None,
        on_fire: Callable[[list[JobRecord]], None] | None = None,
    ) -> None:
        super().__init__(name="lepton-scheduler", daemon=True)
        self.schedules, self.tick, self.output_dir = schedules, tick, output_dir
        self.on_fire = on_fire
        self._halt = threading.Event()
        self._poke = threading.Event()
        self._lock_file: IO[str] | None = None

    @property
    def active(self) -> bool:
        """Whether this scheduler holds the lock (is the one that fires)."""
        return self._lock_file is not None

    def wake(self) -> None:
        self._poke.set()

    def stop(self, timeout: float | None = 10.0) -> None:
        self._halt.set()
        self._poke.set()
        if self.is_alive():
            self.join(timeout)

    def _acquire(self) -> bool:
        if self._lock_file is None:
            f = open(lock_path(self.schedules.jobs, "scheduler"), "a+", encoding="utf-8")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                return False
            self._lock_file = f
        return True

    def run_once(self) -> list[JobRecord]:
        if not self._acquire():
            return []
        fired = fire_due(self.schedules, output_dir=self.output_dir)
        if fired and self.on_fire is not None:
            self.on_fire(fired)
        return fired

    def _until_next(self) -> float:
        """Seconds to wait: a tick, or less when the earliest firing comes sooner."""
        nxt = self.schedules.next_due() if self.active else None
        if nxt is None:
            return self.tick
        # never below 0.2 s: a slot that stays due (a store another process broke) is no spin
        return min(self.tick, max(nxt - time.time() + 0.01, 0.2))

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                wait = self.tick
                try:
                    self.run_once()
                    wait = self._until_next()
                except (LeptonError, sqlite3.Error) as e:  # a broken store: say so, retry
                    log.error("scheduler: %s", e)
                self._poke.wait(wait)
                self._poke.clear()
        finally:
            if self._lock_file is not None:
                with contextlib.suppress(OSError):
                    self._lock_file.close()
                self._lock_file = None


__all__ = [
    "Scheduler",
    "fire_due",
    "job_for",
    "run_now",
]
