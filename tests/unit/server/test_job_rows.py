"""How the server presents job records (JobInfo): root-relative paths and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lepton_nb.errors import ConfigError
from lepton_nb.jobs.models import ErrorInfo, JobRecord
from lepton_nb.server.jobs import JobManager
from lepton_nb.server.settings import LeptonSettings, load_settings


def test_info_makes_paths_relative_and_errors_one_line(tmp_path: Path, tmp_home: Path) -> None:
    manager = JobManager(tmp_path)
    rec = JobRecord(
        notebook=str(tmp_path / "nb" / "a.ipynb"),
        notebook_sha256="0" * 64,
        output=str(tmp_path / "lepton-outputs" / "a-1.ipynb"),
        error=ErrorInfo(reason="error", cell_index=2, ename="ValueError", evalue="bad"),
        status="failed",
    )
    row = manager.info(rec)
    assert row.notebook == "nb/a.ipynb" and row.notebook_abs == rec.notebook
    assert row.output_path == "lepton-outputs/a-1.ipynb"
    assert row.error == "error in cell 2: ValueError: bad"
    assert row.error_info is not None and row.error_info["ename"] == "ValueError"
    outside = manager.info(
        JobRecord(notebook="/elsewhere/b.ipynb", notebook_sha256="", output="/elsewhere/o.ipynb")
    )
    assert outside.notebook == "/elsewhere/b.ipynb" and outside.output_path is None
    lost = ErrorInfo(reason="lost", evalue="its process (pid 7 on h) ended without recording")
    assert manager.info(rec.model_copy(update={"error": lost})).error == (
        "lost: its process (pid 7 on h) ended without recording"
    )


def test_settings_are_traitlets_and_checked(tmp_path: Path) -> None:
    from traitlets.config import Config

    c = Config()
    c.LeptonSettings.max_parallel_jobs = 3
    c.LeptonSettings.store_path = str(tmp_path / "s.sqlite")
    s = load_settings(c)
    assert s.max_parallel_jobs == 3 and s.store() == str(tmp_path / "s.sqlite")
    assert LeptonSettings().max_parallel_jobs == 2  # the documented default
    bad = Config()
    bad.LeptonSettings.max_parallel_jobs = 0
    with pytest.raises(ConfigError, match="max_parallel_jobs must be >= 1"):
        load_settings(bad)
    bad = Config()
    bad.LeptonSettings.output_dir = "../outside"
    with pytest.raises(ConfigError, match="outside"):
        JobManager(tmp_path / "root", load_settings(bad))
