"""JobStore: round trips, id lookup, lost-job detection and several writer processes."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lepton_nb.errors import NotFoundError
from lepton_nb.jobs.models import ErrorInfo, GitInfo, JobRecord
from lepton_nb.jobs.store import LOST_AFTER_S, JobStore, default_store_path


def _rec(**kw: object) -> JobRecord:
    base: dict[str, object] = {"notebook": "/x/nb.ipynb", "notebook_sha256": "0" * 64}
    base.update(kw)
    return JobRecord(**base)  # type: ignore[arg-type]


def test_default_path_honours_lepton_home(tmp_home: Path) -> None:
    assert default_store_path() == tmp_home / "jobs.sqlite"
    store = JobStore()
    assert store.path == tmp_home / "jobs.sqlite" and store.path.exists()


def test_record_round_trips_through_the_store(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.sqlite")
    rec = _rec(
        parameters={"lr": 0.1, "text": 'a"b\nü'},
        records={"acc": 0.9},
        status="failed",
        error=ErrorInfo(cell_index=2, ename="ValueError", evalue="bad"),
        git=GitInfo(root="/r", commit="abc", dirty=True),
        seed=7,
    )
    store.put(rec)
    got = store.get(rec.id)
    assert got.model_dump() == rec.model_dump()
    assert JobRecord.model_validate(rec.model_dump(mode="json")) == rec


def test_get_by_unique_part_of_id_and_clear_errors(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.sqlite")
    a, b = (
        store.put(_rec(id="20260101-000000-aaaaaa")),
        store.put(_rec(id="20260101-000000-bbbbbb")),
    )
    assert store.get("aaaaaa").id == a.id and store.get("bbbb").id == b.id
    with pytest.raises(NotFoundError, match="ambiguous"):
        store.get("20260101")
    with pytest.raises(NotFoundError, match="does not exist"):
        store.get("zzz")


def test_list_filters_and_orders_newest_first(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.sqlite")
    old = store.put(_rec(created=1.0, status="succeeded"))
    new = store.put(_rec(created=2.0, status="failed", notebook="/y/other.ipynb"))
    assert [r.id for r in store.list()] == [new.id, old.id]
    assert [r.id for r in store.list(status="succeeded")] == [old.id]
    assert [r.id for r in store.list(notebook="other")] == [new.id]
    assert store.list(limit=1)[0].id == new.id


def test_running_job_of_a_dead_process_is_reported_lost(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.sqlite")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    import socket

    dead = store.put(
        _rec(status="running", pid=proc.pid, host=socket.gethostname(), heartbeat=time.time())
    )
    stale = store.put(
        _rec(status="running", host="elsewhere", heartbeat=time.time() - LOST_AFTER_S - 5)
    )
    fresh = store.put(_rec(status="running", host="elsewhere", heartbeat=time.time()))
    assert store.get(dead.id).status == "lost"
    assert store.get(stale.id).status == "lost"
    assert store.get(fresh.id).status == "running"
    assert {r.id for r in store.list(status="lost")} == {dead.id, stale.id}


def test_heartbeat_and_cancel_flag(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.sqlite")
    rec = store.put(_rec(status="running", heartbeat=0.0))
    assert store.beat(rec.id) is False
    assert (store.get(rec.id).heartbeat or 0) > time.time() - 5
    store.request_cancel(rec.id)
    assert store.beat(rec.id) is True and store.cancel_requested(rec.id)


def _writer(path: str, worker: int, n: int) -> None:
    store = JobStore(path)
    for i in range(n):
        rec = store.put(_rec(id=f"w{worker}-{i}", status="running"))

        def finish(r: JobRecord, i: int = i) -> None:
            r.status = "succeeded"
            r.records[f"r{i}"] = i

        store.update(rec.id, finish)


def test_concurrent_writer_processes_lose_no_record(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite")
    JobStore(path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    recs = JobStore(path).list()
    assert len(recs) == 160
    assert all(r.status == "succeeded" and len(r.records) == 1 for r in recs)
