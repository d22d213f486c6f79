"""Jobs with a cluster profile run ON that profile's cluster: a real `dask scheduler` and
`dask worker` (separate processes), a `remote` profile pointing at them, a real Jupyter server
and its detached job runner. The executed notebook records where its kernel ran."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.config
import nbformat
import pytest

from lepton_nb.jobs.store import _pid_alive

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


@dataclass
class Farm:
    address: str
    worker_pid: int
    mark: str  # an environment variable only the worker (and so its kernels) has


@pytest.fixture(scope="module")
def farm(free_port: Any, dask_processes: Any) -> Iterator[Farm]:
    """`dask scheduler` + one `dask worker` (no nanny: its pid is the kernels' parent), and the
    profiles `farm` (remote, at that scheduler) and `gone` (remote, nothing listening)."""
    mark = secrets.token_hex(4)
    env = {
        **os.environ,
        "LEPTON_TEST_WORKER": mark,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    with dask_processes(nthreads=2, nanny=False, env=env) as (address, procs):
        profiles = {
            "farm": {"kind": "remote", "address": address, "timeout": 20},
            "gone": {"kind": "remote", "address": f"tcp://127.0.0.1:{free_port()}", "timeout": 2},
        }
        # the detached runner reads them from its environment (inherited from this server)
        names = {
            f"DASK_LEPTON__PROFILES__{p.upper()}__{k.upper()}": str(v)
            for p, keys in profiles.items()
            for k, v in keys.items()
        }
        from distributed import Client

        with Client(address, timeout=60) as c:
            c.wait_for_workers(1, timeout=60)
        with pytest.MonkeyPatch.context() as mp, dask.config.set({"lepton.profiles": profiles}):
            for k, v in names.items():
                mp.setenv(k, v)
            yield Farm(address, procs[1].pid, mark)


@pytest.fixture
def jp_server_config(tmp_home: Path) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"lepton_nb": True}},
        "LeptonSettings": {"max_parallel_jobs": 2, "runner_idle_exit": 3.0},
    }


@pytest.fixture
def notebook(jp_root_dir: Path, make_nb: Any) -> str:
    make_nb(
        "where.ipynb",
        (
            "import os, socket, time\nimport lepton_nb as ln\n"
            "open(f'kernel-{tag}.pid', 'w').write(str(os.getpid()))\n"
            "ln.record('where', {'ppid': os.getppid(), 'host': socket.gethostname(),\n"
            "    'mark': os.environ.get('LEPTON_TEST_WORKER'),\n"
            "    'profile': os.environ.get('LEPTON_PROFILE')})\n"
            "if attach:  # the notebook's own launch_cluster() finds the job's cluster\n"
            "    c = ln.launch_cluster()\n"
            "    ln.record('cluster', c.scheduler_address)\n"
            "    c.close()\n"
            "time.sleep(sleep)"
        ),
        params="sleep = 0.0\ntag = 'a'\nattach = False",
        where=jp_root_dir,
    )
    return "where.ipynb"


async def _wait(
    api: Any, job_id: str, until: tuple[str, ...] = ("queued", "running"), timeout: float = 120
) -> dict[str, Any]:
    """The job once its status is no longer one of ``until``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, job = await api("jobs", job_id)
        assert code == 200, job
        if job["status"] not in until:
            return dict(job)
        await asyncio.sleep(0.3)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s: {job}")


async def test_profile_jobs_run_on_a_worker_of_the_profile_cluster(
    api: Any, jp_root_dir: Path, notebook: str, farm: Farm
) -> None:
    body = {"notebook": notebook, "parameters": {"tag": "rest", "attach": True}, "profile": "farm"}
    code, job = await api("jobs", method="POST", body=json.dumps(body))
    assert code == 202 and job["status"] == "queued" and job["profile"] == "farm", job
    sched = {
        "notebook": notebook,
        "parameters": {"tag": "cron"},
        "cron": "@daily",
        "profile": "farm",
    }
    code, s = await api("schedules", method="POST", body=json.dumps(sched))
    assert code == 201, s
    code, fired = await api("schedules", s["id"], "run", method="POST", body="{}")
    assert code == 202, fired

    for done in (await _wait(api, job["id"]), await _wait(api, fired["id"])):
        assert done["status"] == "succeeded", done
        where = done["records"]["where"]
        # the kernel is a child of the dask worker process, with the worker's environment
        assert where["ppid"] == farm.worker_pid and where["mark"] == farm.mark, where
        assert where["profile"] == "farm" and done["cluster"] == farm.address
        out = jp_root_dir / done["output_path"]  # brought back and written by the runner
        assert out.is_file() and (jp_root_dir / done["html_path"]).is_file()
        assert nbformat.read(out, as_version=4).cells[-1].outputs is not None
    rest = await _wait(api, job["id"])
    assert rest["records"]["cluster"] == farm.address  # launch_cluster() in the notebook


async def test_cancel_kills_the_kernel_on_the_worker_and_drops_the_task(
    api: Any, jp_root_dir: Path, notebook: str, farm: Farm
) -> None:
    body = {"notebook": notebook, "parameters": {"tag": "cancel", "sleep": 120}, "profile": "farm"}
    _, job = await api("jobs", method="POST", body=json.dumps(body))
    pid_file = jp_root_dir / "kernel-cancel.pid"
    deadline = time.monotonic() + 120
    while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
    kernel = int(pid_file.read_text())
    assert _pid_alive(kernel)
    code, cancelled = await api("jobs", job["id"], method="DELETE")
    assert code == 200 and cancelled["status"] == "cancelled", cancelled
    assert cancelled["error_info"]["reason"] == "cancelled"
    from distributed import Client

    key = f"lepton-job-{job['id']}"
    with Client(farm.address, timeout=30) as c:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            tasks = c.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.tasks))
            if key not in tasks and not _pid_alive(kernel):
                break
            await asyncio.sleep(0.3)
    assert not _pid_alive(kernel), "the kernel on the worker is still running"
    assert key not in tasks, tasks


async def test_unreachable_profile_fails_the_job_with_the_reason(
    api: Any, notebook: str, farm: Farm
) -> None:
    body = {"notebook": notebook, "profile": "gone"}
    _, job = await api("jobs", method="POST", body=json.dumps(body))
    done = await _wait(api, job["id"], timeout=60)
    assert done["status"] == "failed" and done["error_info"]["reason"] == "cluster unavailable"
    assert "'gone'" in done["error"] and "could not reach a Dask scheduler" in done["error"]
