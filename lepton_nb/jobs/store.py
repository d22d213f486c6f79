"""SQLite job store (WAL), safe with several writer processes.

Each operation opens its own short-lived connection: connections are cheap, never shared across
threads or forked processes, and every write is one ``BEGIN IMMEDIATE`` transaction, so several
processes (a notebook, Dask workers, the CLI) can update records without losing any.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from lepton_nb.errors import JobError, NotFoundError
from lepton_nb.jobs.models import ErrorInfo, JobRecord

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
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# PRAGMA user_version of the layout above. Stores made before versioning read as 0. A change of
# layout adds a step to MIGRATIONS; the store is backed up before any step runs.
SCHEMA_VERSION = 2


def _add_settings(db: sqlite3.Connection) -> None:
    """Schema 2: settings shared by the processes on one store (the runner's limit)."""
    db.execute("CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {0: lambda db: None, 1: _add_settings}
_HEADER = b"SQLite format 3\x00"
# SQLITE_CORRUPT and SQLITE_NOTADB: the file is damaged, not merely busy
_DAMAGED_CODES = (11, 26)


class StoreDamagedError(JobError):
    """The job store file is damaged or was emptied; it is left untouched (HTTP 503)."""


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
    # a killed process whose parent died stays a zombie where nothing reaps orphans (a
    # container without an init): it answers signal 0 but runs nothing
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()[:1] != ["Z"]
    except OSError:
        return True


def lost_reason(rec: JobRecord, now: float | None = None) -> str | None:
    """Why a ``running`` job is really lost (its process died, or the worker went silent)."""
    if rec.status != "running":
        return None
    now = time.time() if now is None else now
    if rec.pid is not None and rec.host == socket.gethostname() and not _pid_alive(rec.pid):
        return (
            f"its process (pid {rec.pid} on {rec.host}) ended without recording a result: the "
            "runner, server, CLI or kernel running it died or was killed"
        )
    beat = rec.heartbeat or rec.started or rec.created
    if now - beat > LOST_AFTER_S:
        return (
            f"no heartbeat from {rec.host or 'its host'} (pid {rec.pid}) since "
            f"{time.ctime(beat)}: the worker or machine running it was lost"
        )
    return None


def effective_status(rec: JobRecord, now: float | None = None) -> str:
    """``running`` jobs whose process is gone or whose heartbeat went stale are ``lost``."""
    return "lost" if lost_reason(rec, now) is not None else rec.status


def as_lost(rec: JobRecord, now: float | None = None) -> JobRecord:
    """``rec`` as a ``lost`` job: ended when last seen, the reason, and what it left behind."""
    detail = lost_reason(rec, now)
    if detail is None:
        return rec
    partial = rec.partial if rec.partial and Path(rec.partial).exists() else None
    output = rec.output if rec.output and Path(rec.output).exists() else partial
    detail += (
        f"; the notebook as far as it ran is at {partial}" if partial else "; it left no notebook"
    )
    ended = rec.ended or rec.heartbeat or rec.started or rec.created
    return rec.model_copy(
        update={
            "status": "lost",
            "ended": ended,
            "duration_s": ended - rec.started if rec.started else None,
            "error": rec.error or ErrorInfo(reason="lost", evalue=detail),
            "output": output,
            "partial": partial,
        }
    )


class JobStore:
    """Job records keyed by id, stored as JSON next to a few indexed columns."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        try:
            if not self.path.parent.exists():
                # records hold parameters and results: private to the user from the start
                self.path.parent.mkdir(parents=True, mode=0o700)
            if not self.path.exists():
                self._create()
            self._check_header()
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                self._migrate(db)
        except OSError as e:
            raise JobError(
                f"cannot open the job store at {self.path}: {e}; set LEPTON_HOME or pass "
                "store= a writable path"
            ) from e

    def _create(self) -> None:
        """Make a new store under a temporary name and link it into place.

        A store therefore never exists as an empty file of our making: an empty file at the
        store's path is a store that was truncated, and is reported as such.
        """
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.new")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            db = sqlite3.connect(tmp, isolation_level=None)
            try:
                db.executescript(_SCHEMA)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            finally:
                db.close()
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def _header_problem(self) -> str | None:
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(_HEADER))
        except FileNotFoundError:
            return "is gone (deleted or moved while in use)"
        if head == _HEADER:
            return None
        return "is empty (0 bytes)" if not head else "is not an SQLite database"

    def _check_header(self) -> None:
        what = self._header_problem()
        if what is not None:
            raise StoreDamagedError(
                f"the job store {self.path} {what}: it existed and its records are unreadable. "
                f"It was left untouched. {recovery_hint(self.path)}"
            )

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise JobError(
                f"the job store {self.path} has schema {version}, newer than this lepton_nb "
                f"understands ({SCHEMA_VERSION}); upgrade lepton-nb or use another store"
            )
        if version == SCHEMA_VERSION:
            return
        has_jobs = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='jobs'"
        ).fetchone()
        if has_jobs:
            self.backup(suffix=f"schema{version}")
        db.executescript(_SCHEMA)
        for step in range(version, SCHEMA_VERSION):
            MIGRATIONS[step](db)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def backup(self, dest: str | Path | None = None, suffix: str = "backup") -> Path:
        """A consistent copy of the store (SQLite's online backup); returns its path."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = (
            Path(dest)
            if dest is not None
            else self.path.with_name(f"{self.path.name}.{suffix}-{stamp}-{uuid.uuid4().hex[:4]}")
        )
        with self._connect() as src:
            out = sqlite3.connect(target)
            try:
                src.backup(out)
                out.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            finally:
                out.close()
        return target

    def _error(self, e: sqlite3.Error) -> JobError:
        what = self._header_problem()  # emptied or replaced while this process had it open
        if what is not None:
            return StoreDamagedError(
                f"the job store {self.path} {what}: its records are unreadable ({e}). It was "
                f"left untouched. {recovery_hint(self.path)}"
            )
        code = getattr(e, "sqlite_errorcode", 0) & 0xFF
        text = str(e)
        damaged = ("malformed", "not a database", "no such table")
        if code in _DAMAGED_CODES or any(d in text for d in damaged):
            return StoreDamagedError(
                f"the job store {self.path} is damaged ({e}); it was left untouched. "
                f"{recovery_hint(self.path)}"
            )
        return JobError(f"the job store {self.path} failed: {e}")

    def __repr__(self) -> str:
        return f"JobStore({str(self.path)!r})"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except sqlite3.Error as e:
            raise self._error(e) from e
        try:
            db.execute("PRAGMA busy_timeout=60000")
            yield db
        except sqlite3.Error as e:
            raise self._error(e) from e
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                with contextlib.suppress(sqlite3.Error):  # a damaged file may refuse even this
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
            rows = db.execute("SELECT data, heartbeat FROM jobs WHERE status='running'").fetchall()
        out = []
        for data, hb in rows:
            rec = self._parse(data)
            rec.heartbeat = hb
            out.append(rec)
        return out

    def active_outputs(self) -> set[str]:
        """Outputs of jobs queued or running (not to be claimed by another submission)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT data FROM jobs WHERE status IN ('queued', 'running')"
            ).fetchall()
        return {str(self._parse(r[0]).output) for r in rows}

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

    def set_setting(self, name: str, value: str) -> None:
        """Store a setting every process on this store reads (say, ``max_parallel_jobs``)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                (name, value),
            )

    def setting(self, name: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT value FROM settings WHERE name=?", (name,)).fetchone()
        return None if row is None else str(row[0])

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
        out = [_with_heartbeat(self._parse(d), hb) for d, hb in rows]
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
        rec = self._parse(row[0])
        rec.heartbeat = row[1]
        return rec

    def _parse(self, data: str) -> JobRecord:
        try:
            return load_row(data)
        except (ValueError, ValidationError) as e:  # JSONDecodeError is a ValueError
            raise StoreDamagedError(
                f"a record in the job store {self.path} is unreadable ({str(e)[:200]}). "
                f"{recovery_hint(self.path)}"
            ) from None


def recovery_hint(path: Path) -> str:
    backups = sorted(p.name for p in path.parent.glob(f"{path.name}.*-*") if p.is_file())
    have = f" Backups next to it: {', '.join(backups[-3:])}." if backups else ""
    return (
        f"Run `lepton-nb jobs check --store {path}` to see what is readable and "
        f"`lepton-nb jobs check --recover` to move it aside and keep the readable records; or "
        f"restore a backup (copy it over {path.name}, with its -wal file if any).{have}"
    )


def _dump(rec: JobRecord) -> str:
    return json.dumps(rec.model_dump(mode="json"), default=str)


def load_row(data: str) -> JobRecord:
    return JobRecord.model_validate(json.loads(data))


def _with_heartbeat(rec: JobRecord, heartbeat: float | None = None) -> JobRecord:
    if heartbeat is not None:
        rec.heartbeat = heartbeat
    return as_lost(rec)


def open_store(store: JobStore | str | Path | None = None) -> JobStore:
    return store if isinstance(store, JobStore) else JobStore(store)


__all__ = [
    "HEARTBEAT_S",
    "LOST_AFTER_S",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "JobStore",
    "StoreDamagedError",
    "as_lost",
    "default_store_path",
    "effective_status",
    "lepton_home",
    "load_row",
    "lost_reason",
    "open_store",
    "recovery_hint",
]
