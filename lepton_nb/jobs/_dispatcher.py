"""The job runner: a process detached from the Jupyter server that starts queued jobs.

One runner per store, guarded by an exclusive ``flock`` on ``<store>.runner.lock`` (released by
the kernel when the process dies, so a SIGKILL never leaves a stale lock). It starts each job
in a process of its own, forked from the runner after papermill and nbconvert are imported
(a fresh interpreter per job would pay ~2 CPU-seconds of imports), at most ``max_parallel`` at
once counting every record stored as ``running`` whose process is alive, including jobs started
by an earlier runner that died: those are re-attached simply by being counted and left to
finish. A ``running`` record whose process is gone is marked ``lost`` with the reason. The
runner exits after ``idle_exit`` seconds with nothing queued or running; the server (or
``lepton-nb scheduler``) starts a new one when work arrives.

``max_parallel_jobs`` lives in the store (table ``settings``): the server writes it when it
starts, and so does ``lepton-nb scheduler --max-parallel N``; the runner re-reads it at every
tick, so a changed limit reaches a runner that is already up.
A job with a cluster profile runs on that profile's cluster (:mod:`lepton_nb.jobs._oncluster`);
its process here only watches it, and still counts against the limit.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from lepton_nb.errors import ConfigError
from lepton_nb.jobs.models import JobRecord
from lepton_nb.jobs.store import JobStore, as_lost, effective_status, open_store

POLL_S = 0.3
MAX_PARALLEL = "max_parallel_jobs"  # the store setting


def lock_path(store: JobStore, what: str) -> Path:
    return store.path.with_name(f"{store.path.name}.{what}.lock")


@contextlib.contextmanager
def try_lock(path: Path) -> Iterator[IO[str] | None]:
    """Yield the open lock file when the exclusive lock was taken, else None (never waits)."""
    f = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield f
    finally:
        f.close()


def check_max_parallel(n: int) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"max_parallel_jobs must be an integer >= 1, got {n!r}")
    return n


def set_max_parallel(store: JobStore, n: int) -> None:
    """Make ``n`` the limit of the store's runner, the one running now included."""
    store.set_setting(MAX_PARALLEL, str(check_max_parallel(n)))


def max_parallel(store: JobStore, default: int) -> int:
    """The limit stored for ``store``, or ``default`` when none (or a bad one) is stored."""
    value = store.setting(MAX_PARALLEL)
    try:
        return check_max_parallel(int(value)) if value is not None else default
    except (ValueError, ConfigError):
        return default


def mark_lost(store: JobStore) -> list[str]:
    """Every record stored as ``running`` without a live process becomes ``lost``, with why."""
    lost = []
    for rec in store.raw_running():
        if effective_status(rec) != "lost":
            continue

        def mark(r: JobRecord) -> None:
            # the same reason, end time and partial notebook a reader of the store computes
            lost = as_lost(r)
            for name in ("status", "ended", "duration_s", "error", "output", "partial"):
                setattr(r, name, getattr(lost, name))

        store.update(rec.id, mark)
        lost.append(rec.id)
    return lost


class Dispatcher:
    """Start queued jobs of ``store``, at most the stored limit at a time (call :meth:`run`).

    ``max_parallel`` is the limit until one is stored (see :func:`set_max_parallel`).
    """

    def __init__(self, store: JobStore, max_parallel: int = 2, idle_exit: float = 30.0) -> None:
        self.store, self.max_parallel = store, check_max_parallel(max_parallel)
        self.idle_exit = idle_exit
        self._children: list[int] = []
        self._halt = threading.Event()
        self._lock_fd: int | None = None

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> bool:
        """Run until idle; False when another runner already serves this store."""
        with try_lock(lock_path(self.store, "runner")) as lock:
            if lock is None:
                return False
            lock.truncate(0)
            lock.write(f"{os.getpid()}\n")
            lock.flush()
            self._lock_fd = lock.fileno()
            _preload()
            idle_since = time.monotonic()
            while not self._halt.is_set():
                busy = self.step()
                if busy:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > self.idle_exit:
                    break
                self._halt.wait(POLL_S)
            return True

    def step(self) -> bool:
        """One pass; returns whether anything is queued or running."""
        self._children = [pid for pid in self._children if not _reaped(pid)]
        mark_lost(self.store)
        self.max_parallel = max_parallel(self.store, self.max_parallel)
        running = [r for r in self.store.raw_running() if effective_status(r) == "running"]
        queued = self.store.queued_ids()
        for job_id in queued[: max(0, self.max_parallel - len(running))]:
            if self.store.claim(job_id, os.getpid()) is not None:
                self._children.append(self._spawn(job_id))
        return bool(running or queued or self._children)

    def _spawn(self, job_id: str) -> int:
        # The runner has no other threads, so forking it is safe.
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child (its coverage is the job's record)
            # A forked child shares the runner's flock: close our copy (never LOCK_UN, which
            # would release the runner's lock too), or a job outliving a killed runner keeps the
            # store looking served and no new runner starts its queued jobs.
            if self._lock_fd is not None:
                os.close(self._lock_fd)
            code = 1
            try:
                code = run_claimed(self.store.path, job_id)
            finally:
                os._exit(code)
        return pid


def _preload() -> None:
    import nbformat  # noqa: F401
    import papermill  # noqa: F401

    from lepton_nb.jobs._execute import _preload as preload_html

    preload_html()


def _reaped(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


def run_claimed(store_path: Path, job_id: str) -> int:
    """Run job ``job_id`` (claimed: stored as ``running``) in this process; the exit code."""
    from lepton_nb.jobs._execute import execute
    from lepton_nb.jobs._oncluster import execute_on_profile

    store = JobStore(store_path)
    rec = store.get(job_id)
    if rec.status != "running" or rec.output is None:
        return 0  # cancelled between the claim and this start
    run = execute_on_profile if rec.profile else execute
    done = run(
        rec,
        Path(rec.notebook),
        Path(rec.output),
        store,
        html=rec.html_copy,
        overwrite=rec.overwrite,
    )
    return 0 if done.status == "succeeded" else 1


def runner_pid(store: JobStore) -> int | None:
    """The pid of the runner serving ``store``, or None when none holds the lock."""
    path = lock_path(store, "runner")
    if not path.exists():
        return None
    with try_lock(path) as lock:
        if lock is not None:
            return None
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def ensure_runner(
    store: JobStore | str | Path | None = None, max_parallel: int = 2, idle_exit: float = 30.0
) -> subprocess.Popen[bytes] | None:
    """Start a detached runner for ``store`` unless one is already running.

    ``max_parallel`` is its limit only until one is stored: the server and ``lepton-nb
    scheduler`` store theirs when they start (:func:`set_max_parallel`), not at each submit,
    so the one that started last sets the limit."""
    db = open_store(store)
    check_max_parallel(max_parallel)
    if runner_pid(db) is not None:
        return None
    cmd = [
        sys.executable,
        "-m",
        "lepton_nb.jobs._dispatcher",
        str(db.path),
        "--max-parallel",
        str(max_parallel),
        "--idle-exit",
        str(idle_exit),
    ]
    with open(db.path.parent / "runner.log", "ab") as out:
        # A new session: the server's Ctrl-C / SIGKILL of its process group never reaches it.
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True
        )
    # Reap it when it exits (it is our child while this process lives).
    threading.Thread(target=proc.wait, name="lepton-runner-reaper", daemon=True).start()
    return proc


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lepton_nb.jobs._dispatcher")
    p.add_argument("store")
    p.add_argument("--max-parallel", type=int, default=2)
    p.add_argument("--idle-exit", type=float, default=30.0)
    args = p.parse_args(argv)
    Dispatcher(JobStore(args.store), args.max_parallel, args.idle_exit).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "POLL_S",
    "Dispatcher",
    "check_max_parallel",
    "ensure_runner",
    "lock_path",
    "main",
    "mark_lost",
    "run_claimed",
    "runner_pid",
    "try_lock",
]
