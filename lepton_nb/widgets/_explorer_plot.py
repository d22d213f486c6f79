"""Pareto fronts and the two trade-off scatter plots of the CompressionExplorer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lepton_nb.compress.report import pareto_front

if TYPE_CHECKING:
    import pandas as pd

# (x column, x axis title) of each subplot; y is always accuracy
PANELS = (("bytes", "serialized bytes"), ("latency_ms", "latency (ms)"))


def empty_figure() -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy vs size", "accuracy vs latency"))
    for col, (_, title) in enumerate(PANELS, start=1):
        points = go.Scatter(
            mode="markers+text", name="variants", textposition="top center",
            showlegend=col == 1, marker={"size": 9},
        )  # fmt: skip
        front = go.Scatter(mode="lines", name="Pareto front", showlegend=col == 1,
                           line={"dash": "dot"})  # fmt: skip
        fig.add_trace(points, row=1, col=col)
        fig.add_trace(front, row=1, col=col)
        fig.update_xaxes(title_text=title, type="log", row=1, col=col)
        fig.update_yaxes(title_text="accuracy", row=1, col=col)
    fig.update_layout(height=380, margin={"t": 40, "b": 40, "l": 50, "r": 20})
    return go.FigureWidget(fig)


def update_figure(fig: Any, table: pd.DataFrame) -> None:
    """Redraw points and fronts from the results table (index = variant label)."""
    with fig.batch_update():
        for i, (col, _) in enumerate(PANELS):
            points, line = fig.data[2 * i], fig.data[2 * i + 1]
            points.x = table[col].tolist()
            points.y = table["accuracy"].tolist()
            points.text = [str(label) for label in table.index]
            front = table.loc[pareto_front(table, col)] if len(table) else table
            line.x = front[col].tolist()
            line.y = front["accuracy"].tolist()


__all__ = ["PANELS", "empty_figure", "pareto_front", "update_figure"]
