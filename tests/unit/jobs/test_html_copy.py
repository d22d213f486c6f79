"""HTML copies of executed notebooks render plotly figures offline (plotly.js inlined once)."""

from __future__ import annotations

import re

import nbformat
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from lepton_nb.jobs._execute import _render_html
from lepton_nb.jobs._html import embed_plotlyjs


def test_cdn_plotly_becomes_one_inline_copy() -> None:
    fig_html = pio.to_html(
        go.Figure(go.Scatter(y=[1, 3, 2])), include_plotlyjs="cdn", full_html=False
    )
    nb = nbformat.v4.new_notebook()
    for i in range(2):  # two figures: plotly.js must still be inlined only once
        cell = nbformat.v4.new_code_cell(f"fig{i}")
        cell.outputs = [
            nbformat.v4.new_output(
                "display_data", data={"text/html": fig_html, "text/plain": "Figure"}
            )
        ]
        nb.cells.append(cell)
    body = _render_html(nb)
    assert not re.search(r"<script[^>]*src=\"https://cdn.plot.ly", body)
    assert body.count("* plotly.js v") == 1 and body.count("Plotly.newPlot") == 2
    assert body.index("* plotly.js v") < body.index("Plotly.newPlot")  # defined before use


def test_pages_without_plotly_are_untouched() -> None:
    page = "<html><script src='x.js'></script><p>no figures</p></html>"
    assert embed_plotlyjs(page) == page


def _code_nb() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nb.cells.append(cell)
    return nb


def test_keys_only_the_relaxed_schema_allows_still_render() -> None:
    # the strict schema is tried first (cheap); nbconvert's relaxed one is the real judge
    nb = _code_nb()
    nb.cells[0]["extra_key"] = "from some other tool"
    with pytest.raises(nbformat.ValidationError):
        nbformat.validate(nb)
    assert "print" in _render_html(nb)


def test_a_notebook_invalid_for_nbconvert_is_still_refused() -> None:
    nb = _code_nb()
    nb.cells[0]["execution_count"] = "one"  # not an integer under either schema
    with pytest.raises(nbformat.ValidationError):
        _render_html(nb)
