"""Reproducible notebook jobs: papermill runs with provenance, a SQLite store, sweeps on Dask.

``jobs.list`` shadows the builtin inside this namespace on purpose (the public API reads
``jobs.list()``); the implementation is :func:`list_jobs`. Names resolve lazily so that
importing this package (as every job kernel does to seed itself) stays cheap. The modules are
``runner`` and ``sweeper`` rather than ``run``/``sweep`` so that importing them can never replace
the functions ``jobs.run``/``jobs.sweep`` with modules of the same name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lepton_nb._lazy import lazy_attributes

_LAZY: dict[str, tuple[str, str]] = {
    "run": ("lepton_nb.jobs.runner", "run"),
    "get": ("lepton_nb.jobs.runner", "get"),
    "list": ("lepton_nb.jobs.runner", "list_jobs"),
    "list_jobs": ("lepton_nb.jobs.runner", "list_jobs"),
    "rerun": ("lepton_nb.jobs.runner", "rerun"),
    "cancel": ("lepton_nb.jobs.runner", "cancel"),
    "compare": ("lepton_nb.jobs.runner", "compare"),
    "sweep": ("lepton_nb.jobs.sweeper", "sweep"),
    "expand_grid": ("lepton_nb.jobs.sweeper", "expand_grid"),
    "JobRecord": ("lepton_nb.jobs.models", "JobRecord"),
    "ErrorInfo": ("lepton_nb.jobs.models", "ErrorInfo"),
    "GitInfo": ("lepton_nb.jobs.models", "GitInfo"),
    "JobStore": ("lepton_nb.jobs.store", "JobStore"),
    "default_store_path": ("lepton_nb.jobs.store", "default_store_path"),
    "StoreDamagedError": ("lepton_nb.jobs.store", "StoreDamagedError"),
    "BadOutputError": ("lepton_nb.jobs._output_paths", "BadOutputError"),
    "OutputExistsError": ("lepton_nb.jobs._output_paths", "OutputExistsError"),
}

__all__ = [
    "BadOutputError",
    "ErrorInfo",
    "GitInfo",
    "JobRecord",
    "JobStore",
    "OutputExistsError",
    "StoreDamagedError",
    "cancel",
    "compare",
    "default_store_path",
    "expand_grid",
    "get",
    "list",
    "list_jobs",
    "rerun",
    "run",
    "sweep",
]

if TYPE_CHECKING:  # pragma: no cover
    from lepton_nb.jobs._output_paths import BadOutputError, OutputExistsError
    from lepton_nb.jobs.models import ErrorInfo, GitInfo, JobRecord
    from lepton_nb.jobs.runner import cancel, compare, get, list_jobs, rerun, run
    from lepton_nb.jobs.runner import list_jobs as list
    from lepton_nb.jobs.store import JobStore, StoreDamagedError, default_store_path
    from lepton_nb.jobs.sweeper import expand_grid, sweep


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
