"""SIGKILL the Jupyter server (and the job runner, and one job) mid-run: nothing is lost."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lepton_nb.jobs._dispatcher import lock_path
from lepton_nb.jobs.store import JobStore

pytestmark = pytest.mark.integration


class Server:
    def __init__(self, root: Path, home: Path) -> None:
        self.root, self.home, self.token = root, home, secrets.token_hex(8)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/"
        env = {**os.environ, "LEPTON_HOME": str(self.home), "JUPYTER_RUNTIME_DIR": str(self.home)}
        log = (self.home / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                "--no-browser",
                f"--port={port}",
                "--ServerApp.port_retries=0",
                "--ServerApp.ip=127.0.0.1",
                "--allow-root",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root}",
                "--ServerApp.jpserver_extensions={'lepton_nb': True}",
                "--LeptonSettings.max_parallel_jobs=2",
                "--LeptonSettings.runner_idle_exit=2",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                self.api("jobs")
                return
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline, (
                    self.home / "server.log"
                ).read_text()[-3000:]
                time.sleep(0.3)

    def api(self, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(
            f"{self.url}lepton/api/{path}",
            method="GET" if body is None else "POST",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def server(tmp_path: Path, make_nb: Any) -> Iterator[Server]:
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    # Each job runs until the test opens the gate (a file): alive exactly as long as needed,
    # whatever the machine's load, instead of sleeping a guessed number of seconds.
    wait = (
        "import os, time\nt0 = time.monotonic()\n"
        "while gate and not os.path.exists(gate) and time.monotonic() - t0 < 300:\n"
        "    time.sleep(0.1)\nprint(n)"
    )
    make_nb("slow.ipynb", wait, params="n = 0\ngate = ''", where=root)
    srv = Server(root, home)
    try:
        yield srv
    finally:
        srv.kill()
        runner = lock_path(JobStore(home / "jobs.sqlite"), "runner")
        if runner.exists() and runner.read_text().strip():
            with_pid = int(runner.read_text().split()[0])
            try:
                os.kill(with_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_sigkill_server_runner_and_a_job_loses_nothing(server: Server) -> None:
    server.start()
    gate = server.root / "gate"
    ids = [
        server.api("jobs", {"notebook": "slow.ipynb", "parameters": {"n": i, "gate": str(gate)}})[
            "id"
        ]
        for i in range(4)
    ]
    store = JobStore(server.home / "jobs.sqlite")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # both slots busy, two queued
        running = [r for r in store.list() if r.status == "running" and r.pid != _runner(store)]
        if len(running) == 2:
            break
        time.sleep(0.2)
    assert len(running) == 2, [r.status for r in store.list()]
    runner = _runner(store)
    assert runner is not None
    server.kill()  # SIGKILL the whole server process group
    _kill(runner)  # and the detached runner
    doomed, survivor = running
    _kill(doomed.pid or 0)  # and one running job: it must come back as lost, with why
    time.sleep(0.5)

    server.start()
    deadline = time.monotonic() + 60  # the new server marks the dead one lost at start-up
    while server.api(f"jobs/{doomed.id}")["status"] != "lost":
        assert time.monotonic() < deadline, server.api(f"jobs/{doomed.id}")
        time.sleep(0.3)
    # re-attached: still running under the new server, counted by its runner
    assert server.api(f"jobs/{survivor.id}")["status"] == "running"
    gate.touch()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        jobs = {j["id"]: j for j in server.api("jobs")}
        if all(j["status"] not in ("queued", "running") for j in jobs.values()):
            break
        time.sleep(0.5)
    status = {i: jobs[i]["status"] for i in ids}
    assert status[doomed.id] == "lost" and "ended without recording" in jobs[doomed.id]["error"]
    assert status[survivor.id] == "succeeded"  # re-attached: it kept running and finished
    queued = [i for i in ids if i not in (doomed.id, survivor.id)]
    assert [status[i] for i in queued] == ["succeeded", "succeeded"], status
    assert all(r.status != "running" for r in store.list())


def _runner(store: JobStore) -> int | None:
    from lepton_nb.jobs._dispatcher import runner_pid

    return runner_pid(store)
