"""Issue 11 over HTTP against a real ``jupyter server``: overwriting outputs (2), late job
failures and the killed server (3), the damaged store (4), and 500-causing bodies (6)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = pytest.mark.integration


def _notebook(path: Path, *cells: str, params: str = "n = 2\ntext = 'a'") -> None:
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, *(nbformat.v4.new_code_cell(c) for c in cells)]
    spec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["kernelspec"] = spec
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def _processes_of_job(job_id: str) -> list[int]:
    """Pids whose environment says they work for ``job_id`` (its kernel)."""
    found = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if f"LEPTON_JOB_ID={job_id}".encode() in env.read_bytes().split(b"\0"):
                found.append(int(env.parent.name))
    return found


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture(scope="module")
def server(live_server: Any) -> Any:
    _notebook(live_server.root / "work" / "sq.ipynb", "print(n * n)")
    (live_server.root / "work" / "precious.ipynb").write_text("precious notebook")
    (live_server.root / "work" / "taken.html").write_text("precious html")
    (live_server.root / "work" / "folder.ipynb").mkdir()
    return live_server


def _post(server: Any, body: Any, path: str = "jobs") -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    r = server.request("POST", path, data=data)
    assert "Traceback" not in r.text, r.text
    return r.status_code, r.json()


def test_an_existing_output_is_refused_with_409_unless_overwrite(server: Any) -> None:
    work = server.root / "work"
    for output in ("work/precious.ipynb", "work/sq.ipynb", "work/taken.ipynb"):
        code, reply = _post(server, {"notebook": "work/sq.ipynb", "output": output})
        assert code in (400, 409), reply
    code, reply = _post(server, {"notebook": "work/sq.ipynb", "output": "work/precious.ipynb"})
    assert code == 409 and "overwrite" in reply["message"], reply
    code, reply = _post(server, {"notebook": "work/sq.ipynb", "output": "work/taken.ipynb"})
    assert code == 409 and "taken.html" in reply["message"], reply  # the HTML neighbour
    code, reply = _post(server, {"notebook": "work/sq.ipynb", "output": "work/out.html"})
    assert code == 400 and ".ipynb" in reply["message"], reply
    assert (work / "precious.ipynb").read_text() == "precious notebook"
    assert (work / "taken.html").read_text() == "precious html"

    body = {"notebook": "work/sq.ipynb", "output": "work/precious.ipynb", "overwrite": True}
    code, job = _post(server, {**body, "parameters": {"n": 3}})
    assert code == 202, job
    done = server.wait_job(job["id"])
    assert done["status"] == "succeeded", done
    assert "9" in (work / "precious.ipynb").read_text()  # replaced, because it was asked


def test_late_failures_are_4xx_at_submit(server: Any) -> None:
    cases = [
        ({"notebook": "work/sq.ipynb", "output": "work/folder.ipynb"}, 400, "is a folder"),
        ({"notebook": "work/sq.ipynb", "output": "work/sq.ipynb"}, 400, "notebook itself"),
        ({"notebook": "work/sq.ipynb", "output": "work/sq.ipynb/x.ipynb"}, 400, "is a file"),
    ]
    for body, status, words in cases:
        code, reply = _post(server, body)
        assert code == status and words in reply["message"], (body, reply)
    assert not list(server.root.glob(".*partial*")) and not list(server.root.glob("*/.*partial*"))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"notebook": "n" * 4096}, "255 bytes"),
        ({"notebook": "work/sq.ipynb", "output": "o/" * 2040 + ".ipynb"}, "longer than 4096"),
        ({"notebook": "work/" + "n" * 300 + ".ipynb"}, "255 bytes"),
        ('{"notebook": "work/sq.ipynb", "parameters": {"n": ' + "9" * 5000 + "}}", "not valid"),
        ({"notebook": "work/sq.ipynb", "parameters": {"n": 10**4000}}, "3600 digits"),
        ("[" * 100_000 + "]" * 100_000, "deeper"),
        ({"notebook": "work/sq.ipynb", "parameters": {"n": _nested(25)}}, "deeper"),
        ({"notebook": "work/sq.ipynb", "parameters": {"text": "\ud800"}}, "surrogate"),
        ({"notebook": "work/sq.ipynb", "overwrite": "yes"}, "overwrite"),
        ({"notebook": 7}, "notebook"),
    ],
    ids=[
        "long-name", "long-output", "long-component", "5000-digits", "huge-int", "deep-json",
        "deep-parameter", "surrogate", "strict-bool", "strict-str",
    ],
)
def test_bodies_that_answered_500_answer_400(server: Any, body: Any, words: str) -> None:
    code, reply = _post(server, body)
    assert code == 400 and words in reply["message"], reply


def test_strict_models_and_filters(server: Any) -> None:
    code, reply = _post(server, {"n_workers": "2"}, "clusters")
    assert code == 400 and "n_workers" in reply["message"], reply  # no coercion: nothing launched
    assert server.request("GET", "clusters").json() == []
    r = server.request("PATCH", "clusters/nope", data=json.dumps({"n_workers": 2.0}))
    assert r.status_code == 400, r.text
    r = server.request("GET", "jobs", params={"status": "bogus"})
    assert r.status_code == 400 and "status" in r.json()["message"], r.text
    r = server.request("GET", "jobs", params={"status": "lost", "limit": "3"})
    assert r.status_code == 200, r.text


def test_a_damaged_store_answers_503_and_is_left_alone(server: Any) -> None:
    store = server.home / "jobs.sqlite"
    saved = store.read_bytes()
    try:
        store.write_bytes(b"")
        r = server.request("GET", "jobs")
        assert r.status_code == 503 and "jobs check" in r.json()["message"], r.text
        assert "Traceback" not in r.text and store.stat().st_size == 0
    finally:
        store.write_bytes(saved)
    assert server.request("GET", "jobs").status_code == 200


def test_a_job_whose_server_was_killed_is_lost_with_when_why_and_what_it_left(
    new_live_server: Callable[[], Any],
) -> None:
    from lepton_nb import jobs
    from lepton_nb.jobs.store import JobStore

    srv = new_live_server()
    _notebook(srv.root / "slow.ipynb", "import time\nprint('started', flush=True)\ntime.sleep(600)")
    code, job = _post(srv, {"notebook": "slow.ipynb"})
    assert code == 202, job
    store = JobStore(srv.home / "jobs.sqlite")
    deadline = time.monotonic() + 120
    rec = store.get(job["id"])
    while time.monotonic() < deadline:  # running, its partial notebook on disk
        rec = store.get(job["id"])
        if rec.status == "running" and rec.partial and Path(rec.partial).exists():
            break
        time.sleep(0.3)
    assert rec.status == "running" and rec.pid, rec
    runner = srv.runner_pid()
    kernels = _processes_of_job(job["id"])
    for pid in (srv.proc.pid, runner, rec.pid, *kernels):  # all of it, gone at once
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    srv.proc.wait()
    time.sleep(0.3)
    lost = jobs.get(job["id"], store=store)
    assert lost.status == "lost" and lost.ended is not None, lost
    assert lost.started is not None and lost.ended >= lost.started
    assert lost.error is not None and lost.error.reason == "lost"
    assert "ended without recording" in (lost.error.evalue or "")
    # what it left: the partial notebook, which exists, named in the error too
    assert lost.output and Path(lost.output).exists() and lost.output in (lost.error.evalue or "")
