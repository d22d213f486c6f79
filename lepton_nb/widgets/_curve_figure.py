"""Plotly layout, trace styles and the static (kernel-free) output of a LossCurve."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from lepton_nb.widgets._curve_data import CurveData, Mark, TraceInfo

if TYPE_CHECKING:
    import plotly.graph_objects as go

PLOTLY_MIME = "application/vnd.plotly.v1+json"
# (panel, secondary) -> plotly axis ids, matching make_subplots(rows=2, secondary_y=True)
AXES = {
    (1, False): ("x", "y"),
    (1, True): ("x", "y2"),
    (2, False): ("x2", "y3"),
    (2, True): ("x2", "y4"),
}
PALETTE = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692"]


def base_figure(title: str, height: int) -> go.Figure:
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.07,
        row_heights=[0.68, 0.32],
        specs=[[{"secondary_y": True}], [{"secondary_y": True}]],
    )
    fig.update_layout(
        title={"text": title, "x": 0.01},
        height=height,
        hovermode="x unified",
        margin={"l": 60, "r": 60, "t": 50, "b": 40},
        template="plotly_white",
        legend={"orientation": "h", "y": -0.12},
    )
    fig.update_yaxes(title_text="loss", row=1, col=1, secondary_y=False)
    fig.update_yaxes(title_text="accuracy", row=1, col=1, secondary_y=True, showgrid=False)
    fig.update_yaxes(title_text="samples/s", row=2, col=1, secondary_y=False)
    # From zero: plotly pads a constant series by +-1 (1e-3 drawn on -0.98..0.80), and an lr
    # axis that starts at 0 also shows a schedule's shape truthfully.
    fig.update_yaxes(
        title_text="lr",
        row=2,
        col=1,
        secondary_y=True,
        showgrid=False,
        exponentformat="e",
        rangemode="tozero",
    )
    fig.update_xaxes(title_text="step", row=2, col=1)
    return fig


def trace_dict(info: TraceInfo) -> dict[str, Any]:
    """The static part of a trace (style, axes); x/y are filled in on every redraw."""
    xaxis, yaxis = AXES[(info.panel, info.secondary)]
    trace: dict[str, Any] = {
        "type": "scattergl" if info.role in ("rank", "mean", "smoothed") else "scatter",
        "name": info.name,
        "xaxis": xaxis,
        "yaxis": yaxis,
        "x": [],
        "y": [],
        "mode": "lines",
        "meta": {"key": info.key},
        "connectgaps": False,
    }
    if info.role == "rank":
        color = PALETTE[(info.rank or 0) % len(PALETTE)]
        trace.update(line={"width": 1, "color": color}, opacity=0.55, legendgroup="ranks")
    elif info.role == "mean":
        trace.update(line={"width": 1.5, "color": "#222"}, opacity=0.35)
    elif info.role == "smoothed":
        trace.update(line={"width": 3, "color": "#222"})
    elif info.role == "epoch":
        trace.update(mode="lines+markers", marker={"size": 8}, line={"width": 2, "dash": "dot"})
    else:
        trace.update(line={"width": 1.5})
    return trace


def mean_style(smoothing: float) -> dict[str, Any]:
    """The raw mean is the bold line without smoothing and a faint one under the EMA."""
    if smoothing > 0:
        return {"opacity": 0.35, "line": {"width": 1.5, "color": "#222"}}
    return {"opacity": 1.0, "line": {"width": 3, "color": "#222"}}


# kind -> (line colour, width, dash, label y, label anchor): epoch labels sit above the plot,
# restart labels just inside it and world labels under those, so they never collide.
MARK_STYLE: dict[str, tuple[str, float, str, float, str]] = {
    "epoch": ("#bbb", 1, "dot", 1.0, "bottom"),
    "restart": ("#d62728", 1.5, "dash", 1.0, "top"),
    "world": ("#9467bd", 1.5, "dashdot", 0.95, "top"),
}


def mark_shapes(marks: list[Mark]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Vertical lines over both panels for epoch ends (grey), restarts (red) and world
    changes (purple)."""
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for mark in marks:
        color, width, dash, y, anchor = MARK_STYLE.get(mark.kind, MARK_STYLE["epoch"])
        inside = anchor == "top"
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": mark.step,
                "x1": mark.step,
                "y0": 0,
                "y1": 1,
                "layer": "below",
                "line": {"color": color, "width": width, "dash": dash},
            }
        )
        notes.append(
            {
                "x": mark.step,
                "xref": "x",
                "y": y,
                "yref": "paper",
                "text": mark.label,
                "showarrow": False,
                "yanchor": anchor,
                "bgcolor": "rgba(255,255,255,0.8)" if inside else None,
                "font": {"size": 10, "color": color if inside else "#888"},
            }
        )
    return shapes, notes


def static_figure(
    data: CurveData,
    *,
    title: str,
    height: int,
    smoothing: float,
    log_y: bool,
    show_ranks: bool,
    max_points: int | None,
) -> go.Figure:
    """A plain Figure of the whole history (full resolution unless max_points is given)."""
    import plotly.graph_objects as go

    fig = base_figure(title, height)
    for info in data.traces():
        if info.role == "smoothed" and smoothing <= 0:
            continue
        x, y = data.xy(info, smoothing, max_points)
        trace = trace_dict(info)
        trace.update(x=x.tolist(), y=[None if v != v else v for v in y.tolist()])
        if info.role == "mean":
            trace.update(mean_style(smoothing))
        if info.role == "rank" and not show_ranks:
            trace["visible"] = "legendonly"
        trace.pop("type")  # static outputs use SVG: WebGL contexts are scarce in HTML pages
        fig.add_trace(go.Scatter(**trace))
    shapes, notes = mark_shapes(data.marks)
    fig.update_layout(shapes=shapes, annotations=notes)
    fig.update_yaxes(type="log" if log_y else "linear", row=1, col=1, secondary_y=False)
    return fig


def static_bundle(fig: go.Figure, include_plotlyjs: str | bool, summary: str) -> dict[str, Any]:
    """The mime bundle plotly's own notebook renderer writes: JSON for JupyterLab's plotly
    renderer, HTML for nbconvert/nbviewer, text for terminals."""
    import plotly.io as pio

    return {
        PLOTLY_MIME: json.loads(pio.to_json(fig, validate=False)),
        "text/html": pio.to_html(fig, include_plotlyjs=include_plotlyjs, full_html=False),
        "text/plain": summary,
    }


__all__ = [
    "AXES",
    "MARK_STYLE",
    "PALETTE",
    "PLOTLY_MIME",
    "base_figure",
    "mark_shapes",
    "mean_style",
    "static_bundle",
    "static_figure",
    "trace_dict",
]
