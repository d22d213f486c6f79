"""Issue 11 over HTTP against a real ``jupyter server``: overwriting outputs (2), late job
failures and the killed server (3), the damaged store (4), 500-causing bodies (6), and the
property-based tests (random bodies, query strings and parameter values)."""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from lepton_nb.errors import ConfigError
from lepton_nb.jobs._params import check_parameters
from lepton_nb.server._models import LaunchRequest

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
    (live_server.root / "work" / "note.txt").write_text("notes")
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
        "long-name",
        "long-output",
        "long-component",
        "5000-digits",
        "huge-int",
        "deep-json",
        "deep-parameter",
        "surrogate",
        "strict-bool",
        "strict-str",
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


# -- property-based: random bodies, query strings and parameter values -------------------------
# Properties: never a 5xx, never a traceback in a body, never a file written outside
# lepton-outputs/ or overwritten (unless the body named it and said overwrite).
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RUN_AT_MOST = 3  # accepted jobs actually run; later ones are cancelled while queued

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
paths = st.sampled_from(
    [
        "work/sq.ipynb", "work/precious.ipynb", "work/taken.ipynb", "work/note.txt", "work",
        "../outside.ipynb", "/etc/passwd", "lepton-outputs/x.ipynb", "work/new.html",
        "work/sq.ipynb/x.ipynb", "work/out.ipynb", "work/folder.ipynb", "",
    ]
) | st.text(max_size=24)  # fmt: skip
job_bodies = st.fixed_dictionaries(
    {},
    optional={
        "notebook": paths | json_values,
        "parameters": st.dictionaries(
            st.sampled_from(["n", "text", "bogus", "1x", "class"]) | st.text(max_size=6),
            json_values,
            max_size=3,
        )
        | json_values,
        "output": paths | json_values,
        "overwrite": st.booleans() | json_values,
        "profile": st.none() | st.text(max_size=8),
        "surprise": json_values,
    },
)
any_body = job_bodies | st.dictionaries(st.text(max_size=10), json_values, max_size=4) | json_values
raw_bytes = st.binary(max_size=40) | st.sampled_from([b"[" * 5000, b'{"a":' * 400, b"\xff\xfe"])
routes = st.sampled_from(
    [
        ("POST", "jobs"), ("POST", "clusters"), ("PATCH", "clusters/abc"),
        ("POST", "jobs/nope/rerun"), ("DELETE", "jobs/zzz"), ("GET", "jobs/zzz"),
        ("POST", "schedules"), ("PATCH", "schedules/abc"),
    ]
)  # fmt: skip


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def snapshot(server: Any) -> dict[str, str]:
    """The root's files before the first random body (earlier tests' jobs have finished)."""
    server.accepted = []  # (job id, output, html, overwrite)
    return _digest(server.root)


def _check_reply(r: Any) -> Any:
    assert r.status_code < 500, (r.status_code, r.text[:500])
    assert "Traceback" not in r.text and 'File "' not in r.text, r.text[:500]
    return r.json() if r.text else None


def _is_launchable(body: Any) -> bool:
    try:
        LaunchRequest.model_validate(body)
    except Exception:  # noqa: BLE001 - anything invalid is what we want to send
        return False
    return True


@SETTINGS
@given(route=routes, body=any_body | raw_bytes)
# accepted bodies, so every run also checks where real jobs write
@example(route=("POST", "jobs"), body={"notebook": "work/sq.ipynb", "parameters": {"n": 3}})
@example(route=("POST", "jobs"), body={"notebook": "work/sq.ipynb", "output": "work/o.ipynb"})
@example(
    route=("POST", "jobs"),
    body={"notebook": "work/sq.ipynb", "output": "work/precious.ipynb", "overwrite": True},
)
def test_random_bodies_get_4xx_json_never_5xx(
    server: Any, snapshot: Any, route: tuple[str, str], body: Any
) -> None:
    method, path = route
    if path == "clusters":
        assume(not _is_launchable(body))  # a valid body would really start a cluster
    if path == "schedules" and isinstance(body, dict):
        from croniter import croniter

        cron = body.get("cron")
        assume(not (isinstance(cron, str) and croniter.is_valid(cron)))
    data = body if isinstance(body, bytes) else json.dumps(body)
    reply = _check_reply(server.request(method, path, data=data))
    if path == "jobs" and method == "POST" and isinstance(reply, dict) and "id" in reply:
        out = reply.get("output_path")
        html = str(Path(out).with_suffix(".html")) if out else None  # written when it ends
        job = (reply["id"], out, html, body.get("overwrite") is True)
        server.accepted.append(job)
        if len(server.accepted) > RUN_AT_MOST:
            _check_reply(server.request("DELETE", f"jobs/{reply['id']}"))


@SETTINGS
@given(
    query=st.dictionaries(
        st.sampled_from(["status", "limit", "notebook", "x"]),
        st.text(max_size=12) | st.sampled_from(["lost", "0", "-1", "99999999999999999999"]),
        max_size=3,
    )
)
def test_random_query_strings_never_5xx(server: Any, query: dict[str, str]) -> None:
    _check_reply(server.request("GET", "jobs", params=query))


def test_files_are_written_only_where_bodies_said(server: Any, snapshot: Any) -> None:
    """Runs after the random bodies: wait for their jobs, then compare the root's files."""
    for job_id, *_ in server.accepted:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = server.request("GET", f"jobs/{job_id}").json()["status"]
            if status not in ("queued", "running"):
                break
            time.sleep(0.3)
    assert len(server.accepted) >= 3  # at least the explicit examples ran as jobs
    asked = {o for _, out, html, _ in server.accepted for o in (out, html) if o}
    replaced = {o for _, out, html, ow in server.accepted if ow for o in (out, html) if o}
    after = _digest(server.root)
    for name, digest in snapshot.items():
        assert name in after, f"{name} was deleted"
        assert after[name] == digest or name in replaced, f"{name} was overwritten"
    for name in set(after) - set(snapshot):
        assert name.startswith("lepton-outputs/") or name in asked, f"{name} was written"
        assert ".partial" not in name, f"{name} was left behind"


@settings(max_examples=120, deadline=None, database=None)
@given(
    params=st.dictionaries(
        st.text(min_size=1, max_size=8) | st.sampled_from(["n", "lr", "x_1", "text"]),
        json_values | st.integers(min_value=-(10**400), max_value=10**400),
        max_size=4,
    )
)
def test_the_parameter_injector_writes_only_assignments_of_equal_values(
    params: dict[str, Any],
) -> None:
    """check_parameters refuses, or papermill's injected cell is exactly ``name = value``."""
    from papermill.translators import translate_parameters

    declared = {name: {"default": "None"} for name in params}
    try:
        check_parameters(params, declared, Path("nb.ipynb"))
    except ConfigError:
        return
    code = translate_parameters("python3", "python", params, "Parameters")
    tree = ast.parse(code)  # never a syntax error, whatever the strings hold
    assigned = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)
        target = node.targets[0]
        assert isinstance(target, ast.Name)
        assigned[target.id] = ast.literal_eval(node.value)  # data only: no calls, no names
    assert assigned == params


def test_zz_a_job_whose_server_was_killed_is_lost_with_when_why_and_what_it_left(
    server: Any,
) -> None:
    """Last in the module: it kills the module's server."""
    from lepton_nb import jobs
    from lepton_nb.jobs.store import JobStore

    srv = server
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
