"""Checking a job's notebook and parameters before anything starts."""

from __future__ import annotations

import ast
import keyword
import math
import secrets
import unicodedata
from pathlib import Path
from typing import Any

from lepton_nb.errors import ConfigError, JobError


def resolve_notebook(notebook: str | Path) -> Path:
    path = Path(notebook).expanduser()
    if not path.exists():
        raise JobError(
            f"notebook {str(notebook)!r} does not exist; check the path (cwd: {Path.cwd()})"
        )
    if not path.is_file() or path.suffix != ".ipynb":
        raise JobError(f"{str(notebook)!r} is not a notebook file; pass a path to a .ipynb file")
    return path.resolve()


def notebook_kernel(path: Path, kernel: str | None = None) -> tuple[str, dict[str, Any]]:
    """(kernel name, declared parameters): the kernel is ``kernel``, else the notebook's, else
    ``python3`` (what Jupyter would start for a notebook without kernelspec metadata)."""
    from papermill.inspection import _infer_parameters
    from papermill.iorw import load_notebook_node

    try:
        nb = load_notebook_node(str(path))  # papermill's reader fills in the metadata it needs
    except Exception as e:
        raise JobError(f"cannot read notebook {path}: {type(e).__name__}: {e}") from e
    spec = nb.metadata.get("kernelspec", {})
    name = kernel or spec.get("name") or "python3"
    language = nb.metadata.get("language_info", {}).get("name") or spec.get("language")
    # papermill's own parser of the parameters cell (inspect_notebook minus its file re-read)
    params = _infer_parameters(nb, name=name, language=language or "python")
    return name, {p.name: p._asdict() for p in params}


def kernel_missing(path: Path) -> bool:
    """Whether the notebook names no kernel (papermill would need ``--kernel``)."""
    import json

    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError):
        return False
    return not (meta.get("kernelspec") or {}).get("name")


def notebook_parameters(path: Path, kernel: str | None = None) -> dict[str, dict[str, Any]]:
    """The notebook's ``parameters`` cell as papermill sees it (empty when there is none)."""
    return notebook_kernel(path, kernel)[1]


# Python refuses to print ints of more than 4300 digits, and papermill prints parameters as code.
_MAX_INT_BITS = 4000 * 3
# A parameter nested deeper than this is a mistake, and would exhaust the recursion limit.
MAX_PARAM_DEPTH = 20


def _check_value(name: str, value: Any, where: str = "", depth: int = 0) -> None:
    if depth > MAX_PARAM_DEPTH:
        raise ConfigError(
            f"parameter {name!r} nests deeper than {MAX_PARAM_DEPTH} levels; pass flatter data"
        )
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:
            raise ConfigError(
                f"parameter {name!r}{where} is an integer of more than 3600 digits; pass it as "
                "a string"
            )
        return
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(
                f"parameter {name!r}{where} is not valid Unicode text (a lone surrogate); "
                "notebooks are stored as UTF-8"
            ) from None
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"parameter {name!r}{where} is {value}; use a finite number")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_value(name, v, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"parameter {name!r}{where} has a non-string key {k!r}")
            _check_value(name, k, f"{where} key", depth + 1)
            _check_value(name, v, f"{where}[{k[:40]!r}]", depth + 1)
        return
    raise ConfigError(
        f"parameter {name!r}{where} has type {type(value).__name__}; job parameters must be "
        "None, bool, int, float, str, or lists/dicts of those (they are stored as JSON)"
    )


def check_parameters(
    parameters: dict[str, Any] | None, declared: dict[str, dict[str, Any]], notebook: Path
) -> dict[str, Any]:
    """Validate names and values; unknown names are an error when the notebook declares any."""
    params = dict(parameters or {})
    for name, value in params.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ConfigError(
                f"parameter name {name!r} is not a Python identifier; notebook parameters are "
                "variables, e.g. 'learning_rate'"
            )
        if unicodedata.normalize("NFKC", name) != name:
            # Python normalizes identifiers: the kernel would bind another name than given
            raise ConfigError(
                f"parameter name {name!r} is read by Python as "
                f"{unicodedata.normalize('NFKC', name)!r}; use that spelling"
            )
        _check_value(name, value)
    unknown = sorted(set(params) - set(declared))
    if declared and unknown:

        def describe(name: str, d: dict[str, Any]) -> str:
            kind = d.get("inferred_type_name")
            kind = f"{kind}, " if kind and kind != "None" else ""
            return f"{name} ({kind}default {d.get('default')})"

        listing = ", ".join(describe(n, d) for n, d in declared.items())
        raise ConfigError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for {notebook.name}; "
            f"its parameters cell declares: {listing}"
        )
    return params


def choose_seed(
    params: dict[str, Any], declared: dict[str, dict[str, Any]], seed: int | None
) -> tuple[int, str]:
    """The job's seed and where it came from (parameter > notebook default > chosen)."""
    if (
        "seed" in params
        and isinstance(params["seed"], int)
        and not isinstance(params["seed"], bool)
    ):
        return int(params["seed"]), "parameter"
    if seed is not None:
        return int(seed), "chosen"
    default = declared.get("seed", {}).get("default")
    if default is not None:
        try:
            value = ast.literal_eval(str(default))
        except (ValueError, SyntaxError):
            value = None
        if isinstance(value, int) and not isinstance(value, bool):
            return value, "notebook default"
    return secrets.randbelow(2**31), "chosen"


__all__ = [
    "MAX_PARAM_DEPTH",
    "check_parameters",
    "choose_seed",
    "kernel_missing",
    "notebook_kernel",
    "notebook_parameters",
    "resolve_notebook",
]
