"""``lepton-nb jobs check``: is the job store intact, and how to keep what is readable if not.

Checking only reads. Recovering never writes into the damaged file: it is renamed aside (with
its WAL) and the readable records are copied into a new store at the original path.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from lepton_nb.errors import JobError
from lepton_nb.jobs.store import _HEADER, JobStore, default_store_path, load_row


@dataclass
class StoreReport:
    path: str
    exists: bool = True
    ok: bool = True
    schema: int | None = None
    records: int = 0
    unreadable: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if not self.exists:
            return f"no job store at {self.path} yet (nothing recorded); nothing to check"
        head = f"job store {self.path}: " + ("ok" if self.ok else "DAMAGED")
        lines = [head, f"  schema version: {self.schema}", f"  readable records: {self.records}"]
        if self.unreadable:
            some = ", ".join(self.unreadable[:5])
            lines.append(f"  unreadable records: {len(self.unreadable)} ({some})")
        lines += [f"  problem: {p}" for p in self.problems]
        if not self.ok:
            lines.append(
                "  fix: `lepton-nb jobs check --recover` moves the file aside and keeps "
                "the readable records in a new store (the damaged file is kept)"
            )
        return "\n".join(lines)


def _rows(db: sqlite3.Connection, report: StoreReport) -> list[tuple[str, str, float | None]]:
    """Every row that can be read; damage is noted in ``report`` instead of raised."""
    rows: list[tuple[str, str, float | None]] = []
    try:
        ids = [r[0] for r in db.execute("SELECT rowid FROM jobs ORDER BY rowid")]
    except sqlite3.Error as e:
        # A damaged leaf stops a scan; lookups by rowid still reach the intact pages.
        report.problems.append(f"the jobs table cannot be scanned: {e}")
        try:
            top = db.execute("SELECT max(rowid) FROM jobs").fetchone()[0] or 0
        except sqlite3.Error:
            top = 100_000
        ids = list(range(1, top + 1))
    for rowid in ids:
        try:
            row = db.execute(
                "SELECT id, data, heartbeat FROM jobs WHERE rowid=?", (rowid,)
            ).fetchone()
        except sqlite3.Error as e:
            report.unreadable.append(f"rowid {rowid}")
            if len(report.problems) < 20:
                report.problems.append(f"row {rowid}: {e}")
            continue
        if row is None:
            continue
        try:
            load_row(row[1])
        except (ValueError, ValidationError, TypeError):
            report.unreadable.append(str(row[0]))
            continue
        rows.append(row)
    return rows


def check_store(path: str | Path | None = None) -> StoreReport:
    """Read every page and record of the store at ``path``; never writes to it."""
    p = Path(path).expanduser() if path is not None else default_store_path()
    report = StoreReport(str(p))
    if not p.exists():
        report.exists = False
        return report
    with open(p, "rb") as f:
        head = f.read(len(_HEADER))
    if head != _HEADER:
        report.ok = False
        report.problems.append(
            "the file is empty (0 bytes)" if not head else "the file is not an SQLite database"
        )
        return report
    try:
        db = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    except sqlite3.Error as e:
        report.ok = False
        report.problems.append(str(e))
        return report
    try:
        report.schema = int(db.execute("PRAGMA user_version").fetchone()[0])
        verdict = [r[0] for r in db.execute("PRAGMA integrity_check(20)")]
        if verdict != ["ok"]:
            report.problems += verdict
        report.records = len(_rows(db, report))
    except sqlite3.Error as e:
        report.problems.append(str(e))
    finally:
        db.close()
    report.ok = not report.problems and not report.unreadable
    return report


def recover_store(path: str | Path | None = None) -> tuple[Path, int, int]:
    """Move a damaged store aside and rebuild it from its readable records.

    Returns (where the damaged file now is, records kept, records lost).
    """
    p = Path(path).expanduser() if path is not None else default_store_path()
    if not p.exists():
        raise JobError(f"no job store at {p}; nothing to recover")
    aside = p.with_name(f"{p.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    if aside.exists():
        raise JobError(f"{aside} exists already; wait a second and try again")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{p}{suffix}")
        if src.exists():
            os.rename(src, f"{aside}{suffix}")
    report = StoreReport(str(aside))
    rows: list[tuple[str, str, float | None]] = []
    with open(aside, "rb") as f:
        readable = f.read(len(_HEADER)) == _HEADER
    if readable:
        with contextlib.suppress(sqlite3.Error):
            db = sqlite3.connect(aside)
            try:
                rows = _rows(db, report)
            finally:
                db.close()
    store = JobStore(p)
    for _, data, _hb in rows:
        store.put(load_row(data))
    return aside, len(rows), len(report.unreadable)


__all__ = ["StoreReport", "check_store", "recover_store"]
