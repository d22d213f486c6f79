"""The ``lepton-nb`` command: run notebooks as jobs, sweep them on a cluster, inspect the store.

Exit codes: 0 success, 1 a job failed or a LeptonError (message on stderr, no traceback),
2 usage errors (argparse).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lepton_nb import _cli_jobs, _cli_schedule, _cli_tutorials
from lepton_nb._cli_common import add_param_options, collect_params, parse_value, report
from lepton_nb.errors import JobError, LeptonError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lepton-nb", description=__doc__.split("\n")[0])
    parser.add_argument("--store", help="job store path (default: $LEPTON_HOME/jobs.sqlite)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a notebook as a recorded papermill job")
    run.add_argument("notebook")
    run.add_argument("-o", "--output", help="executed notebook path")
    run.add_argument("--seed", type=int, help="seed when the notebook has no seed parameter")
    run.add_argument("--profile", help="run on the cluster of this profile (a Dask task)")
    run.add_argument(
        "--overwrite", action="store_true", help="replace an existing output and its .html copy"
    )
    add_param_options(run)

    sw = sub.add_parser("sweep", help="run a parameter grid of a notebook on a Dask cluster")
    sw.add_argument("notebook")
    where = sw.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local cluster size (default 2)")
    where.add_argument("--scheduler", help="address of an existing Dask scheduler")
    sw.add_argument("--output-dir", help="folder for the executed notebooks")
    add_param_options(sw, sweep=True)

    _cli_jobs.add_parser(sub)

    demo = sub.add_parser("demo", help="run the quickstart notebook as a job")
    demo.add_argument("-o", "--output", help="executed notebook path")
    demo.add_argument("--workers", type=int, default=2)
    _cli_tutorials.add_parser(sub)
    _cli_schedule.add_parsers(sub)
    return parser


def find_quickstart() -> Path:
    """notebooks/01_quickstart.ipynb in the current directory, else next to the package."""
    import lepton_nb

    name = Path("notebooks") / "01_quickstart.ipynb"
    candidates = [Path.cwd() / name, Path(lepton_nb.__file__).resolve().parents[1] / name]
    for c in candidates:
        if c.is_file():
            return c
    raise JobError(
        "cannot find notebooks/01_quickstart.ipynb (looked in "
        + ", ".join(str(c.parent) for c in candidates)
        + "); run `lepton-nb demo` from a lepton_nb source checkout"
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from lepton_nb import jobs

    rec = jobs.run(
        args.notebook,
        collect_params(args),
        output=args.output,
        kernel=args.kernel,
        timeout=args.timeout,
        cwd=args.cwd,
        store=args.store,
        seed=args.seed,
        html=not args.no_html,
        overwrite=args.overwrite,
        profile=args.profile,
    )
    return report(rec)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from lepton_nb import jobs

    grid: dict[str, Any] = {k: [v] for k, v in _collect_params_base(args).items()}
    for name, values in args.parameters or []:
        grid[name] = [parse_value(v) for v in values.split(",")]
    if args.scheduler:
        cluster: Any = args.scheduler
        df = jobs.sweep(args.notebook, grid, cluster=cluster, **_sweep_kwargs(args))
    else:
        import lepton_nb

        n = args.workers or 2
        with lepton_nb.launch_cluster(
            n_workers=n, threads_per_worker=1, dashboard_address="127.0.0.1:0"
        ) as cluster:
            cluster.wait_for_workers(n)
            df = jobs.sweep(args.notebook, grid, cluster=cluster, **_sweep_kwargs(args))
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(df.drop(columns=["output"]).to_string(index=False))
    failed = int((df["status"] != "succeeded").sum())
    if failed:
        print(f"lepton-nb: {failed} of {len(df)} jobs did not succeed", file=sys.stderr)
    return 1 if failed else 0


def _collect_params_base(args: argparse.Namespace) -> dict[str, Any]:
    saved, args.parameters = args.parameters, None
    try:
        return collect_params(args)
    finally:
        args.parameters = saved


def _sweep_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "output_dir": args.output_dir,
        "kernel": args.kernel,
        "timeout": args.timeout,
        "cwd": args.cwd,
        "store": args.store,
        "html": not args.no_html,
    }


def _cmd_demo(args: argparse.Namespace) -> int:
    from lepton_nb import jobs

    nb = find_quickstart()
    print(f"running {nb} as a job (a local cluster of {args.workers} workers)...", flush=True)
    rec = jobs.run(nb, {"n_workers": args.workers}, output=args.output, store=args.store)
    return report(rec)


_COMMANDS = {
    "run": _cmd_run,
    "sweep": _cmd_sweep,
    "jobs": _cli_jobs.cmd,
    "demo": _cmd_demo,
    "tutorials": _cli_tutorials.cmd,
    "schedule": _cli_schedule.cmd_schedule,
    "scheduler": _cli_schedule.cmd_scheduler,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except LeptonError as e:
        print(f"lepton-nb: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lepton-nb: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["build_parser", "find_quickstart", "main"]
