"""``ln.record(name, value)``: a value the job record keeps.

How a recorded value reaches the record: ``record`` emits a display output with the custom
MIME type :data:`MIME` (plus ``text/plain`` for people). papermill saves every output in the
executed notebook, and the job runner reads those outputs back from it. This needs no shared
file system, database or environment between the kernel and the process that runs the job, so it
works the same for ``jobs.run`` in a notebook, the CLI, and sweep jobs on remote Dask workers; and
values recorded before a failing cell are kept. Outside a job the output is simply shown.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from lepton_nb.errors import ConfigError

MIME = "application/vnd.lepton.record+json"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")


def to_jsonable(value: Any) -> Any:
    """Plain JSON values; numpy/torch scalars and small arrays become Python numbers/lists."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    for attr in ("item", "tolist"):  # numpy / torch scalars and arrays
        fn = getattr(value, attr, None)
        if callable(fn):
            try:
                return to_jsonable(fn())
            except (ValueError, RuntimeError, TypeError):
                continue
    return str(value)


def record(name: str, value: Any) -> Any:
    """Record ``value`` under ``name`` in the current job's record; returns ``value``.

    Inside a job (``jobs.run``, ``jobs.sweep``, ``lepton-nb run``) the value lands in the job
    record's ``records``; elsewhere it is just displayed. Values must be JSON-like (numbers,
    strings, lists, dicts; numpy/torch scalars are converted).
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"record name {name!r} is not valid; use letters, digits, '_', '.', '-' or '/', "
            "starting with a letter or '_' (e.g. 'test_accuracy')"
        )
    payload = {"name": name, "value": to_jsonable(value)}
    json.dumps(payload)  # fail here, not when the runner parses the notebook
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return value
    if get_ipython() is not None:
        display({MIME: payload, "text/plain": f"{name} = {payload['value']!r}"}, raw=True)
    return value


def read_records(nb: Any) -> dict[str, Any]:
    """The values recorded in an executed notebook (the last value of a name wins)."""
    out: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            data = output.get("data") or {}
            payload = data.get(MIME)
            if isinstance(payload, str):
                payload = json.loads(payload)
            if isinstance(payload, dict) and "name" in payload:
                out[str(payload["name"])] = payload.get("value")
    return out


__all__ = [
    "MIME",
    "read_records",
    "record",
    "to_jsonable",
]
