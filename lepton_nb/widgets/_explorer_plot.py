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


def add_search_traces(fig: Any) -> None:
    """Per panel: the accuracy budget line and the chosen point of a search (traces 4-7)."""
    import plotly.graph_objects as go

    if len(fig.data) > 2 * len(PANELS):
        return
    for col in range(1, len(PANELS) + 1):
        budget = go.Scatter(mode="lines", name="accuracy budget", showlegend=col == 1,
                            line={"dash": "dash", "color": "#d62728"})  # fmt: skip
        chosen = go.Scatter(mode="markers", name="chosen", showlegend=col == 1,
                            marker={"symbol": "star", "size": 18, "color": "#ff7f0e"})  # fmt: skip
        fig.add_trace(budget, row=1, col=col)
        fig.add_trace(chosen, row=1, col=col)


def update_search_traces(
    fig: Any, table: pd.DataFrame, threshold: float | None, chosen: str | None
) -> None:
    """Draw the budget line (accuracy ``threshold``) across each panel and star ``chosen``."""
    n = 2 * len(PANELS)
    with fig.batch_update():
        for i, (col, _) in enumerate(PANELS):
            budget, star = fig.data[n + 2 * i], fig.data[n + 2 * i + 1]
            if threshold is not None and len(table):
                budget.x = [table[col].min(), table[col].max()]
                budget.y = [threshold, threshold]
            in_table = chosen is not None and chosen in table.index
            star.x = [table.loc[chosen, col]] if in_table else []
            star.y = [table.loc[chosen, "accuracy"]] if in_table else []
            star.text = [chosen] if in_table else []


__all__ = [
    "PANELS",
    "add_search_traces",
    "empty_figure",
    "pareto_front",
    "update_figure",
    "update_search_traces",
]
