"""The schedules routes and the job runner behind a real Jupyter server (real papermill jobs)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lepton_nb.jobs._dispatcher import runner_pid
from lepton_nb.jobs.store import JobStore

pytestmark = pytest.mark.integration


@pytest.fixture
def jp_server_config(tmp_home: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    limit = getattr(request, "param", 2)  # max_parallel_jobs, parametrized indirectly
    return {
        "ServerApp": {"jpserver_extensions": {"lepton_nb": True}},
        "LeptonSettings": {"max_parallel_jobs": limit, "runner_idle_exit": 3.0},
    }


@pytest.fixture
def notebook(jp_root_dir: Path, make_nb: Any) -> str:
    make_nb(
        "sq.ipynb",
        "import time\nimport lepton_nb as ln\ntime.sleep(sleep)\nln.record('square', n * n)",
        params="n = 2\nsleep = 0.0",
        where=jp_root_dir / "work",
    )
    return "work/sq.ipynb"


async def _wait_all(api: Any, n: int, timeout: float = 240) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        code, jobs = await api("jobs")
        assert code == 200
        if len(jobs) == n and all(j["status"] not in ("queued", "running") for j in jobs):
            return list(jobs)
        await asyncio.sleep(0.5)
    raise AssertionError(f"{n} jobs did not finish in {timeout} s: {jobs}")


async def test_schedule_crud_and_run_now(api: Any, notebook: str) -> None:
    body = {
        "notebook": notebook,
        "parameters": {"n": 3},
        "cron": "0 3 * * *",
        "timezone": "Europe/Paris",
    }
    code, s = await api("schedules", method="POST", body=json.dumps(body))
    assert code == 201 and s["notebook"] == notebook and s["next_fire"] > 0, s
    assert s["last_job"] is None and s["name"] == "sq"
    code, listed = await api("schedules")
    assert code == 200 and [x["id"] for x in listed] == [s["id"]]

    patch = json.dumps({"parameters": {"n": 4}, "paused": True})
    code, p = await api("schedules", s["id"], method="PATCH", body=patch)
    assert code == 200 and p["paused"] and p["parameters"] == {"n": 4}

    code, job = await api("schedules", s["id"], "run", method="POST", body="{}")
    assert code == 202 and job["schedule_id"] == s["id"] and job["status"] == "queued"
    (done,) = await _wait_all(api, 1)
    assert done["status"] == "succeeded" and done["records"] == {"square": 16}, done
    assert done["output_path"].startswith("lepton-outputs/") and done["html_path"]
    code, again = await api("schedules", s["id"])
    assert again["last_job"] == job["id"] and again["last_status"] == "succeeded"

    code, gone = await api("schedules", s["id"], method="DELETE")
    assert code == 200 and gone["id"] == s["id"]
    code, err = await api("schedules", s["id"])
    assert code == 404 and "does not exist" in err["message"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"cron": "61 * * * *"}, 400, "invalid cron"),
        ({"cron": "every day"}, 400, "5 fields"),
        ({"timezone": "Moon/Base"}, 400, "unknown time zone"),
        ({"notebook": "../x.ipynb"}, 403, "outside"),
        ({"notebook": "work/missing.ipynb"}, 400, "does not exist"),
        ({"profile": "no-such-profile"}, 400, "unknown cluster profile"),
        ({"parameters": {"nope": 1}}, 400, "nope"),
        ({"when": "daily"}, 400, "when"),
    ],
)
async def test_create_rejects(
    api: Any, notebook: str, body: dict[str, Any], status: int, needle: str
) -> None:
    full = {"notebook": notebook, "cron": "* * * * *", **body}
    code, err = await api("schedules", method="POST", body=json.dumps(full))
    assert code == status and needle in err["message"], err
    assert set(err) == {"error", "message"}
    code, listed = await api("schedules")
    assert listed == []


async def test_patch_rejects_unknown_fields_and_ids(api: Any, notebook: str) -> None:
    body = json.dumps({"notebook": notebook, "cron": "@daily"})
    _, s = await api("schedules", method="POST", body=body)
    for patch, needle in (({"notebook": "other.ipynb"}, "notebook"), ({"cron": "x"}, "5 fields")):
        code, err = await api("schedules", s["id"], method="PATCH", body=json.dumps(patch))
        assert code == 400 and needle in err["message"], err
    for method, parts in (("GET", ()), ("DELETE", ()), ("POST", ("run",))):
        body = "{}" if method == "POST" else None
        code, err = await api("schedules", "nope", *parts, method=method, body=body)
        assert code == 404, err


def _peak(jobs: list[dict[str, Any]]) -> int:
    """The most jobs whose [started, ended] intervals overlap at one moment."""
    events = sorted([(j["started"], 1) for j in jobs] + [(j["ended"], -1) for j in jobs])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.parametrize("jp_server_config", [1], indirect=True)
async def test_twelve_jobs_bounded_by_a_limit_raised_while_they_queue(
    api: Any, notebook: str, tmp_home: Path
) -> None:
    """12 jobs at once under max_parallel_jobs=1; `lepton-nb scheduler --max-parallel 2` while
    the runner lives and jobs queue: the same runner runs two at once from then on."""
    ids = []
    for i in range(12):
        body = json.dumps({"notebook": notebook, "parameters": {"n": i, "sleep": 0.5}})
        code, job = await api("jobs", method="POST", body=body)
        assert code == 202 and job["status"] == "queued"
        ids.append(job["id"])
    store = JobStore(tmp_home / "jobs.sqlite")
    deadline = time.monotonic() + 120
    while sum(store.get(i).status == "succeeded" for i in ids) < 2:
        assert time.monotonic() < deadline, [store.get(i).status for i in ids]
        await asyncio.sleep(0.3)
    runner = runner_pid(store)
    changed = time.time()  # jobs started before this ran under the limit of 1
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lepton_nb.cli",
            "--store",
            str(store.path),
            "scheduler",
            "--max-parallel",
            "2",
            "--tick",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert cli.stdout is not None
        assert "lepton-nb scheduler on" in cli.stdout.readline()  # the limit is stored by now
    finally:
        cli.send_signal(signal.SIGINT)
        cli.communicate(timeout=30)
    jobs = await _wait_all(api, 12)
    assert sorted(j["records"]["square"] for j in jobs) == sorted(i * i for i in range(12))
    assert {j["status"] for j in jobs} == {"succeeded"}
    before = [j for j in jobs if j["started"] < changed]
    assert len(before) >= 2 and _peak(before) == 1  # one at a time under the first limit
    assert _peak(jobs) == 2  # overlap after the change, never more than the limit
    assert runner is not None and runner_pid(store) in (runner, None)  # the same runner
