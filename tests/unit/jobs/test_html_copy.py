"""HTML copies of executed notebooks render plotly figures offline (plotly.js inlined once)."""

from __future__ import annotations

import re

import nbformat
import plotly.graph_objects as go
import plotly.io as pio

from lepton_nb.jobs._execute import _render_html
from lepton_nb.jobs._html import embed_plotlyjs


def test_cdn_plotly_becomes_one_inline_copy() -> None:
    fig_html = pio.to_html(go.Figure(go.Scatter(y=[1, 3, 2])), include_plotlyjs="cdn",
                           full_html=False)
    nb = nbformat.v4.new_notebook()
    for i in range(2):  # two figures: plotly.js must still be inlined only once
        cell = nbformat.v4.new_code_cell(f"fig{i}")
        cell.outputs = [nbformat.v4.new_output(
            "display_data", data={"text/html": fig_html, "text/plain": "Figure"})]
        nb.cells.append(cell)
    body = _render_html(nb)
    assert not re.search(r"<script[^>]*src=\"https://cdn.plot.ly", body)
    assert body.count("* plotly.js v") == 1 and body.count("Plotly.newPlot") == 2
    assert body.index("* plotly.js v") < body.index("Plotly.newPlot")  # defined before use


def test_pages_without_plotly_are_untouched() -> None:
    page = "<html><script src='x.js'></script><p>no figures</p></html>"
    assert embed_plotlyjs(page) == page
