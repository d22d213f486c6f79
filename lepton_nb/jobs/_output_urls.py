"""Executed notebooks written to an fsspec URL (``s3://bucket/runs/a.ipynb``) instead of a path.

The job runs into a private temporary directory as usual; the notebook and its HTML copy are
then uploaded with the storage layer's atomic writes, so the URL holds either nothing or the
complete notebook.  The URL's prefix is checked before the job starts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lepton_nb._storage import check_writable, location
from lepton_nb.jobs._execute import execute
from lepton_nb.jobs.models import JobRecord
from lepton_nb.jobs.store import JobStore


def check_output_url(
    url: str, storage_options: dict[str, Any] | None, overwrite: bool = False
) -> None:
    from lepton_nb.errors import JobError

    if not url.endswith(".ipynb"):
        raise JobError(f"output {url!r} must name a notebook file ending in .ipynb")
    check_writable(url.rsplit("/", 1)[0], storage_options, what="output")
    if not overwrite and location(url, storage_options).exists():
        raise JobError(
            f"output {url!r} already exists; choose another URL or pass "
            "overwrite=True to replace it"
        )


def execute_to_url(
    rec: JobRecord,
    notebook: Path,
    url: str,
    storage_options: dict[str, Any] | None,
    store: JobStore,
    html: bool = True,
    run: Callable[..., JobRecord] = execute,
) -> JobRecord:
    """``run`` (``execute``, or ``execute_on_profile``) writes into a temporary folder first."""
    with tempfile.TemporaryDirectory(prefix="lepton-job-out-") as tmp:
        local = Path(tmp) / url.rsplit("/", 1)[-1]
        rec = run(rec, notebook, local, store, html=html)
        for attr, suffix in (("output", ".ipynb"), ("html", ".html")):
            produced = getattr(rec, attr)
            if produced is None:
                continue
            target = location(url[: -len(".ipynb")] + suffix, storage_options)
            target.write_bytes(Path(produced).read_bytes())
            setattr(rec, attr, target.url)
    return store.put(rec)


__all__ = ["check_output_url", "execute_to_url"]
