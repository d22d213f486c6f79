"""Issue 11 item 6 in the Python API: parameter values the injector cannot write are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lepton_nb.errors import ConfigError
from lepton_nb.jobs._params import check_parameters


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"k": [value]}
    return value


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"n": 10**5000}, "3600 digits"),
        ({"n": _nested(15)}, "deeper than"),
        ({"text": "\ud800"}, "surrogate"),
        ({"n": {"\udc80": 1}}, "surrogate"),
        ({"µ": 1}, "read by Python as 'μ'"),  # NFKC: the kernel would bind another name
    ],
)
def test_values_papermill_cannot_write_are_refused(params: dict[str, Any], words: str) -> None:
    declared = {name: {"default": "None"} for name in params}
    with pytest.raises(ConfigError, match=words):
        check_parameters(params, declared, Path("nb.ipynb"))


def test_ordinary_values_pass() -> None:
    params = {"n": 10**100, "t": "ü\n\"'", "d": _nested(5), "f": -0.0}
    assert check_parameters(params, {}, Path("nb.ipynb")) == params
