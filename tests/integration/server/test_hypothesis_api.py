"""Issue 11: random JSON bodies and random parameter values against the REST API and the
parameter injector. Properties: never a 5xx, never a traceback in a body, never a file written
outside ``lepton-outputs/`` or overwritten (unless the body named it and said overwrite)."""

from __future__ import annotations

import ast
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lepton_nb.errors import ConfigError
from lepton_nb.jobs.params import check_parameters
from lepton_nb.server.models import LaunchRequest

pytestmark = pytest.mark.integration

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
        "work/sq.ipynb/x.ipynb", "work/out.ipynb", "",
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


@pytest.fixture(scope="module")
def server(live_server: Any) -> Any:
    root = live_server.root
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("n = 2\ntext = 'a'")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("print(n, text)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "P", "language": "python"}
    (root / "work").mkdir()
    nbformat.write(nb, root / "work" / "sq.ipynb")
    (root / "work" / "precious.ipynb").write_text("precious")
    (root / "work" / "taken.html").write_text("precious html")
    (root / "work" / "note.txt").write_text("notes")
    live_server.before = _digest(root)
    live_server.accepted = []  # (job id, output, html, overwrite)
    return live_server


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
def test_random_bodies_get_4xx_json_never_5xx(
    server: Any, route: tuple[str, str], body: Any
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
        job = (reply["id"], out, reply.get("html_path"), body.get("overwrite") is True)
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


def test_files_are_written_only_where_bodies_said(server: Any) -> None:
    """Runs after the random bodies: wait for their jobs, then compare the root's files."""
    for job_id, *_ in server.accepted:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = server.request("GET", f"jobs/{job_id}").json()["status"]
            if status not in ("queued", "running"):
                break
            time.sleep(0.3)
    asked = {o for _, out, html, _ in server.accepted for o in (out, html) if o}
    replaced = {o for _, out, html, ow in server.accepted if ow for o in (out, html) if o}
    after = _digest(server.root)
    for name, digest in server.before.items():
        assert name in after, f"{name} was deleted"
        assert after[name] == digest or name in replaced, f"{name} was overwritten"
    for name in set(after) - set(server.before):
        assert name.startswith("lepton-outputs/") or name in asked, f"{name} was written"
        assert ".partial" not in name, f"{name} was left behind"


@settings(max_examples=300, deadline=None, database=None)
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
