"""`lepton-nb jobs ...`: list, show, rerun, compare, cancel and check recorded jobs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lepton_nb._cli_common import report


def add_parser(sub: Any) -> None:
    jobs = sub.add_parser("jobs", help="list, show, rerun, compare, cancel or check recorded jobs")
    jsub = jobs.add_subparsers(dest="action", required=True)
    ls = jsub.add_parser("list", help="recorded jobs, newest first")
    ls.add_argument("--notebook")
    ls.add_argument("--status")
    ls.add_argument("-n", "--limit", type=int, default=50)
    show = jsub.add_parser("show", help="one job's full record (JSON)")
    show.add_argument("id")
    rerun = jsub.add_parser("rerun", help="run a job again with the same parameters and seed")
    rerun.add_argument("id")
    rerun.add_argument("-o", "--output")
    rerun.add_argument("--overwrite", action="store_true", help="replace an existing output")
    cmp_ = jsub.add_parser("compare", help="two jobs side by side, differences flagged")
    cmp_.add_argument("a")
    cmp_.add_argument("b")
    cmp_.add_argument("--all", action="store_true", help="also show rows that are equal")
    cancel = jsub.add_parser("cancel", help="stop a queued or running job")
    cancel.add_argument("id")
    check = jsub.add_parser("check", help="check the job store's integrity (read only)")
    check.add_argument(
        "--recover",
        action="store_true",
        help="move a damaged store aside and keep its readable records in a new one",
    )


def cmd(args: argparse.Namespace) -> int:
    from lepton_nb import jobs

    if args.action == "check":
        return _check(args)
    if args.action == "list":
        recs = jobs.list(
            notebook=args.notebook, status=args.status, store=args.store, limit=args.limit
        )
        if not recs:
            print("no jobs recorded yet; run one with `lepton-nb run NOTEBOOK`")
        for r in recs:
            params = json.dumps(r.parameters, ensure_ascii=False)
            print(f"{r.summary()}  {params}")
        return 0
    if args.action == "show":
        rec = jobs.get(args.id, store=args.store)
        print(json.dumps(rec.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return 0
    if args.action == "rerun":
        return report(
            jobs.rerun(args.id, output=args.output, store=args.store, overwrite=args.overwrite)
        )
    if args.action == "compare":
        df = jobs.compare(args.a, args.b, store=args.store)
        if not args.all:
            df = df[df["differs"]]
        print(df.to_string() if len(df) else "no differences")
        return 0
    rec = jobs.cancel(args.id, store=args.store)
    print(f"job {rec.id} {rec.status}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from lepton_nb.jobs._store_check import check_store, recover_store

    health = check_store(args.store)
    print(health.describe())
    if health.ok or not args.recover:
        return 0 if health.ok else 1
    aside, kept, lost = recover_store(args.store)
    print(f"recovered: the damaged store is now {aside} (kept, never modified)")
    print(f"  a new store at {health.path} holds {kept} readable record(s); {lost} unreadable")
    return 0


__all__ = ["add_parser", "cmd"]
