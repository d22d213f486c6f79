"""Schedules: cron and time-zone checks, editing, one catch-up firing, no double firing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import nbformat
import pytest

from lepton_nb.errors import ConfigError, NotFoundError
from lepton_nb.jobs._scheduler import Scheduler, fire_due, run_now
from lepton_nb.jobs._schedules import Schedule, ScheduleStore, next_after


@pytest.fixture
def nb(tmp_path: Path) -> Path:
    book = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("n = 1")
    cell.metadata["tags"] = ["parameters"]
    book.cells = [cell, nbformat.v4.new_code_cell("print(n)")]
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "P", "language": "python"}
    path = tmp_path / "a.ipynb"
    nbformat.write(book, path)
    return path


@pytest.fixture
def store(tmp_path: Path) -> ScheduleStore:
    return ScheduleStore(tmp_path / "jobs.sqlite")


@pytest.mark.parametrize(
    ("cron", "tz", "needle"),
    [
        ("61 * * * *", "UTC", "invalid cron"),
        ("* * *", "UTC", "5 fields"),
        ("every minute", "UTC", "5 fields"),
        ("* * * * *", "Mars/Olympus", "unknown time zone"),
        ("* * * * *", "../etc/passwd", "unknown time zone"),
    ],
)
def test_bad_cron_or_timezone_is_refused(
    store: ScheduleStore, nb: Path, cron: str, tz: str, needle: str
) -> None:
    with pytest.raises(ConfigError, match=needle):
        store.add(Schedule(notebook=str(nb), cron=cron, timezone=tz))
    assert store.list() == []


def test_next_firing_honours_the_time_zone() -> None:
    t0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC
    utc = next_after("0 3 * * *", "UTC", t0)
    tokyo = next_after("0 3 * * *", "Asia/Tokyo", t0)
    assert time.gmtime(utc).tm_hour == 3 and time.gmtime(tokyo).tm_hour == 18  # 03:00 JST


def test_edit_pause_resume_remove(store: ScheduleStore, nb: Path) -> None:
    s = store.add(Schedule(notebook=str(nb), cron="0 3 * * *", parameters={"n": 2}))
    assert s.next_fire is not None and s.next_fire > time.time()
    assert store.update(s.id, {"parameters": {"n": 5}}).parameters == {"n": 5}
    with pytest.raises(ConfigError, match="cannot change notebook"):
        store.update(s.id, {"notebook": "/elsewhere.ipynb"})
    with pytest.raises(ConfigError, match="invalid cron"):
        store.update(s.id, {"cron": "99 * * * *"})
    assert store.get(s.id).cron == "0 3 * * *"  # nothing half-written
    assert store.update(s.id, {"paused": True}).paused
    assert store.due(now=time.time() + 10 * 86400) == []  # paused never fires
    assert not store.update(s.id, {"paused": False}).paused
    store.remove(s.id)
    with pytest.raises(NotFoundError, match="does not exist"):
        store.get(s.id)


def test_missed_firings_give_one_catch_up_run(store: ScheduleStore, nb: Path) -> None:
    s = store.add(Schedule(notebook=str(nb), cron="* * * * *"))
    # as if the scheduler had been down for an hour: 60 slots were missed
    with store.jobs._write() as db:
        db.execute("UPDATE schedules SET next_fire=? WHERE id=?", (time.time() - 3600, s.id))
    fired = fire_due(store)
    assert len(fired) == 1 and fired[0].status == "queued" and fired[0].schedule_id == s.id
    assert fire_due(store) == []  # the next slot is in the future
    after = store.get(s.id)
    assert after.next_fire is not None and after.next_fire > time.time()
    assert after.last_job == fired[0].id
    assert [j.id for j in store.jobs.list()] == [fired[0].id]


def test_two_schedulers_on_one_store_never_double_fire(tmp_path: Path, nb: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    ids = [
        ScheduleStore(path).add(Schedule(notebook=str(nb), cron="* * * * *")).id for _ in range(5)
    ]

    def rewind() -> None:
        with ScheduleStore(path).jobs._write() as db:
            db.execute("UPDATE schedules SET next_fire=?", (time.time() - 1,))

    # The lock: only one of two Scheduler threads is the active one.
    a, b = Scheduler(ScheduleStore(path), tick=0.05), Scheduler(ScheduleStore(path), tick=0.05)
    rewind()
    a.start()
    b.start()
    time.sleep(0.5)
    a.stop()
    b.stop()
    assert len(ScheduleStore(path).jobs.list()) == 5
    # The compare-and-set: even without the lock, 8 racing firers fire each slot once.
    rewind()
    barrier = threading.Barrier(8)

    def racer() -> None:
        barrier.wait()
        fire_due(ScheduleStore(path))

    threads = [threading.Thread(target=racer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    jobs = ScheduleStore(path).jobs.list()
    assert len(jobs) == 10 and sorted({j.schedule_id for j in jobs}) == sorted(ids)


def test_firing_a_deleted_notebook_records_a_failed_job(store: ScheduleStore, nb: Path) -> None:
    s = store.add(Schedule(notebook=str(nb), cron="0 3 * * *"))
    nb.unlink()
    job = run_now(store, s.id)
    assert job.status == "failed" and job.error is not None
    assert "does not exist" in (job.error.evalue or "")
    assert store.jobs.get(job.id).status == "failed" and store.get(s.id).last_job == job.id


def test_the_scheduler_fires_on_the_slot_not_at_the_next_tick(
    store: ScheduleStore, nb: Path
) -> None:
    """With a 60 s tick, a slot 0.3 s away and a schedule added later (wake) both fire long
    before the next tick would have come."""
    soon = store.add(Schedule(notebook=str(nb), cron="@daily", next_fire=time.time() + 0.3))
    sched = Scheduler(store, tick=60.0)
    sched.start()
    try:
        deadline = time.monotonic() + 30
        while not store.jobs.list() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [j.schedule_id for j in store.jobs.list()] == [soon.id]
        later = store.add(Schedule(notebook=str(nb), cron="@daily", next_fire=time.time() - 1))
        sched.wake()
        while len(store.jobs.list()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert {j.schedule_id for j in store.jobs.list()} == {soon.id, later.id}
    finally:
        sched.stop()
