"""The runner's limit lives in the store (schema 2), so a runner that is up adopts a change;
a profile that does not exist is refused before a job runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import nbformat
import pytest

from lepton_nb import jobs
from lepton_nb.errors import ConfigError
from lepton_nb.jobs._dispatcher import Dispatcher, max_parallel, set_max_parallel
from lepton_nb.jobs.store import JobStore


def test_the_limit_is_stored_and_read_back(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    assert max_parallel(store, 3) == 3  # nothing stored: the runner's own
    set_max_parallel(store, 1)
    assert max_parallel(JobStore(store.path), 3) == 1  # another process sees it
    for bad in (0, -2, True, 1.5):
        with pytest.raises(ConfigError, match="max_parallel_jobs must be an integer >= 1"):
            set_max_parallel(store, bad)  # type: ignore[arg-type]
    store.set_setting("max_parallel_jobs", "zero")  # written by hand: ignored, not a crash
    assert max_parallel(store, 2) == 2


def test_a_dispatcher_adopts_a_changed_limit_at_its_next_tick(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    d = Dispatcher(store, max_parallel=2)
    assert not d.step() and d.max_parallel == 2
    set_max_parallel(store, 4)
    d.step()
    assert d.max_parallel == 4


def test_a_schema_1_store_gains_the_settings_table(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    JobStore(path)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE settings")
        db.execute("PRAGMA user_version=1")
    set_max_parallel(JobStore(path), 5)
    assert max_parallel(JobStore(path), 1) == 5
    assert len(list(tmp_path.glob("jobs.sqlite.schema1-*"))) == 1  # backed up first


def test_an_unknown_profile_is_refused_before_anything_runs(tmp_path: Path) -> None:
    nb = tmp_path / "nb.ipynb"
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "P", "language": "python"}
    nbformat.write(book, nb)
    store = JobStore(tmp_path / "jobs.sqlite")
    with pytest.raises(ConfigError, match="unknown cluster profile 'nowhere'"):
        jobs.run(nb, profile="nowhere", store=store)
    assert store.list() == []
