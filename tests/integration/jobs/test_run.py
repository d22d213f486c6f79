"""jobs.run with real kernels: records, failures, seeds, timeouts, dead kernels, cancel."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from lepton_nb import jobs
from lepton_nb.errors import ConfigError, JobError

pytestmark = pytest.mark.integration
MakeNB = Callable[..., Path]

RECORDING = "import lepton_nb as ln\nln.record('double', x * 2)\nln.record('text', text)"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_run_with_parameters_gives_a_complete_record(
    tmp_home: Path, tmp_path: Path, make_nb: MakeNB
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    nb = make_nb("job.ipynb", RECORDING, params="x = 1\ntext = 'a'", where=repo)
    _git(repo, "add", ".")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "nb")
    weird = "quote \" and ' newline\n ünï ✓ {braces}"
    out = tmp_path / "out" / "executed.ipynb"
    rec = jobs.run(nb, {"x": 21, "text": weird}, output=out)

    assert rec.status == "succeeded" and rec.error is None
    assert rec.records == {"double": 42, "text": weird}
    executed = nbformat.read(out, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "x = 21" in injected[0].source
    assert Path(rec.html or "").read_text().startswith("<!DOCTYPE html>")
    assert rec.output == str(out) and not list(out.parent.glob(".*partial*"))
    assert rec.git is not None and rec.git.commit == _git(repo, "rev-parse", "HEAD")
    assert rec.git.dirty is False
    assert rec.parameters == {"x": 21, "text": weird} and rec.notebook == str(nb)
    assert len(rec.notebook_sha256) == 64 and rec.has_parameters_cell
    for pkg in ("torch", "dask", "distributed", "papermill", "lepton-nb"):
        assert rec.packages[pkg]
    assert rec.python.startswith("CPython") and rec.host and rec.cpu and isinstance(rec.gpu, list)
    assert rec.seed is not None and rec.seed_source == "chosen"
    assert rec.started and rec.ended and rec.duration_s and rec.duration_s > 0
    assert jobs.get(rec.id).model_dump() == rec.model_dump()
    assert [r.id for r in jobs.list(notebook=nb)] == [rec.id]


def test_failing_cell_is_located_and_the_output_is_valid(tmp_home: Path, make_nb: MakeNB) -> None:
    nb = make_nb(
        "fail.ipynb",
        "import lepton_nb as ln\nln.record('before', 1)",
        "raise ValueError('bad value ✗')",
        "ln.record('after', 2)",
        params="x = 1",
    )
    rec = jobs.run(nb, {"x": 2})
    assert rec.status == "failed" and rec.error is not None
    assert rec.error.cell_index == 2  # index in the user's notebook (parameters cell is 0)
    assert rec.error.ename == "ValueError" and rec.error.evalue == "bad value ✗"
    assert rec.error.reason == "error" and "ValueError" in (rec.error.traceback or "")
    assert rec.records == {"before": 1}
    nbformat.validate(nbformat.read(rec.output or "", as_version=4))
    with pytest.raises(JobError, match="cell 2: ValueError"):
        rec.raise_for_status()
    assert jobs.list(status="failed")[0].id == rec.id


def test_rerun_of_a_seeded_notebook_gives_identical_values(tmp_home: Path, make_nb: MakeNB) -> None:
    nb = make_nb(
        "seeded.ipynb",
        "import random, numpy as np, torch, lepton_nb as ln\n"
        "ln.record('random', random.random())\n"
        "ln.record('numpy', float(np.random.rand()))\n"
        "ln.record('torch', torch.rand(3).tolist())",
    )
    first = jobs.run(nb)
    again = jobs.rerun(first.id)
    assert first.status == again.status == "succeeded"
    assert again.rerun_of == first.id and again.id != first.id and again.seed == first.seed
    assert again.records == first.records and len(first.records) == 3
    assert not first.has_parameters_cell and "no cell tagged 'parameters'" in first.warnings[0]
    other = jobs.run(nb, seed=(first.seed or 0) + 1)
    assert other.records["random"] != first.records["random"]
    diff = jobs.compare(first.id, other.id)
    assert bool(diff.loc[("record", "random"), "differs"])
    assert not bool(diff.loc[("job", "notebook"), "differs"])


def test_bad_input_fails_before_running(tmp_home: Path, make_nb: MakeNB) -> None:
    nb = make_nb("p.ipynb", "pass", params="lr = 0.1\nepochs = 2")
    with pytest.raises(ConfigError, match=r"'lr_' .*lr \(default 0.1\), epochs \(default 2\)"):
        jobs.run(nb, {"lr_": 1})
    with pytest.raises(ConfigError, match="identifier"):
        jobs.run(nb, {"not-a-name": 1})
    with pytest.raises(JobError, match="does not exist"):
        jobs.run(nb.parent / "missing.ipynb")
    assert jobs.list() == []


def test_timeout_fails_with_reason_timeout(tmp_home: Path, make_nb: MakeNB) -> None:
    nb = make_nb(
        "slow.ipynb",
        "import lepton_nb as ln\nln.record('started', True)",
        "import time\ntime.sleep(120)",
    )
    t0 = time.monotonic()
    rec = jobs.run(nb, timeout=4)
    assert time.monotonic() - t0 < 60
    assert rec.status == "failed" and rec.error is not None and rec.error.reason == "timeout"
    assert rec.error.cell_index == 1 and rec.records == {"started": True}
    nbformat.validate(nbformat.read(rec.output or "", as_version=4))


def test_killed_kernel_fails_with_reason_kernel_died(tmp_home: Path, make_nb: MakeNB) -> None:
    nb = make_nb("die.ipynb", "x = 1", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    rec = jobs.run(nb)
    assert rec.status == "failed" and rec.error is not None
    assert rec.error.reason == "kernel died" and rec.error.cell_index == 1


def test_cancel_stops_a_running_job_and_output_appears_only_at_the_end(
    tmp_home: Path, tmp_path: Path, make_nb: MakeNB
) -> None:
    nb = make_nb("long.ipynb", "import time\ntime.sleep(120)")
    out = tmp_path / "o" / "long-out.ipynb"
    result: list[jobs.JobRecord] = []
    t = threading.Thread(target=lambda: result.append(jobs.run(nb, output=out)))
    t.start()
    deadline = time.monotonic() + 60
    while not jobs.list(status="running") and time.monotonic() < deadline:
        time.sleep(0.2)
    running = jobs.list(status="running")[0]
    time.sleep(1.5)  # the kernel is in the sleeping cell now
    assert not out.exists()  # papermill writes to a hidden partial file, renamed at the end
    cancelled = jobs.cancel(running.id)
    t.join(60)
    assert cancelled.status == "cancelled" and result[0].status == "cancelled"
    assert out.exists() and nbformat.read(out, as_version=4)
    with pytest.raises(JobError, match="already finished"):
        jobs.cancel(running.id)


def test_a_killed_runner_leaves_a_job_reported_lost(tmp_home: Path, make_nb: MakeNB) -> None:
    import os
    import signal
    import sys

    nb = make_nb("hang.ipynb", "import time\ntime.sleep(120)")
    runner = subprocess.Popen(
        [sys.executable, "-c", f"from lepton_nb import jobs; jobs.run({str(nb)!r})"],
        env={**os.environ, "LEPTON_HOME": str(tmp_home)},
    )
    try:
        deadline = time.monotonic() + 60
        while not jobs.list(status="running") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert jobs.list(status="running"), "the job never started"
    finally:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(30)
    lost = jobs.list()[0]
    assert lost.status == "lost"  # stored as running; its process is gone
    assert jobs.cancel(lost.id).status == "cancelled"


def test_jobs_in_threads_of_one_process(tmp_home: Path, make_nb: MakeNB) -> None:
    from concurrent.futures import ThreadPoolExecutor

    nb = make_nb("t.ipynb", "import lepton_nb as ln\nln.record('y', x + 1)", params="x = 0")
    with ThreadPoolExecutor(3) as pool:
        recs = list(pool.map(lambda i: jobs.run(nb, {"x": i}), [1, 2, 3]))
    assert [r.records for r in recs] == [{"y": 2}, {"y": 3}, {"y": 4}]
    assert all(r.status == "succeeded" and r.html and not r.warnings for r in recs)
    assert len({r.output for r in recs}) == 3 and len(jobs.list()) == 3
