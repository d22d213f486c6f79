"""`lepton-nb tutorials`: run every tutorial notebook and write an HTML index.

For a teacher checking a classroom machine before a session: one command, one page that says
which notebooks ran, how long each took, and whether its recorded results meet their checks.
"""

from __future__ import annotations

import argparse
from typing import Any

from lepton_nb._cli_common import add_p_option, parse_value


def add_parser(sub: Any) -> None:
    p = sub.add_parser("tutorials", help="run the tutorial notebooks and write an HTML index")
    p.add_argument("names", nargs="*", help="tutorials to run, e.g. 00 05 (default: all)")
    p.add_argument("-o", "--output", default="lepton-tutorials", help="output directory")
    add_p_option(p, "a parameter for every tutorial that declares it (typed like papermill -p)")
    p.add_argument("--quick", action="store_true", help="smaller settings, as CI runs them")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed per notebook")


def cmd(args: argparse.Namespace) -> int:
    from lepton_nb.tutorials import run_tutorials

    params = {name: parse_value(value) for name, value in args.parameters or []}
    index = run_tutorials(
        args.output,
        names=args.names or None,
        parameters=params or None,
        quick=args.quick,
        timeout=args.timeout,
        store=args.store,
        strict=True,
    )
    print(f"all tutorials passed; index: {index}")
    return 0


__all__ = ["add_parser", "cmd"]
