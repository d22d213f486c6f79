"""jobs.run(profile=...) on a real `dask scheduler` + `dask worker`: a worker that dies under a
job fails it with reason `worker lost` (the job is not left waiting for another worker)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import dask.config
import nbformat
import pytest

from lepton_nb import jobs
from lepton_nb.jobs.models import JobRecord
from lepton_nb.jobs.store import JobStore, _pid_alive

pytestmark = pytest.mark.integration


def test_a_worker_dying_under_a_profile_job_fails_it(tmp_path: Path, dask_processes: Any) -> None:
    with dask_processes(nanny=False) as (address, procs):
        pid_file = tmp_path / "kernel.pid"
        nb = nbformat.v4.new_notebook(
            cells=[
                nbformat.v4.new_code_cell(
                    f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                    "time.sleep(300)"
                )
            ]
        )
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "P", "language": "python"}
        nbformat.write(nb, tmp_path / "long.ipynb")
        store = JobStore(tmp_path / "jobs.sqlite")
        done: list[JobRecord] = []
        with dask.config.set(
            {"lepton.profiles.one": {"kind": "remote", "address": address, "timeout": 60}}
        ):
            job = threading.Thread(
                target=lambda: done.append(
                    jobs.run(
                        tmp_path / "long.ipynb",
                        profile="one",
                        store=store,
                        output=tmp_path / "out.ipynb",
                    )
                )
            )
            job.start()
            deadline = time.monotonic() + 120
            while not (pid_file.is_file() and pid_file.read_text()):
                assert time.monotonic() < deadline and job.is_alive(), done
                time.sleep(0.2)
            procs[1].kill()  # the worker running the kernel
            procs[1].wait()
            job.join(120)
        assert not job.is_alive(), "jobs.run still waits for a worker that is gone"
        (rec,) = done
        assert rec.status == "failed" and rec.error is not None, rec
        assert rec.error.reason == "worker lost" and f"pid {procs[1].pid}" in rec.error.describe()
        assert store.get(rec.id).status == "failed"
        kernel, deadline = int(pid_file.read_text()), time.monotonic() + 30
        while _pid_alive(kernel) and time.monotonic() < deadline:
            time.sleep(0.2)  # ipykernel notices its parent is gone and exits
        assert not _pid_alive(kernel), "the kernel outlived its worker"
