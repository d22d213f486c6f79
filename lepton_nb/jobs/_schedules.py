"""Schedules (job definitions): a notebook, its parameters and a cron expression in a time zone.

Schedules live in the job store's SQLite file (table ``schedules``). Firing is a compare-and-set
inside one ``BEGIN IMMEDIATE`` transaction: the firing whose ``next_fire`` still matches advances
it and inserts the queued job, so two schedulers on one store can never fire the same slot twice
(the scheduler's file lock, see :mod:`lepton_nb.jobs._scheduler`, only keeps the second one idle).

Missed firings: when a scheduler finds a schedule whose ``next_fire`` is in the past (nothing was
running at that time), it fires it **once** and moves ``next_fire`` to the first slot after now,
however many slots were missed.
"""

from __future__ import annotations

import builtins
import json
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from lepton_nb.errors import ConfigError, NotFoundError
from lepton_nb.jobs.models import JobRecord
from lepton_nb.jobs.store import JobStore, open_store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schedules (
    id TEXT PRIMARY KEY,
    next_fire REAL,
    paused INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL
);
"""
# Fields a PATCH may change; anything else is refused by name.
EDITABLE = ("parameters", "cron", "timezone", "profile", "paused", "name")


class Schedule(BaseModel):
    """One job definition; round-trips through ``model_dump()`` / ``model_validate()``."""

    id: str = Field(default_factory=lambda: "s-" + uuid.uuid4().hex[:8])
    name: str = ""
    notebook: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    cron: str
    timezone: str = "UTC"
    profile: str | None = None
    output_dir: str | None = None
    paused: bool = False
    created: float = Field(default_factory=time.time)
    next_fire: float | None = None
    last_fire: float | None = None
    last_job: str | None = None


def check_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ConfigError(
            f"unknown time zone {name!r}; use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from e


def check_cron(expr: str) -> str:
    from croniter import croniter

    expr = " ".join(str(expr).split())
    if len(expr.split()) != 5 and not expr.startswith("@"):
        raise ConfigError(
            f"cron expression {expr!r} must have 5 fields (minute hour day month weekday), "
            "e.g. '0 3 * * *' for 03:00 every day, or a nickname like '@daily'"
        )
    if not croniter.is_valid(expr):
        raise ConfigError(
            f"invalid cron expression {expr!r}; fields are minute (0-59) hour (0-23) "
            "day (1-31) month (1-12) weekday (0-6), e.g. '*/5 * * * *'"
        )
    return expr


def next_after(cron: str, timezone: str, after: float) -> float:
    """The first firing strictly after ``after`` (epoch seconds), computed in ``timezone``."""
    from croniter import croniter

    tz = check_timezone(timezone)
    return float(croniter(cron, datetime.fromtimestamp(after, tz)).get_next(float))


def check_profile(profile: str | None) -> None:
    if profile is not None:
        from lepton_nb.cluster import get_profile

        get_profile(profile)  # ConfigError naming the known profiles


class ScheduleStore:
    """Schedules in the job store's database; every write is one immediate transaction."""

    def __init__(self, store: JobStore | str | Path | None = None) -> None:
        self.jobs = open_store(store)
        with self.jobs._write() as db:
            db.execute(_SCHEMA.strip().rstrip(";"))

    # -- reads -----------------------------------------------------------------------------
    def list(self) -> list[Schedule]:
        with self.jobs._connect() as db:
            rows = db.execute("SELECT data FROM schedules ORDER BY id").fetchall()
        return sorted((_load(d) for (d,) in rows), key=lambda s: s.created)

    def get(self, schedule_id: str) -> Schedule:
        with self.jobs._connect() as db:
            row = db.execute("SELECT data FROM schedules WHERE id=?", (schedule_id,)).fetchone()
        if row is None:
            raise NotFoundError(
                f"schedule {schedule_id!r} does not exist in {self.jobs.path}; "
                "see `lepton-nb schedule list` for ids"
            )
        return _load(row[0])

    # -- writes ----------------------------------------------------------------------------
    def add(self, schedule: Schedule) -> Schedule:
        schedule.cron = check_cron(schedule.cron)
        check_timezone(schedule.timezone)
        if schedule.next_fire is None:
            schedule.next_fire = next_after(schedule.cron, schedule.timezone, time.time())
        with self.jobs._write() as db:
            db.execute(
                "INSERT INTO schedules (id, next_fire, paused, data) VALUES (?, ?, ?, ?)",
                (schedule.id, schedule.next_fire, int(schedule.paused), _dump(schedule)),
            )
        return schedule

    def update(self, schedule_id: str, changes: dict[str, Any]) -> Schedule:
        unknown = sorted(set(changes) - set(EDITABLE))
        if unknown:
            raise ConfigError(
                f"cannot change {', '.join(unknown)} of a schedule; editable fields: "
                f"{', '.join(EDITABLE)} (to run another notebook, add a new schedule)"
            )
        if "cron" in changes:
            changes["cron"] = check_cron(changes["cron"])
        if "timezone" in changes:
            check_timezone(changes["timezone"])
        with self.jobs._write() as db:
            current = self._get(db, schedule_id)
            data = current.model_dump()
            data.update(changes)
            new = Schedule.model_validate(data)
            if {"cron", "timezone", "paused"} & set(changes) and not new.paused:
                new.next_fire = next_after(new.cron, new.timezone, time.time())
            self._save(db, new)
        return new

    def remove(self, schedule_id: str) -> Schedule:
        with self.jobs._write() as db:
            current = self._get(db, schedule_id)
            db.execute("DELETE FROM schedules WHERE id=?", (schedule_id,))
        return current

    def fire(self, schedule: Schedule, job: JobRecord, slot: float | None) -> bool:
        """Record ``job`` (queued) as the firing of ``slot`` (None: run now), atomically.

        Returns False, writing nothing, when another scheduler fired this slot first or the
        schedule was paused or removed meanwhile.
        """
        now = time.time()
        with self.jobs._write() as db:
            row = db.execute(
                "SELECT next_fire, paused, data FROM schedules WHERE id=?", (schedule.id,)
            ).fetchone()
            if row is None:
                return False
            current = _load(row[2])
            if slot is not None:
                if row[1] or row[0] is None or abs(row[0] - slot) > 1e-6:
                    return False
                current.next_fire = next_after(current.cron, current.timezone, max(now, slot))
            current.last_fire, current.last_job = now, job.id
            job.schedule_id = current.id
            self.jobs._insert(db, job)
            self._save(db, current)
        return True

    def due(self, now: float | None = None) -> builtins.list[Schedule]:
        now = time.time() if now is None else now
        with self.jobs._connect() as db:
            rows = db.execute(
                "SELECT next_fire, data FROM schedules WHERE paused=0 AND next_fire <= ?", (now,)
            ).fetchall()
        return [_load(d).model_copy(update={"next_fire": nf}) for nf, d in rows]

    def next_due(self) -> float | None:
        """The earliest ``next_fire`` of the schedules not paused (None when there is none)."""
        with self.jobs._connect() as db:
            row = db.execute("SELECT MIN(next_fire) FROM schedules WHERE paused=0").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def _get(self, db: Any, schedule_id: str) -> Schedule:
        row = db.execute("SELECT data FROM schedules WHERE id=?", (schedule_id,)).fetchone()
        if row is None:
            raise NotFoundError(
                f"schedule {schedule_id!r} does not exist; see `lepton-nb schedule list`"
            )
        return _load(row[0])

    @staticmethod
    def _save(db: Any, s: Schedule) -> None:
        db.execute(
            "UPDATE schedules SET next_fire=?, paused=?, data=? WHERE id=?",
            (s.next_fire, int(s.paused), _dump(s), s.id),
        )


def _dump(s: Schedule) -> str:
    return json.dumps(s.model_dump(mode="json"))


def _load(data: str) -> Schedule:
    return Schedule.model_validate(json.loads(data))


__all__ = [
    "EDITABLE",
    "Schedule",
    "ScheduleStore",
    "check_cron",
    "check_profile",
    "check_timezone",
    "next_after",
]
