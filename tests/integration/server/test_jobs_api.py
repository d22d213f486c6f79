"""The jobs routes against a real Jupyter server running real papermill jobs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def jp_server_config(tmp_home: Path) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"lepton_nb": True}}}


@pytest.fixture
def notebook(jp_root_dir: Path, make_nb: Any) -> str:
    make_nb(
        "square.ipynb",
        "import lepton_nb as ln\nif fail:\n    raise RuntimeError('asked to fail')\n"
        "ln.record('square', n * n)\nprint('square', n * n)",
        params="n = 2\nfail = False",
        where=jp_root_dir / "work",
    )
    return "work/square.ipynb"


async def _wait_done(api: Any, job_id: str, timeout: float = 180) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        code, job = await api("jobs", job_id)
        assert code == 200, job
        if job["status"] not in ("queued", "running"):
            return dict(job)
        await asyncio.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


async def test_submit_get_list_rerun(api: Any, notebook: str, jp_root_dir: Path) -> None:
    body = json.dumps({"notebook": notebook, "parameters": {"n": 5}})
    code, job = await api("jobs", method="POST", body=body)
    assert code == 202 and job["status"] in ("queued", "running")  # returned before it ran
    done = await _wait_done(api, job["id"])
    assert done["id"] == job["id"] and done["status"] == "succeeded", done
    assert done["parameters"] == {"n": 5} and done["records"] == {"square": 25}
    assert done["notebook"] == notebook
    out = jp_root_dir / done["output_path"]
    assert out.is_file() and "square 25" in out.read_text()

    code, listed = await api("jobs")
    assert code == 200 and [j["id"] for j in listed] == [job["id"]]
    # JupyterLab's ServerConnection appends a cache-busting timestamp to GETs
    code, listed = await api("jobs", params={"1795930558951": ""})
    assert code == 200 and len(listed) == 1
    code, listed = await api("jobs", params={"status": "failed"})
    assert (code, listed) == (200, [])
    code, listed = await api("jobs", params={"notebook": "square", "limit": "1"})
    assert code == 200 and len(listed) == 1

    code, again = await api("jobs", job["id"], "rerun", method="POST", body="{}")
    assert code == 202 and again["id"] != job["id"] and again["parameters"] == {"n": 5}
    assert again["rerun_of"] == job["id"]
    redone = await _wait_done(api, again["id"])
    assert redone["status"] == "succeeded" and redone["records"] == {"square": 25}
    assert redone["output_path"] != done["output_path"]
    assert redone["seed"] == done["seed"] and redone["cwd"] == done["cwd"]

    code, err = await api("jobs", job["id"], method="DELETE")
    assert code == 409 and err["error"] == "JobError" and "already finished" in err["message"]


async def test_failed_job_reports_where(api: Any, notebook: str) -> None:
    body = json.dumps({"notebook": notebook, "parameters": {"fail": True}})
    code, job = await api("jobs", method="POST", body=body)
    assert code == 202
    done = await _wait_done(api, job["id"])
    assert done["status"] == "failed"
    assert "RuntimeError" in done["error"] and "asked to fail" in done["error"]
    assert done["output_path"]  # the partial output is still there to open


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"notebook": "work/missing.ipynb"}, 400, "does not exist"),
        ({"notebook": "work/square.ipynb", "parameters": {"nope": 1}}, 400, "nope"),
        ({"notebook": "work/square.ipynb", "params": {}}, 400, "params"),
        ({"notebook": "../escape.ipynb"}, 403, "outside"),
        ({"notebook": "work/../../escape.ipynb"}, 403, "outside"),
        ({"notebook": "work/square.ipynb", "output": "../out.ipynb"}, 403, "outside"),
    ],
)
async def test_submit_rejects(
    api: Any, notebook: str, body: dict[str, Any], status: int, needle: str
) -> None:
    code, err = await api("jobs", method="POST", body=json.dumps(body))
    assert code == status, err
    assert needle in err["message"] and set(err) == {"error", "message"}


async def test_sibling_prefix_path_is_refused(api: Any, jp_root_dir: Path) -> None:
    sibling = jp_root_dir.parent / (jp_root_dir.name + "-other")
    sibling.mkdir()
    target = sibling / "x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), target)
    assert str(target).startswith(str(jp_root_dir))
    code, err = await api("jobs", method="POST", body=json.dumps({"notebook": str(target)}))
    assert code == 403 and "outside" in err["message"]
    code, err = await api(
        "jobs",
        method="POST",
        body=json.dumps({"notebook": f"../{sibling.name}/x.ipynb"}),
    )
    assert code == 403


async def test_unknown_ids_and_malformed_bodies(api: Any) -> None:
    for method, parts in (
        ("GET", ("jobs", "nope")),
        ("DELETE", ("jobs", "nope")),
        ("POST", ("jobs", "nope", "rerun")),
    ):
        body = "{}" if method == "POST" else None
        code, err = await api(*parts, method=method, body=body)
        assert code == 404 and "nope" in err["message"], (method, err)
    code, err = await api("jobs", method="POST", body="{broken")
    assert code == 400 and "not valid JSON" in err["message"] and "Traceback" not in err["message"]
    code, err = await api("jobs", params={"limit": "zero"})
    assert code == 400 and "limit" in err["message"]
