"""`lepton-nb schedule add|list|pause|resume|remove|run` and `lepton-nb scheduler`.

Schedules live in the job store (``--store``). They fire while a Jupyter server with lepton_nb
or a `lepton-nb scheduler` process runs on that store; one of them fires, the others wait.
"""

from __future__ import annotations

import argparse
import json
import signal
import time
from datetime import datetime
from typing import Any

from lepton_nb._cli_common import add_param_options, collect_params


def add_parsers(sub: Any) -> None:
    sch = sub.add_parser("schedule", help="run a notebook on a cron schedule")
    ssub = sch.add_subparsers(dest="action", required=True)
    add = ssub.add_parser("add", help="add a schedule: NOTEBOOK CRON (e.g. '0 3 * * *')")
    add.add_argument("notebook")
    add.add_argument("cron", help="5-field cron expression or @daily/@hourly...")
    add.add_argument("--timezone", default="UTC", help="IANA time zone of the cron (default UTC)")
    add.add_argument("--profile", help="cluster profile: its jobs run on that cluster")
    add.add_argument("--name", default="", help="a name to recognise it by")
    add.add_argument("--output-dir", help="folder for the executed notebooks")
    add_param_options(add)
    ssub.add_parser("list", help="schedules, their next firing and last job")
    for action, text in (
        ("pause", "stop firing (kept)"),
        ("resume", "fire again from the next slot"),
        ("remove", "delete the schedule (its jobs stay)"),
        ("run", "queue one job of the schedule now"),
    ):
        ssub.add_parser(action, help=text).add_argument("id")
    sc = sub.add_parser("scheduler", help="fire schedules and run queued jobs in the foreground")
    sc.add_argument(
        "--max-parallel",
        type=int,
        default=2,
        help="jobs at once (default 2; a live runner adopts it)",
    )
    sc.add_argument("--tick", type=float, default=5.0, help="seconds between looks (default 5)")
    sc.add_argument(
        "--idle-exit", type=float, default=30.0, help="seconds the job runner idles before exiting"
    )


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z") if ts else "-"


def cmd_schedule(args: argparse.Namespace) -> int:
    from lepton_nb.jobs._scheduler import run_now
    from lepton_nb.jobs._schedules import Schedule, ScheduleStore, check_profile

    store = ScheduleStore(args.store)
    if args.action == "add":
        from lepton_nb.jobs._queue import queued_record

        params = collect_params(args)
        check_profile(args.profile)
        rec = queued_record(args.notebook, params, kernel=args.kernel)  # validates now
        s = store.add(
            Schedule(
                name=args.name,
                notebook=rec.notebook,
                parameters=params,
                cron=args.cron,
                timezone=args.timezone,
                profile=args.profile,
                output_dir=args.output_dir,
            )
        )
        print(f"schedule {s.id} added; next firing {_when(s.next_fire)}")
        return 0
    if args.action == "list":
        rows = store.list()
        if not rows:
            print("no schedules; add one with `lepton-nb schedule add NOTEBOOK CRON`")
        for s in rows:
            state = "paused" if s.paused else f"next {_when(s.next_fire)}"
            last = f"last job {s.last_job}" if s.last_job else "never fired"
            values = json.dumps(s.parameters, ensure_ascii=False)
            print(f"{s.id}  {s.cron!r} {s.timezone}  {state}  {last}  {s.notebook}  {values}")
        return 0
    if args.action in ("pause", "resume"):
        s = store.update(args.id, {"paused": args.action == "pause"})
        print(f"schedule {s.id} " + ("paused" if s.paused else f"next {_when(s.next_fire)}"))
        return 0
    if args.action == "remove":
        print(f"schedule {store.remove(args.id).id} removed")
        return 0
    job = run_now(store, args.id)
    print(f"job {job.id} {job.status}; it runs when a scheduler or server serves this store")
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    from lepton_nb.jobs._dispatcher import check_max_parallel, ensure_runner, set_max_parallel
    from lepton_nb.jobs._scheduler import Scheduler
    from lepton_nb.jobs._schedules import ScheduleStore

    check_max_parallel(args.max_parallel)  # before a store is created
    store = ScheduleStore(args.store)
    set_max_parallel(store.jobs, args.max_parallel)  # a runner already up adopts it too

    def kick(_fired: object = None) -> None:
        ensure_runner(store.jobs, args.max_parallel, args.idle_exit)

    scheduler = Scheduler(store, tick=args.tick, on_fire=kick)
    _stop_on_signals()
    print(f"lepton-nb scheduler on {store.jobs.path} (Ctrl-C stops it)", flush=True)
    if store.jobs.queued_ids():
        kick()
    scheduler.start()
    try:
        while scheduler.is_alive():
            time.sleep(1.0)
    finally:
        scheduler.stop()
    return 0


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM (systemd, docker stop, a supervisor) both stop the scheduler cleanly.
    SIGINT is set explicitly: a process started in the background by a non-interactive shell
    inherits SIGINT ignored, and Python then leaves it ignored."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


__all__ = ["add_parsers", "cmd_schedule", "cmd_scheduler"]
