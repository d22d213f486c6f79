"""Issue 11 items 2-3: a job's output never replaces a user's file; bad outputs fail at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from lepton_nb.errors import ConfigError, JobError
from lepton_nb.jobs._output_paths import (
    BadOutputError,
    OutputExistsError,
    check_name,
    check_output,
    place,
)


@pytest.fixture
def nb(tmp_path: Path) -> Path:
    p = tmp_path / "nb.ipynb"
    p.write_text("{}")
    return p


def test_an_existing_output_or_html_neighbour_is_refused_unless_overwrite(
    nb: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.ipynb"
    other.write_text("precious")
    with pytest.raises(OutputExistsError, match=r"already exists.*overwrite"):
        check_output(nb, other)
    assert check_output(nb, other, overwrite=True) == other
    fresh = tmp_path / "fresh.ipynb"
    (tmp_path / "fresh.html").write_text("precious html")
    with pytest.raises(OutputExistsError, match=r"fresh\.html"):
        check_output(nb, fresh)
    assert check_output(nb, fresh, html=False) == fresh  # no HTML copy: the neighbour is safe
    assert other.read_text() == "precious" and (tmp_path / "fresh.html").exists()


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("out.html", r"must end in \.ipynb"),
        ("out", r"must end in \.ipynb"),
        ("nb.ipynb", "is the notebook itself"),
        ("folder.ipynb", "is a folder"),
        ("afile/x.ipynb", "which is a file"),
        ("x" * 300 + ".ipynb", "more than 255 bytes"),
        ("a\x00b.ipynb", "NUL"),
    ],
)
def test_bad_outputs_are_config_errors_that_say_why(
    nb: Path, tmp_path: Path, name: str, match: str
) -> None:
    (tmp_path / "folder.ipynb").mkdir()
    (tmp_path / "afile").write_text("")
    with pytest.raises(BadOutputError, match=match) as info:
        check_output(nb, tmp_path / name)
    # both: a 400 at the REST edge, and what jobs.run callers already catch
    assert isinstance(info.value, ConfigError) and isinstance(info.value, JobError)


def test_a_4096_character_path_is_refused_without_an_os_error() -> None:
    with pytest.raises(ConfigError, match="longer than 4096"):
        check_name("a/" * 2100, "path")


def test_place_never_replaces_a_file_that_appeared(tmp_path: Path) -> None:
    src, dest = tmp_path / ".partial", tmp_path / "out.ipynb"
    src.write_text("new")
    dest.write_text("appeared meanwhile")
    assert place(src, dest, overwrite=False) is False
    assert dest.read_text() == "appeared meanwhile" and src.read_text() == "new"
    assert place(src, dest, overwrite=True) is True
    assert dest.read_text() == "new" and not src.exists()
    src.write_text("again")
    dest2 = tmp_path / "out2.ipynb"
    assert place(src, dest2, overwrite=False) and dest2.read_text() == "again"
    assert not src.exists()


def _real_nb(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "P", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_jobs_run_and_the_cli_refuse_before_running(
    tmp_path: Path, tmp_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lepton_nb import jobs
    from lepton_nb.cli import main

    nb = _real_nb(tmp_path / "nb.ipynb")
    other = tmp_path / "other.ipynb"
    other.write_text("precious")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        jobs.run(nb, output=other)
    assert main(["run", str(nb), "-o", str(other)]) == 1
    err = capsys.readouterr().err
    assert "--overwrite" in err and "Traceback" not in err
    assert main(["run", str(nb), "-o", str(tmp_path / "x.html")]) == 1
    assert ".ipynb" in capsys.readouterr().err
    assert other.read_text() == "precious" and jobs.list() == []  # nothing ran, nothing stored
    args = (
        __import__("lepton_nb.cli", fromlist=["build_parser"])
        .build_parser()
        .parse_args(["run", str(nb), "-o", str(other), "--overwrite"])
    )
    assert args.overwrite is True
