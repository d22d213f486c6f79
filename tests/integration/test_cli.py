"""The lepton-nb command end to end, as a user runs it (a subprocess per command)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration
MakeNB = Callable[..., Path]
ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEPTON_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "lepton_nb.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_run_parameters_from_p_y_f_and_failures(make_nb: MakeNB, tmp_path: Path) -> None:
    home = tmp_path / "home"
    nb = make_nb(
        "nb.ipynb",
        "import lepton_nb as ln\nln.record('got', [n, f, s, y, fromfile])\nif n == 0:\n    1/0",
        params="n = 1\nf = 0.5\ns = 'x'\ny = 0\nfromfile = None",
    )
    pfile = tmp_path / "p.yaml"
    pfile.write_text("fromfile: [1, 2]\ny: 9\n")
    text = 'a "quoted" ünï\nsecond line'
    r = cli(
        "run",
        str(nb),
        "-p",
        "n",
        "7",
        "-p",
        "f",
        "2.5",
        "-p",
        "s",
        text,
        "-f",
        str(pfile),
        "-y",
        "y: 3",
        "-o",
        str(tmp_path / "out.ipynb"),
        home=home,
    )
    assert r.returncode == 0, r.stderr
    assert f"executed notebook: {tmp_path / 'out.ipynb'}" in r.stdout
    assert f"html: {tmp_path / 'out.html'}" in r.stdout and (tmp_path / "out.html").exists()
    job_id = re.search(r"job (\S+) succeeded", r.stdout).group(1)  # type: ignore[union-attr]
    shown = json.loads(cli("jobs", "show", job_id, home=home).stdout)
    assert shown["records"]["got"] == [7, 2.5, text, 3, [1, 2]]

    bad = cli("run", str(nb), "-p", "n", "0", home=home)
    assert bad.returncode == 1
    assert "failed: error in cell 1: ZeroDivisionError: division by zero" in bad.stderr
    assert "executed notebook:" in bad.stderr and "Traceback" not in bad.stderr

    unknown = cli("run", str(nb), "-p", "m", "1", home=home)
    assert unknown.returncode == 1 and "'m'" in unknown.stderr and "n (default 1)" in unknown.stderr

    plain = make_nb("plain.ipynb", "print('hi')")
    r = cli("run", str(plain), "-p", "anything", "1", home=home)
    assert r.returncode == 0 and "no cell tagged 'parameters'" in r.stderr

    listed = cli("jobs", "list", home=home).stdout.splitlines()
    assert len(listed) == 3 and "failed" in listed[1]
    assert cli("jobs", "list", "--status", "failed", home=home).stdout.count("\n") == 1


def test_sweep_rerun_compare_on_a_scheduler(make_nb: MakeNB, tmp_path: Path, cluster2: Any) -> None:
    home = tmp_path / "home"
    nb = make_nb(
        "sw.ipynb",
        "import lepton_nb as ln\nln.record('y', x * 10)",
        params="x = 0\nz = 'k'",
    )
    r = cli(
        "sweep",
        str(nb),
        "-p",
        "x",
        "1,2",
        "-p",
        "z",
        "p,q",
        "--scheduler",
        cluster2.scheduler_address,
        home=home,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("succeeded") == 4
    ids = [line.split()[0] for line in cli("jobs", "list", home=home).stdout.splitlines()]
    assert len(ids) == 4
    again = cli("jobs", "rerun", ids[0], home=home)
    assert again.returncode == 0 and 'records: {"y":' in again.stdout
    cmp_ = cli("jobs", "compare", ids[0], ids[-1], home=home)
    assert cmp_.returncode == 0 and "parameter" in cmp_.stdout and "True" in cmp_.stdout


def test_sweep_on_its_own_local_cluster_reports_failures(make_nb: MakeNB, tmp_path: Path) -> None:
    home = tmp_path / "home"
    nb = make_nb("f.ipynb", "assert x != 2, 'two is refused'", params="x = 0")
    r = cli("sweep", str(nb), "-p", "x", "1,2,3", "--workers", "2", home=home)
    assert r.returncode == 1
    assert "1 of 3 jobs did not succeed" in r.stderr
    assert r.stdout.count("succeeded") == 2 and "AssertionError: two is refused" in r.stdout


def test_demo_runs_the_quickstart_as_a_job(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = cli("demo", home=home, cwd=tmp_path)  # found next to the package, not in cwd
    assert r.returncode == 0, r.stdout + r.stderr
    out = re.search(r"executed notebook: (\S+)", r.stdout).group(1)  # type: ignore[union-attr]
    html = re.search(r"html: (\S+)", r.stdout).group(1)  # type: ignore[union-attr]
    assert Path(out).exists() and Path(html).exists()
    assert '"workers": 2' in r.stdout
    records = json.loads(r.stdout.split("records: ", 1)[1].splitlines()[0])
    assert records["test_accuracy"] > 0.5  # LeNet-5, 1 epoch of DDP on 2 workers


def test_scheduler_process_fires_a_due_schedule(make_nb: MakeNB, tmp_path: Path) -> None:
    import signal
    import time

    from lepton_nb.jobs._schedules import ScheduleStore

    home = tmp_path / "home"
    nb = make_nb("tick.ipynb", "import lepton_nb as ln\nln.record('n', n)", params="n = 1")
    added = cli("schedule", "add", str(nb), "@daily", "-p", "n", "6", home=home)
    assert added.returncode == 0, added.stderr
    store = ScheduleStore(home / "jobs.sqlite")
    (s,) = store.list()
    with store.jobs._write() as db:  # as if the scheduler had been down at 00:00
        db.execute("UPDATE schedules SET next_fire=? WHERE id=?", (time.time() - 3600, s.id))
    env = {**os.environ, "LEPTON_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lepton_nb.cli", "scheduler", "--tick", "0.5", "--idle-exit", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            jobs = store.jobs.list()
            if jobs and jobs[0].status not in ("queued", "running"):
                break
            time.sleep(0.5)
        (job,) = store.jobs.list()  # one catch-up firing
        assert job.status == "succeeded" and job.records == {"n": 6}, job.error
        assert job.schedule_id == s.id and store.get(s.id).next_fire > time.time()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert "Traceback" not in out, out
    assert "lepton-nb: interrupted" in out


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_scheduler_stops_on_a_signal_even_when_started_with_sigint_ignored(
    tmp_path: Path, sig: str
) -> None:
    """A background job of a non-interactive shell starts with SIGINT ignored (and Python keeps
    it so): the scheduler still stops on Ctrl-C, and on SIGTERM as supervisors send it."""
    import signal

    env = {**os.environ, "LEPTON_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lepton_nb.cli", "scheduler", "--tick", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert proc.stdout is not None
        assert "lepton-nb scheduler on" in proc.stdout.readline()
        proc.send_signal(getattr(signal, sig))
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "lepton-nb: interrupted" in out, out
    assert "Traceback" not in out, out


def test_run_with_a_profile_runs_on_that_cluster(
    make_nb: MakeNB, tmp_path: Path, cluster2: Any
) -> None:
    """`lepton-nb run --profile`: the kernel is a child of a worker of the profile's cluster."""
    home = tmp_path / "home"
    nb = make_nb(
        "where.ipynb",
        "import os\nimport lepton_nb as ln\n"
        "ln.record('where', [os.getppid(), os.environ.get('LEPTON_PROFILE')])",
    )
    env = {
        **os.environ,
        "LEPTON_HOME": str(home),
        "DASK_LEPTON__PROFILES__NEAR__KIND": "remote",
        "DASK_LEPTON__PROFILES__NEAR__ADDRESS": cluster2.scheduler_address,
    }
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "lepton_nb.cli",
            "run",
            str(nb),
            "--profile",
            "near",
            "-o",
            str(tmp_path / "out.ipynb"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    records = json.loads(r.stdout.split("records: ", 1)[1].splitlines()[0])
    workers = set(cluster2.client.run(os.getpid).values())
    assert records["where"][0] in workers and records["where"][1] == "near", (records, workers)
    assert (tmp_path / "out.ipynb").is_file() and (tmp_path / "out.html").is_file()
