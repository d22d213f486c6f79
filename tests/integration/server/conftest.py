"""pytest-jupyter's fixtures and hooks for this directory only.

Registering it with ``pytest_plugins`` would make its autouse fixtures (a fresh event loop and a
ServerApp cleanup) run around every test of the suite; a directory conftest keeps them here.
"""

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from jupyter_core import utils as _jc_utils
from pytest_jupyter.jupyter_core import *  # noqa: F403
from pytest_jupyter.jupyter_server import *  # noqa: F403
from tornado.httpclient import HTTPClientError


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """pytest-jupyter's loop fixture, minus a stale loop left by earlier tests.

    ``ensure_event_loop`` reuses the loop remembered in jupyter_core's context variable; in the
    full suite an earlier test (an in-process papermill run, a Dask client) can leave one there
    that is marked as running, which this server can neither use nor close.
    """
    if asyncio._get_running_loop() is not None:
        # A sync fixture runs outside any loop: a "running" loop here was left marked by an
        # earlier in-process notebook run (nest-asyncio style re-entrance), not really running.
        asyncio.events._set_running_loop(None)
    stale = _jc_utils._loop.get()
    if stale is not None and (stale.is_running() or stale.is_closed()):
        _jc_utils._loop.set(None)
        asyncio.set_event_loop(None)
    loop = _jc_utils.ensure_event_loop(prefer_selector_loop=True)
    yield loop
    loop.close()


# -- a real `jupyter server` process ----------------------------------------------------------
# pytest-jupyter's in-process server is per test; hypothesis examples and tests that kill the
# server need one process that outlives a test, reached over HTTP as a browser would.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    proc: subprocess.Popen[bytes]
    url: str
    token: str
    root: Path
    home: Path  # LEPTON_HOME: the server's job store lives here
    runtime: Path  # JUPYTER_RUNTIME_DIR
    log: Path

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.token}", **kw.pop("headers", {})}
        return requests.request(
            method, f"{self.url}lepton/api/{path}", headers=headers, timeout=120, **kw
        )

    def wait_job(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        return _wait_job(self, job_id, timeout)

    def runner_pid(self) -> int | None:
        """The detached job runner serving this server's store, if one is up."""
        from lepton_nb.jobs._dispatcher import runner_pid
        from lepton_nb.jobs.store import JobStore

        return runner_pid(JobStore(self.home / "jobs.sqlite"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # lets the extension close its clusters
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        runner = self.runner_pid()  # it outlives the server by design; not the test
        if runner is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(runner, signal.SIGKILL)


def start_server(base: Path) -> LiveServer:
    root, home, runtime = base / "root", base / "home", base / "runtime"
    for d in (root, home, runtime):
        d.mkdir(parents=True, exist_ok=True)
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "LEPTON_HOME": str(home),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[3]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    log, config = base / "server.log", base / "jupyter_server_config.json"
    # only the extension under test: a faster start, and nothing else answering
    off = ("jupyterlab", "jupyter_lsp", "notebook_shim", "jupyter_server_terminals")
    extensions = {"lepton_nb": True, **dict.fromkeys(off, False)}
    config.write_text(json.dumps({"ServerApp": {"jpserver_extensions": extensions}}))
    cmd = [
        sys.executable, "-m", "jupyter_server",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
        f"--IdentityProvider.token={token}",
        "--allow-root",  # CI containers run as root
        f"--config={config}", "--LeptonSettings.runner_idle_exit=5",
        "--LeptonSettings.stop_clusters_on_exit=True",  # a clean stop leaves no cluster behind
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = LiveServer(proc, f"http://127.0.0.1:{port}/", token, root, home, runtime, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter server exited: {log.read_text()[-3000:]}")
        try:
            if server.request("GET", "jobs").status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"jupyter server did not answer in 90 s: {log.read_text()[-3000:]}")


def _wait_job(server: LiveServer, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = server.request("GET", f"jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return dict(job)
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server process for a test module (its own root, LEPTON_HOME, runtime dir)."""
    server = start_server(tmp_path_factory.mktemp("live"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server_starter() -> Any:
    """``start_server`` itself, for tests that start (and kill) several servers on one base."""
    return start_server


Api = Callable[..., Awaitable[tuple[int, Any]]]


@pytest.fixture
def api(jp_fetch: Any) -> Api:
    """``code, body = await api("jobs", job_id, method="POST", body=...)``: a ``lepton/api``
    request to the test's server and its JSON answer; an error status is returned with its
    JSON body rather than raised, so a test asserts on both."""

    async def call(*parts: str, request_timeout: float = 180, **kw: Any) -> tuple[int, Any]:
        try:
            r = await jp_fetch("lepton", "api", *parts, request_timeout=request_timeout, **kw)
        except HTTPClientError as e:
            assert e.response is not None, f"no response from lepton/api/{'/'.join(parts)}: {e}"
            return e.code, json.loads(e.response.body)
        return r.code, json.loads(r.body)

    return call
