"""Parameter checks, seeds and sweep grids (no kernel needed)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from lepton_nb.errors import ConfigError, JobError
from lepton_nb.jobs._params import (
    check_parameters,
    choose_seed,
    notebook_parameters,
    resolve_notebook,
)
from lepton_nb.jobs.sweeper import expand_grid


@pytest.fixture
def nb_path(tmp_path: Path) -> Path:
    nb = new_notebook(
        cells=[
            new_code_cell("lr = 0.01\nepochs = 3\nseed = 42", metadata={"tags": ["parameters"]}),
            new_code_cell("print(lr)"),
        ]
    )
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


def test_missing_and_non_notebook_paths(tmp_path: Path) -> None:
    with pytest.raises(JobError, match="does not exist"):
        resolve_notebook(tmp_path / "nope.ipynb")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(JobError, match=r"\.ipynb"):
        resolve_notebook(tmp_path / "x.txt")


def test_unknown_parameter_lists_the_declared_ones(nb_path: Path) -> None:
    declared = notebook_parameters(nb_path)
    assert list(declared) == ["lr", "epochs", "seed"]
    with pytest.raises(ConfigError) as e:
        check_parameters({"lr": 0.1, "epoch": 2}, declared, nb_path)
    msg = str(e.value)
    assert "'epoch'" in msg and "lr" in msg and "epochs" in msg and "seed" in msg


@pytest.mark.parametrize("name", ["1x", "a-b", "class", "", "with space"])
def test_non_identifier_names_are_refused(nb_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="identifier"):
        check_parameters({name: 1}, {}, nb_path)


def test_values_must_be_json_like(nb_path: Path) -> None:
    ok = {"s": 'q"\n\u00fc', "l": [1, {"a": None}], "f": 1.5, "b": True}
    assert check_parameters(ok, {}, nb_path) == ok
    with pytest.raises(ConfigError, match="type object"):
        check_parameters({"o": object()}, {}, nb_path)
    with pytest.raises(ConfigError, match="finite"):
        check_parameters({"x": float("nan")}, {}, nb_path)


def test_no_parameters_cell_accepts_any_name(tmp_path: Path) -> None:
    path = tmp_path / "plain.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), path)
    assert notebook_parameters(path) == {}
    assert check_parameters({"anything": 1}, {}, path) == {"anything": 1}


def test_seed_precedence(nb_path: Path) -> None:
    declared = notebook_parameters(nb_path)
    assert choose_seed({"seed": 5}, declared, 9) == (5, "parameter")
    assert choose_seed({}, declared, 9) == (9, "chosen")
    assert choose_seed({}, declared, None) == (42, "notebook default")
    seed, source = choose_seed({}, {}, None)
    assert source == "chosen" and 0 <= seed < 2**31


def test_expand_grid() -> None:
    assert expand_grid({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert expand_grid({"a": 3}) == [{"a": 3}]
    assert expand_grid([{"a": 1}, {"b": 2}]) == [{"a": 1}, {"b": 2}]
    assert expand_grid(None) == [{}]
    with pytest.raises(ConfigError):
        expand_grid({"a": []})
    with pytest.raises(ConfigError):
        expand_grid([1, 2])  # type: ignore[list-item]


def test_output_may_not_overwrite_the_notebook(tmp_home: Path, nb_path: Path) -> None:
    from lepton_nb import jobs

    with pytest.raises(JobError, match="is the notebook itself"):
        jobs.run(nb_path, output=nb_path)
    assert jobs.list() == []
