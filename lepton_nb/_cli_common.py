"""What the ``lepton-nb`` subcommands share: ``-p/-r/-y/-f`` parameters and the job report.

Its own module so that ``cli`` and the ``_cli_*`` subcommand modules both import it, and none
of them imports ``cli`` back.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from lepton_nb.errors import ConfigError

_INT = re.compile(r"^[-+]?\d+$")


def parse_value(text: str) -> Any:
    """A ``-p`` value the way papermill's CLI reads it: True/False/None, ints, floats, else text.

    Anything else (quotes, newlines, unicode, YAML-looking text) arrives as the literal string.
    """
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    if text in ("None", "null"):
        return None
    if _INT.match(text):
        return int(text)
    if "\n" not in text and text.strip() == text:
        try:
            value = float(text)
        except ValueError:
            return text
        if value == value and value not in (float("inf"), float("-inf")):
            return value
    return text


def load_yaml_params(text: str, where: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where} is not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where} must be a YAML mapping of name: value, got {type(data).__name__}"
        )
    return dict(data)


def collect_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for f in args.parameters_file or []:
        path = Path(f)
        if not path.is_file():
            raise ConfigError(f"parameters file {f!r} does not exist")
        params.update(load_yaml_params(path.read_text(encoding="utf-8"), f"parameters file {f}"))
    for y in args.parameters_yaml or []:
        params.update(load_yaml_params(y, "-y"))
    for name, value in args.parameters or []:
        params[name] = parse_value(value)
    for name, value in args.parameters_raw or []:
        params[name] = value
    return params


def add_p_option(p: argparse.ArgumentParser, help_p: str) -> None:
    """``-p NAME VALUE`` (repeatable), read with :func:`parse_value`."""
    p.add_argument(
        "-p", "--parameters", nargs=2, action="append", metavar=("NAME", "VALUE"), help=help_p
    )


def add_param_options(p: argparse.ArgumentParser, sweep: bool = False) -> None:
    add_p_option(p, "a sweep axis: NAME V1,V2,..." if sweep else
                 "a parameter (typed like papermill -p)")  # fmt: skip
    p.add_argument(
        "-r",
        "--parameters-raw",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="a parameter kept as a string",
    )
    p.add_argument(
        "-y",
        "--parameters-yaml",
        action="append",
        metavar="YAML",
        help="parameters as a YAML mapping",
    )
    p.add_argument(
        "-f",
        "--parameters-file",
        action="append",
        metavar="FILE",
        help="parameters from a YAML file",
    )
    p.add_argument("--kernel", help="kernel name (default: the notebook's)")
    p.add_argument("--timeout", type=float, help="seconds before the job is stopped and failed")
    p.add_argument("--cwd", help="working directory of the kernel (default: the notebook's)")
    p.add_argument("--no-html", action="store_true", help="skip the HTML rendering")


def report(rec: Any, out: Any = None) -> int:
    out = out or sys.stdout
    for w in rec.warnings:
        print(f"note: {w}", file=sys.stderr)
    if rec.status != "succeeded":
        detail = rec.error.describe() if rec.error else rec.status
        print(f"lepton-nb: job {rec.id} {rec.status}: {detail}", file=sys.stderr)
        print(f"  executed notebook: {rec.output or '(none written)'}", file=sys.stderr)
        return 1
    print(f"job {rec.id} succeeded in {rec.duration_s:.1f}s", file=out)
    print(f"  executed notebook: {rec.output}", file=out)
    if rec.html:
        print(f"  html: {rec.html}", file=out)
    if rec.records:
        print(f"  records: {json.dumps(rec.records, ensure_ascii=False)}", file=out)
    return 0


__all__ = [
    "add_p_option",
    "add_param_options",
    "collect_params",
    "load_yaml_params",
    "parse_value",
    "report",
]
