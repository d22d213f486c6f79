"""lepton_nb.train._procs: one process per rank, forked from a per-worker fork server.

Real processes throughout: the fork server and its children are started from this test
process exactly as a Dask worker starts them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import psutil
import pytest

from lepton_nb.train import _procs as procs

WARM = ("json",)  # a cheap warm set: these tests are about the mechanism, not torch


def _work(n: int) -> dict[str, Any]:
    for i in range(n):
        procs.emit({"i": i})
    return {"pid": os.getpid(), "in_child": procs.in_child(), "sum": n * (n - 1) // 2}


def test_call_returns_and_relays_events() -> None:
    seen: list[Any] = []
    out = procs.run_in_process(_work, 3, on_event=seen.append, warm=WARM)
    assert out["in_child"] and out["pid"] != os.getpid() and out["sum"] == 3
    assert seen == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert not procs.in_child()
    # every call gets a fresh process; the fork server stays
    again = procs.run_in_process(_work, 0, warm=WARM)
    assert again["pid"] != out["pid"] and procs.prewarm(WARM).alive()
    assert not psutil.pid_exists(out["pid"])


def _fails() -> None:
    raise KeyError("no such thing")


def test_exception_reaches_the_caller() -> None:
    with pytest.raises(KeyError, match="no such thing"):
        procs.run_in_process(_fails, warm=WARM)


class Counter:
    """Stays in the calling process; the child reaches it through a relay proxy."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def add(self, x: int) -> int:
        self.calls.append(x)
        return sum(self.calls)

    def boom(self) -> None:
        raise ValueError("relayed error")


def _use_relay(counter: Any) -> list[int]:
    out = [counter.add(1).result(), counter.add(2).result()]
    with pytest.raises(ValueError, match="relayed error"):
        counter.boom().result()
    return out


def test_relayed_object_stays_in_the_parent() -> None:
    counter = Counter()
    assert procs.run_in_process(_use_relay, counter, relay=[counter], warm=WARM) == [1, 3]
    assert counter.calls == [1, 2]


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_killed_child_is_an_error_naming_the_pid() -> None:
    with pytest.raises(procs.RankProcessError, match=r"pid \d+\) ended before returning"):
        procs.run_in_process(_die, warm=WARM)


def _gone(p: psutil.Process) -> bool:
    try:
        return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_child_dies_with_its_parent(tmp_path: Any) -> None:
    """A SIGKILLed parent (a lost worker) takes its running child and fork server along."""
    script, pid_file = tmp_path / "parent.py", tmp_path / "child.pid"
    script.write_text(
        textwrap.dedent(f"""
        import os, time
        from lepton_nb.train import _procs as procs
        def hang():
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            time.sleep(600)
        procs.run_in_process(hang, warm=("json",))
    """)
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen([sys.executable, str(script)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and parent.poll() is None
            time.sleep(0.05)
        child = psutil.Process(int(pid_file.read_text()))
        zygote = child.parent()
        assert zygote is not None and "lepton_nb.train._child" in " ".join(zygote.cmdline())
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (_gone(child) and _gone(zygote)):
            time.sleep(0.05)
        assert _gone(child) and _gone(zygote)
    finally:
        parent.kill()
        parent.wait()
