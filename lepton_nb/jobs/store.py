"""SQLite job store (WAL), safe with several writer processes.

Each operation opens its own short-lived connection: connections are cheap, never shared across
threads or forked processes, and every write is one ``BEGIN IMMEDIATE`` transaction, so several
processes (a notebook, Dask workers, the CLI) can update records without losing any.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lepton_nb.errors import JobError, NotFoundError
from lepton_nb.jobs.models import JobRecord

# The heartbeat write also polls for cancel requests, hence every second.
HEARTBEAT_S = 1.0
# A running job whose heartbeat is older than this is reported as lost.
LOST_AFTER_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    notebook TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    heartbeat REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);
"""


def lepton_home() -> Path:
    return Path(os.environ.get("LEPTON_HOME") or Path.home() / ".lepton").expanduser()


def default_store_path() -> Path:
    return lepton_home() / "jobs.sqlite"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def effective_status(rec: JobRecord, now: float | None = None) -> str:
    """``running`` jobs whose process is gone or whose heartbeat went stale are ``lost``."""
    if rec.status != "running":
        return rec.status
    now = time.time() if now is None else now
    if rec.pid is not None and rec.host == socket.gethostname() and not _pid_alive(rec.pid):
        return "lost"
    beat = rec.heartbeat or rec.started or rec.created
    return "lost" if now - beat > LOST_AFTER_S else "running"


class JobStore:
    """Job records keyed by id, stored as JSON next to a few indexed columns."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise JobError(
                f"cannot open the job store at {self.path}: {e}; set LEPTON_HOME or pass "
                "store= a writable path"
            ) from e

    def __repr__(self) -> str:
        return f"JobStore({str(self.path)!r})"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=60000")
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- writes ----------------------------------------------------------------------------
    def put(self, rec: JobRecord) -> JobRecord:
        """Insert or replace a whole record."""
        with self._write() as db:
            self._insert(db, rec)
        return rec

    @staticmethod
    def _insert(db: sqlite3.Connection, rec: JobRecord) -> None:
        """Insert or replace ``rec`` inside the caller's transaction."""
        db.execute(
            "INSERT INTO jobs (id, notebook, status, created, heartbeat, data) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "notebook=excluded.notebook, status=excluded.status, "
            "heartbeat=excluded.heartbeat, data=excluded.data",
            (rec.id, rec.notebook, rec.status, rec.created, rec.heartbeat, _dump(rec)),
        )

    def claim(self, job_id: str, pid: int) -> JobRecord | None:
        """Queued -> running for ``pid``, atomically; None when it is no longer queued."""
        with self._write() as db:
            rec = self._load(db, job_id)
            if rec.status != "queued" or self._cancel_flag(db, rec.id):
                return None
            rec.status, rec.pid, rec.host = "running", pid, socket.gethostname()
            rec.started = rec.heartbeat = time.time()
            self._insert(db, rec)
        return rec

    def raw_running(self) -> list[JobRecord]:
        """Records stored as ``running``, whatever their process does (for the runner)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT data, heartbeat FROM jobs WHERE status='running'"
            ).fetchall()
        out = []
        for data, hb in rows:
            rec = _load_row(data)
            rec.heartbeat = hb
            out.append(rec)
        return out

    def queued_ids(self) -> list[str]:
        """Queued job ids, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT id FROM jobs WHERE status='queued' ORDER BY created, id"
            ).fetchall()
        return [r[0] for r in rows]

    @staticmethod
    def _cancel_flag(db: sqlite3.Connection, job_id: str) -> bool:
        row = db.execute("SELECT cancel_requested FROM jobs WHERE id=?", (job_id,)).fetchone()
        return bool(row and row[0])

    def update(self, job_id: str, fn: Callable[[JobRecord], None]) -> JobRecord:
        """Read-modify-write one record atomically (``fn`` mutates the record in place)."""
        with self._write() as db:
            rec = self._load(db, job_id)
            fn(rec)
            db.execute(
                "UPDATE jobs SET status=?, heartbeat=?, data=? WHERE id=?",
                (rec.status, rec.heartbeat, _dump(rec), rec.id),
            )
        return rec

    def beat(self, job_id: str) -> bool:
        """Touch the heartbeat; returns whether a cancel was requested."""
        now = time.time()
        with self._write() as db:
            db.execute("UPDATE jobs SET heartbeat=? WHERE id=?", (now, job_id))
            row = db.execute("SELECT cancel_requested FROM jobs WHERE id=?", (job_id,)).fetchone()
        return bool(row and row[0])

    def cancel_requested(self, job_id: str) -> bool:
        with self._connect() as db:
            row = db.execute("SELECT cancel_requested FROM jobs WHERE id=?", (job_id,)).fetchone()
        return bool(row and row[0])

    def request_cancel(self, job_id: str) -> None:
        with self._write() as db:
            db.execute("UPDATE jobs SET cancel_requested=1 WHERE id=?", (job_id,))

    # -- reads -----------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord:
        with self._connect() as db:
            rec = self._load(db, job_id)
        return _with_heartbeat(rec)

    def list(
        self, notebook: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[JobRecord]:
        sql, args = "SELECT data, heartbeat FROM jobs", []
        if notebook is not None:
            sql += " WHERE notebook LIKE ?"
            args.append(f"%{notebook}%")
        sql += " ORDER BY created DESC, id DESC"
        with self._connect() as db:
            rows = db.execute(sql, args).fetchall()
        out = [_with_heartbeat(_load_row(d), hb) for d, hb in rows]
        if status is not None:
            out = [r for r in out if r.status == status]
        return out[:limit] if limit is not None else out

    def _load(self, db: sqlite3.Connection, job_id: str) -> JobRecord:
        row = db.execute("SELECT data, heartbeat FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            matches = db.execute(
                "SELECT data, heartbeat FROM jobs WHERE id LIKE ? LIMIT 2", (f"%{job_id}%",)
            ).fetchall()
            if len(matches) != 1:
                how = "is ambiguous" if matches else "does not exist"
                raise NotFoundError(
                    f"job {job_id!r} {how} in {self.path}; see `lepton-nb jobs list` "
                    "or jobs.list() for ids"
                )
            row = matches[0]
        rec = _load_row(row[0])
        rec.heartbeat = row[1]
        return rec


def _dump(rec: JobRecord) -> str:
    return json.dumps(rec.model_dump(mode="json"), default=str)


def _load_row(data: str) -> JobRecord:
    return JobRecord.model_validate(json.loads(data))


def _with_heartbeat(rec: JobRecord, heartbeat: float | None = None) -> JobRecord:
    if heartbeat is not None:
        rec.heartbeat = heartbeat
    status = effective_status(rec)
    if status != rec.status:
        rec = rec.model_copy(update={"status": status})
    return rec


def open_store(store: JobStore | str | Path | None = None) -> JobStore:
    return store if isinstance(store, JobStore) else JobStore(store)
