"""record(): JSON conversion, name checks, and reading values back from a notebook."""

from __future__ import annotations

import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from lepton_nb.errors import ConfigError
from lepton_nb.jobs.record import MIME, read_records, record, to_jsonable


def test_outside_a_kernel_record_returns_the_value() -> None:
    assert record("acc", 0.5) == 0.5
    import lepton_nb as ln

    assert ln.record("x", [1]) == [1]


def test_values_become_plain_json() -> None:
    assert to_jsonable(np.float32(0.5)) == 0.5
    assert to_jsonable(np.arange(3)) == [0, 1, 2]
    assert to_jsonable({"a": (1, np.int64(2))}) == {"a": [1, 2]}
    assert to_jsonable(float("inf")) == "inf"
    assert to_jsonable(object).startswith("<class")


def test_bad_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="record name"):
        record("has space", 1)
    with pytest.raises(ConfigError):
        record("", 1)


def test_read_records_takes_the_last_value_of_each_name() -> None:
    def out(name: str, value: object) -> object:
        return new_output(
            "display_data", data={MIME: {"name": name, "value": value}, "text/plain": "x"}
        )

    nb = new_notebook(
        cells=[
            new_code_cell("a", outputs=[out("acc", 0.1), out("loss", 2.0)]),
            new_code_cell("b", outputs=[new_output("stream", text="hi"), out("acc", 0.9)]),
        ]
    )
    assert read_records(nb) == {"acc": 0.9, "loss": 2.0}
