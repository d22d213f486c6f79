"""Builds small real notebooks for the integration tests (jobs, CLI)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

MakeNB = Callable[..., Path]


@pytest.fixture
def make_nb(tmp_path: Path) -> MakeNB:
    def make(name: str, *cells: str, params: str | None = None, where: Path | None = None) -> Path:
        body = [new_code_cell(c) for c in cells]
        if params is not None:
            body.insert(0, new_code_cell(params, metadata={"tags": ["parameters"]}))
        nb = new_notebook(cells=body)
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        path = (where or tmp_path) / name
        nbformat.write(nb, path)
        return path

    return make
