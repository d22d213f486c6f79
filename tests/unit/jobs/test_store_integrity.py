"""Issue 11 items 3-4: damaged or emptied stores are reported, never overwritten; lost jobs
say why."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lepton_nb.cli import main
from lepton_nb.errors import JobError
from lepton_nb.jobs._store_check import check_store
from lepton_nb.jobs.models import JobRecord
from lepton_nb.jobs.store import SCHEMA_VERSION, JobStore, StoreDamagedError


def _rec(**kw: object) -> JobRecord:
    base: dict[str, object] = {"notebook": "/x/nb.ipynb", "notebook_sha256": "0" * 64}
    base.update(kw)
    return JobRecord(**base)  # type: ignore[arg-type]


def _filled(path: Path, n: int = 60) -> JobStore:
    store = JobStore(path)
    for i in range(n):
        store.put(_rec(parameters={"i": i, "pad": "x" * 2000}))
    with sqlite3.connect(path) as db:  # fold the WAL in, so the pages live in the main file
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return store


def test_a_truncated_store_is_reported_and_left_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "jobs.sqlite"
    _filled(path, 3)
    path.write_bytes(b"")  # what a full disk or a bad copy leaves
    with pytest.raises(StoreDamagedError, match=r"is empty \(0 bytes\).*jobs check"):
        JobStore(path)
    assert path.stat().st_size == 0  # not silently re-created as a new, empty store
    assert main(["--store", str(path), "jobs", "list"]) == 1
    err = capsys.readouterr().err
    assert "is empty" in err and "Traceback" not in err
    assert main(["--store", str(path), "jobs", "check"]) == 1
    assert "DAMAGED" in capsys.readouterr().out
    assert main(["--store", str(path), "jobs", "check", "--recover"]) == 0
    out = capsys.readouterr().out
    assert "0 readable record(s)" in out
    aside = list(tmp_path.glob("jobs.sqlite.damaged-*"))
    assert len(aside) == 1 and aside[0].stat().st_size == 0  # kept aside, as it was
    assert JobStore(path).list() == []


def test_corrupted_pages_raise_job_error_and_check_recovers_readable_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "jobs.sqlite"
    _filled(path)
    size = path.stat().st_size
    with open(path, "r+b") as f:  # scribble over interior pages, keep the header
        f.seek(size // 2)
        f.write(bytes(range(256)) * 32)
    damaged = path.read_bytes()
    with pytest.raises(JobError, match=r"damaged|unreadable") as info:
        JobStore(path).list()
    assert "jobs check" in str(info.value)
    assert path.read_bytes() == damaged  # never written to
    report = check_store(path)
    assert not report.ok and report.problems
    assert main(["--store", str(path), "jobs", "check", "--recover"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    kept = JobStore(path).list()
    assert 0 < len(kept) < 60
    assert check_store(path).ok


def test_schema_migration_backs_the_store_up_first(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    _filled(path, 2)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=0")  # a store from before versioning
    JobStore(path)
    backups = list(tmp_path.glob("jobs.sqlite.schema0-*"))
    assert len(backups) == 1
    db = sqlite3.connect(backups[0])  # the backup is the store as it was
    assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 2
    assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    db.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    JobStore(path)
    assert len(list(tmp_path.glob("jobs.sqlite.schema*"))) == 1  # only once
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(JobError, match="newer than this lepton_nb"):
        JobStore(path)


def test_a_lost_job_says_why_when_and_where_its_partial_notebook_is(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    partial = tmp_path / ".out.x.partial.ipynb"
    partial.write_text("{}")
    started = time.time() - 5
    rec = store.put(
        _rec(
            status="running",
            pid=dead.pid,
            host=socket.gethostname(),
            started=started,
            heartbeat=started + 1,
            output=str(tmp_path / "out.ipynb"),
            partial=str(partial),
        )
    )
    got = store.get(rec.id)
    assert got.status == "lost" and got.ended == pytest.approx(started + 1)
    assert got.error is not None and got.error.reason == "lost"
    assert "ended without recording" in (got.error.evalue or "")
    assert str(partial) in (got.error.evalue or "")
    assert got.output == str(partial)  # the path that exists, not the one never written
    stale = store.put(_rec(status="running", host="elsewhere", started=1.0, heartbeat=2.0))
    got = store.get(stale.id)
    assert got.status == "lost" and got.error and "no heartbeat" in (got.error.evalue or "")
    assert got.ended == 2.0 and got.output is None
