"""The tutorials index: checks, parameter selection and HTML rendering (no kernels run)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal

import nbformat
import pytest

from lepton_nb.errors import ConfigError
from lepton_nb.jobs.models import ErrorInfo, JobRecord
from lepton_nb.tutorials import (
    TUTORIALS,
    Check,
    TutorialResult,
    notebooks_dir,
    parameters_for,
    render_index,
    select,
)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.rows = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"] or "")
        if tag == "tr":
            self.rows += 1


def _record(
    status: Literal["succeeded", "failed"], records: dict[str, object], tmp: Path
) -> JobRecord:
    out = tmp / "00_first_distributed_training.ipynb"
    return JobRecord(
        id="20260101-000000-abcdef",
        notebook=str(out),
        notebook_sha256="0" * 64,
        status=status,
        duration_s=12.34,
        records=records,
        output=str(out),
        html=str(out.with_suffix(".html")),
        parameters={"epochs": 1},
        error=None
        if status == "succeeded"
        else ErrorInfo(cell_index=3, ename="ValueError", evalue="<bad & worse>"),
    )


def test_checks_compare_with_numbers_and_other_records() -> None:
    assert Check("acc", ">=", 0.9).passes({"acc": 0.93})
    assert not Check("acc", ">=", 0.9).passes({"acc": 0.89})
    assert not Check("acc", ">=", 0.9).passes({})  # a missing record fails, never passes
    assert Check("a", ">=", "b").passes({"a": 0.95, "b": 0.94})
    assert not Check("a", ">=", "b").passes({"a": 0.93, "b": 0.94})
    assert Check("ok", "==", True).passes({"ok": True})
    with pytest.raises(ConfigError, match="operator"):
        Check("a", "=>", 1)


def test_every_tutorial_notebook_exists_and_declares_its_quick_parameters() -> None:
    from lepton_nb.jobs._params import notebook_parameters

    folder = notebooks_dir()
    for name in TUTORIALS.names():
        tut = TUTORIALS.get(name)
        path = folder / tut.filename
        assert path.is_file(), path
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path
        declared = notebook_parameters(path)
        assert set(tut.quick) <= set(declared), (name, set(tut.quick) - set(declared))
        assert tut.checks, name


def test_select_by_name_file_or_stem_and_unknown_names_list_the_known() -> None:
    assert [t.name for t in select(["05", "00_first_distributed_training.ipynb"])] == ["05", "00"]
    assert [t.name for t in select(None)] == TUTORIALS.names()
    with pytest.raises(ConfigError, match="'00'"):
        select(["99"])


def test_parameters_shared_only_where_declared_and_per_tutorial_wins() -> None:
    tut = TUTORIALS.get("05")
    got = parameters_for(
        tut, ["epochs", "seed"], {"seed": 3, "lr": 1.0, "05": {"epochs": 2}}, quick=True
    )
    assert got == {"seed": 3, "epochs": 2}  # lr is not declared: not passed
    assert parameters_for(tut, ["epochs"], None, quick=True) == tut.quick
    with pytest.raises(ConfigError, match="dict"):
        parameters_for(tut, [], {"05": 3}, quick=False)


def test_index_rows_links_status_and_escaping(tmp_path: Path) -> None:
    t00, t05 = TUTORIALS.get("00"), TUTORIALS.get("05")
    good = TutorialResult.from_job(t00, _record("succeeded", {"test_accuracy": 0.943}, tmp_path))
    low = TutorialResult.from_job(t00, _record("succeeded", {"test_accuracy": 0.5}, tmp_path))
    bad = TutorialResult.from_job(t05, _record("failed", {}, tmp_path))
    missing = TutorialResult("01", "Quickstart", "s", "missing", error="no such file")
    assert good.ok and not low.ok and not bad.ok and not missing.ok
    page = render_index([good, low, bad, missing], tmp_path, 0.0)
    parser = _Links()
    parser.feed(page)
    assert parser.rows == 5  # header + one per tutorial
    assert "00_first_distributed_training.ipynb" in parser.hrefs
    assert "00_first_distributed_training.html" in parser.hrefs  # relative: inside the folder
    assert "1 of 4 passed" in page
    assert "checks failed" in page and "test_accuracy &gt;= 0.9" in page
    assert "&lt;bad &amp; worse&gt;" in page and "<bad & worse>" not in page
    assert "12.3 s" in page and "0.943" in page
    elsewhere = render_index([good], tmp_path / "other", 0.0)
    assert "file://" in elsewhere  # outside the index folder: absolute links
    assert json.loads(json.dumps(good.to_dict()))["ok"] is True
