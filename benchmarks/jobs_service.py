"""Jobs beside the server: throughput of the runner and the per-job overhead of `lepton-nb run`.

Reproduce: python benchmarks/jobs_service.py [--jobs 12] [--work-s 1.0] [--repeat 3] [--profile]

Reports, in one run on one machine:
  * jobs/minute for ``--jobs`` notebooks of ``--work-s`` CPU-seconds each, queued at once and run
    by the detached runner (lepton_nb.jobs._dispatcher) with max_parallel_jobs 1 and then 2;
  * with ``--profile``: the same jobs with max_parallel_jobs 2 run ON a cluster profile (a
    ``remote`` profile at a ``dask scheduler`` + 2 ``dask worker`` processes of 1 thread that
    this script starts), each job a Dask task on a worker, against the local runner;
  * the HTML copy's CPU in a fresh process (what one ``lepton-nb run`` pays): nbconvert's
    ``HTMLExporter`` as-is (the anchor, what lepton_nb did before) vs lepton_nb.jobs._html.render
    (no BeautifulSoup pass, Jinja bytecode cache), both importing nbconvert, interleaved;
  * per-job overhead of ``lepton-nb run`` (with its HTML copy, and with --no-html) over the
    ``papermill`` CLI, all three fresh processes, interleaved (the order turns each round),
    medians of wall and of CPU, and the median of the per-round CPU differences
    (user+sys of the process and its kernel: on a shared machine CPU is the fair measure).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_notebook(path: Path, work_s: float) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(
        cells=[
            new_code_cell(f"x = 0\nwork_s = {work_s}", metadata={"tags": ["parameters"]}),
            new_code_cell(
                "import time\nt0 = time.process_time()\nn = 0\n"
                "while time.process_time() - t0 < work_s:\n    n += sum(range(1000))\n"
            ),
            new_code_cell("import lepton_nb as ln\nln.record('x', x)"),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed_cmd(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), cpu_children()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - t0, cpu_children() - c0


HTML_CPU = """
import resource, sys, nbformat, papermill
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
nb = nbformat.read(sys.argv[2], as_version=4)
nb.metadata.setdefault("language_info", {})["pygments_lexer"] = "python3"
t = cpu()
if sys.argv[1] == "anchor":
    from nbconvert import HTMLExporter
    HTMLExporter().from_notebook_node(nb)
else:
    from lepton_nb.jobs._html import render
    render(nb)
print(cpu() - t)
"""


def html_cpu(executed: Path, env: dict[str, str], repeat: int) -> dict[str, float]:
    out: dict[str, list[float]] = {"anchor": [], "ours": []}
    for _ in range(repeat):
        for which in out:
            cmd = [sys.executable, "-c", HTML_CPU, which, str(executed)]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
            out[which].append(float(done.stdout.split()[-1]))
    return {k: statistics.median(v) for k, v in out.items()}


def throughput(
    nb: Path, n: int, parallel: int, home: Path, profile: str | None = None
) -> tuple[float, int]:
    """(jobs per minute, peak jobs running at once) for n jobs queued at once."""
    from lepton_nb.jobs import _queue as queue
    from lepton_nb.jobs._dispatcher import Dispatcher
    from lepton_nb.jobs.store import JobStore

    store = JobStore(home / f"p{parallel}{profile or ''}.sqlite")
    recs = [  # validated, queued
        queue.submit(nb, {"x": i}, store=store, profile=profile) for i in range(n)
    ]
    t0 = time.perf_counter()
    Dispatcher(store, parallel, idle_exit=0.2).run()
    elapsed = time.perf_counter() - t0 - 0.2
    done = [store.get(r.id) for r in recs]
    assert all(r.status == "succeeded" for r in done), [r.status for r in done]
    events = sorted([(r.started or 0, 1) for r in done] + [(r.ended or 0, -1) for r in done])
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return n / elapsed * 60, peak


def start_farm(workers: int) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """A `dask scheduler` and ``workers`` one-thread `dask worker` processes on 127.0.0.1.

    Waited for from a child process: this one must start no thread before the runner forks."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [
        subprocess.Popen(
            [
                *dask,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                "127.0.0.1:0",
            ],
            **quiet,
        )
    ]
    for _ in range(workers):
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_worker",
                    address,
                    "--nthreads",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--no-dashboard",
                ],
                **quiet,
            )
        )
    wait = (
        f"from distributed import Client\nwith Client({address!r}, timeout=60) as c:\n"
        f"    c.wait_for_workers({workers}, timeout=120)"
    )
    subprocess.run([sys.executable, "-c", wait], check=True)
    return address, procs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=12)
    ap.add_argument("--work-s", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3, help="rounds of the per-job comparison")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="also run the jobs on a remote profile's cluster (max_parallel_jobs 2)",
    )
    ap.add_argument("--html-only", action="store_true", help="only the HTML copy's CPU")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="lepton-bench-"))
    home = tmp / "home"
    home.mkdir()
    os.environ["LEPTON_HOME"] = str(home)
    env = {**os.environ}
    nb = make_notebook(tmp / "one_second.ipynb", args.work_s)
    loads = [os.getloadavg()[0]]

    if not args.skip_throughput:
        rates = {p: throughput(nb, args.jobs, p, home) for p in (1, 2)}
        loads.append(os.getloadavg()[0])
        for p, (rate, peak) in rates.items():
            print(f"max_parallel_jobs={p}: {rate:6.1f} jobs/min  (peak running {peak})")
        print(f"speed-up 2 vs 1: {rates[2][0] / rates[1][0]:.2f}x")
        if args.profile:
            import dask.config

            address, farm = start_farm(2)
            try:
                with dask.config.set(
                    {"lepton.profiles.bench": {"kind": "remote", "address": address}}
                ):
                    rate, peak = throughput(nb, args.jobs, 2, home, profile="bench")
            finally:
                for proc in farm:
                    proc.terminate()
                    proc.wait(30)
            loads.append(os.getloadavg()[0])
            print(
                f"max_parallel_jobs=2 on a remote profile (2 workers x 1 thread): "
                f"{rate:6.1f} jobs/min  (peak running {peak}); vs local runner "
                f"{rate / rates[2][0]:.2f}x"
            )

    def pm(i: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "papermill",
            "--no-progress-bar",
            str(nb),
            str(tmp / f"pm{i}.ipynb"),
            "-p",
            "x",
            str(i),
        ]

    def ln(i: int, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "lepton_nb.cli",
            "run",
            str(nb),
            "-p",
            "x",
            str(i),
            "-o",
            str(tmp / f"ln{i}{''.join(extra)}.ipynb"),
            *extra,
        ]

    # page cache, bytecode and lepton_nb's template cache, for all; an output of its own (an
    # existing output is refused by `lepton-nb run`)
    timed_cmd(pm(-1), env)
    timed_cmd(ln(-1), env)
    if args.html_only:
        cost = html_cpu(tmp / "ln-1.ipynb", env, args.repeat)
        print(
            f"HTML copy CPU per fresh process, median of {args.repeat}: nbconvert HTMLExporter "
            f"{cost['anchor']:.3f} s, lepton_nb render {cost['ours']:.3f} s "
            f"({(cost['ours'] - cost['anchor']) / cost['anchor'] * 100:+.0f} %); "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        return
    runs: dict[str, list[tuple[float, float]]] = {"pm": [], "ln": [], "ln_nohtml": []}
    cmds = {"pm": pm, "ln": ln, "ln_nohtml": lambda i: ln(i, "--no-html")}
    for i in range(args.repeat):
        # the order turns each round, so none of the three always runs first (cold caches)
        # or last; results stay paired by round
        order = list(cmds)
        for key in order[i % 3 :] + order[: i % 3]:
            runs[key].append(timed_cmd(cmds[key](i), env))
    loads.append(os.getloadavg()[0])

    def med(key: str, k: int) -> float:
        return statistics.median(r[k] for r in runs[key])

    print("per job, median          wall s   CPU s   vs papermill (wall / CPU)")
    for key, label in (
        ("pm", "papermill CLI"),
        ("ln", "lepton-nb run"),
        ("ln_nohtml", "lepton-nb run --no-html"),
    ):
        rel = "".join(
            f"  {(med(key, k) - med('pm', k)) / med('pm', k) * 100:+6.1f} %" for k in (0, 1)
        )
        print(f"  {label:<24}{med(key, 0):7.2f} {med(key, 1):7.2f} {rel}")
    # Rounds run side by side, so a round's pair shares the machine's load of the moment: the
    # median of the per-round differences drifts less with the load of other users than the
    # difference of the medians above.
    for key, label in (("ln", "lepton-nb run"), ("ln_nohtml", "lepton-nb run --no-html")):
        pairs = zip(runs[key], runs["pm"], strict=True)
        deltas = [(a[1] - b[1], (a[1] - b[1]) / b[1] * 100) for a, b in pairs]
        d_s = statistics.median(d[0] for d in deltas)
        d_pct = statistics.median(d[1] for d in deltas)
        lo, hi = min(d[1] for d in deltas), max(d[1] for d in deltas)
        print(
            f"  {label:<24} CPU over papermill, median of {len(deltas)} paired rounds: "
            f"{d_s:+.3f} s ({d_pct:+.1f} %; rounds {lo:+.1f} .. {hi:+.1f} %)"
        )
    print(
        f"machine: {os.cpu_count()} CPUs; load average during the runs: "
        + ", ".join(f"{x:.1f}" for x in loads)
    )
    print(
        f"reproduce: python benchmarks/jobs_service.py --skip-throughput "
        f"--work-s {args.work_s} --repeat {args.repeat}"
    )


if __name__ == "__main__":
    main()
