"""Sweep of 4 short notebook jobs on a 2-worker Dask cluster vs the papermill CLI one by one.

Reproduce: python benchmarks/sweep_vs_papermill.py [--work-s 1.0] [--jobs 4]

Reports, in one run on one machine:
  * speed-up of ``jobs.sweep`` on a 2-worker cluster over ``papermill`` CLI runs one after
    another (cluster start-up excluded: the sweep uses the cluster that already trains;
    it is printed separately);
  * per-job overhead of lepton_nb over plain papermill: ``lepton-nb run`` vs ``papermill`` (both
    CLI processes, interleaved, median), and ``jobs.run`` vs ``papermill.execute_notebook`` in
    one process (median). lepton_nb's extra work: parameter checks, provenance (git, versions),
    SQLite record and heartbeat, kernel seeding, atomic output and an HTML rendering.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_notebook(path: Path, work_s: float) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    cells = [
        new_code_cell(f"x = 0\nwork_s = {work_s}", metadata={"tags": ["parameters"]}),
        # CPU-bound work of a fixed duration, like a short evaluation in a real notebook
        new_code_cell(
            "import time\nt0 = time.process_time()\nn = 0\n"
            "while time.process_time() - t0 < work_s:\n    n += sum(range(1000))\n"
        ),
        new_code_cell("import lepton_nb as ln\nln.record('x', x)"),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_cmd(cmd: list[str], env: dict[str, str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True, env=env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--work-s", type=float, default=1.0, help="CPU seconds of work per job")
    args = ap.parse_args()

    import papermill

    import lepton_nb as ln
    from lepton_nb import jobs

    tmp = Path(tempfile.mkdtemp(prefix="lepton-bench-"))
    env = {**os.environ, "LEPTON_HOME": str(tmp / "home")}
    os.environ["LEPTON_HOME"] = env["LEPTON_HOME"]
    nb = make_notebook(tmp / "short.ipynb", args.work_s)
    papermill_cli = [sys.executable, "-m", "papermill", "--no-progress-bar"]
    lepton_cli = [sys.executable, "-m", "lepton_nb.cli"]
    n = args.jobs

    # warm the page cache / bytecode for both tools once
    run_cmd([*papermill_cli, str(nb), str(tmp / "warm.ipynb"), "-p", "x", "0"], env)
    run_cmd([*lepton_cli, "run", str(nb), "-p", "x", "0", "-o", str(tmp / "warm2.ipynb")], env)

    # 1) the anchor: papermill CLI, one job after another
    pm_seq = timed(
        lambda: [
            run_cmd([*papermill_cli, str(nb), str(tmp / f"pm{i}.ipynb"), "-p", "x", str(i)], env)
            for i in range(n)
        ]
    )

    # 2) ours: one sweep of the same jobs on a 2-worker cluster
    t0 = time.perf_counter()
    cluster = ln.launch_cluster(
        n_workers=2, threads_per_worker=1, gpu=False, dashboard_address="127.0.0.1:0"
    )
    cluster.wait_for_workers(2)
    start_s = time.perf_counter() - t0
    try:
        sw = timed(
            lambda: jobs.sweep(
                nb, {"x": list(range(n))}, cluster=cluster, progress=False, output_dir=tmp / "sweep"
            )
        )
        df = jobs.sweep(nb, {"x": [0]}, cluster=cluster, progress=False)
        assert (df["status"] == "succeeded").all()
    finally:
        cluster.close()

    # 3) per-job overhead, CLI vs CLI, interleaved so machine noise hits both alike
    pm_cli: list[float] = []
    ln_cli: list[float] = []
    ln_nohtml: list[float] = []
    for i in range(n):
        ln_nohtml.append(
            timed(
                lambda i=i: run_cmd(
                    [
                        *lepton_cli,
                        "run",
                        str(nb),
                        "-p",
                        "x",
                        str(i),
                        "--no-html",
                        "-o",
                        str(tmp / f"h{i}.ipynb"),
                    ],
                    env,
                )
            )
        )
        pm_cli.append(
            timed(
                lambda i=i: run_cmd(
                    [*papermill_cli, str(nb), str(tmp / f"o{i}.ipynb"), "-p", "x", str(i)], env
                )
            )
        )
        ln_cli.append(
            timed(
                lambda i=i: run_cmd(
                    [
                        *lepton_cli,
                        "run",
                        str(nb),
                        "-p",
                        "x",
                        str(i),
                        "-o",
                        str(tmp / f"l{i}.ipynb"),
                    ],
                    env,
                )
            )
        )

    # 4) per-job overhead in one process (no interpreter start-up in either)
    pm_api, ln_api = [], []
    for i in range(n):
        pm_api.append(
            timed(
                lambda i=i: papermill.execute_notebook(
                    str(nb), str(tmp / f"a{i}.ipynb"), parameters={"x": i}, progress_bar=False
                )
            )
        )
        ln_api.append(
            timed(lambda i=i: jobs.run(nb, {"x": i}, output=tmp / f"b{i}.ipynb").raise_for_status())
        )

    def over(a: list[float], b: list[float]) -> float:
        return (statistics.median(b) - statistics.median(a)) / statistics.median(a) * 100

    print(f"machine: {os.cpu_count()} CPUs; {n} jobs of {args.work_s:.1f} CPU-s each")
    print(f"papermill CLI, one after another : {pm_seq:6.2f} s")
    print(f"jobs.sweep on 2 workers          : {sw:6.2f} s  (+{start_s:.2f} s cluster start)")
    print(
        f"speed-up (target >= 1.6x)        : {pm_seq / sw:6.2f}x  "
        f"({pm_seq / (sw + start_s):.2f}x counting cluster start)"
    )
    print(f"per job, papermill CLI (median)  : {statistics.median(pm_cli):6.2f} s")
    print(f"per job, lepton-nb run (median)  : {statistics.median(ln_cli):6.2f} s")
    print(f"overhead CLI vs CLI (target <=10%): {over(pm_cli, ln_cli):+6.1f} %")
    print(
        f"per job, lepton-nb run --no-html : {statistics.median(ln_nohtml):6.2f} s  "
        f"({over(pm_cli, ln_nohtml):+.1f} % vs papermill; the rest is the HTML copy)"
    )
    print(f"per job, papermill API (median)  : {statistics.median(pm_api):6.2f} s")
    print(f"per job, jobs.run (median)       : {statistics.median(ln_api):6.2f} s")
    print(f"overhead API vs API              : {over(pm_api, ln_api):+6.1f} %")
    print(f"reproduce: python benchmarks/sweep_vs_papermill.py --jobs {n} --work-s {args.work_s}")


if __name__ == "__main__":
    main()
