"""The live half of LossCurve: a plotly FigureWidget plus its ipywidgets controls."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lepton_nb.widgets._curve_data import CurveData, TraceInfo
from lepton_nb.widgets._curve_figure import mark_shapes, mean_style, trace_dict


class CurveView:
    def __init__(
        self,
        figure: Any,
        smoothing: float,
        log_y: bool,
        show_ranks: bool,
        on_change: Callable[[], None],
    ) -> None:
        import ipywidgets as w
        import plotly.graph_objects as go

        self.fig = go.FigureWidget(figure)
        self.title = str(figure.layout.title.text)
        self._slider = w.FloatSlider(
            value=smoothing,
            min=0.0,
            max=0.99,
            step=0.01,
            description="smoothing",
            continuous_update=False,
        )
        self._log = w.ToggleButton(value=log_y, description="log y", icon="line-chart")
        self._ranks = w.ToggleButton(value=show_ranks, description="ranks", icon="users")
        self._status = w.HTML(value="waiting for events")
        self.box = w.VBox([w.HBox([self._slider, self._log, self._ranks, self._status]), self.fig])
        self._index: dict[str, int] = {}
        self._drawn: dict[str, tuple[int, float]] = {}
        self._visible: dict[str, bool] = {}
        self._marks_drawn = -1
        self._status_at = 0.0
        self._layout_drawn: tuple[bool, str, float] | None = None
        self._on_change = on_change
        for control in (self._slider, self._log, self._ranks):
            control.observe(self._changed, names="value")

    def _changed(self, _: Any) -> None:
        self._on_change()

    @property
    def smoothing(self) -> float:
        return float(self._slider.value)

    @property
    def log_y(self) -> bool:
        return bool(self._log.value)

    @property
    def show_ranks(self) -> bool:
        return bool(self._ranks.value)

    def set_title(self, title: str) -> None:
        self.title = title

    def clear(self) -> None:
        with self.fig.batch_update():
            for trace in self.fig.data:
                trace.x, trace.y = [], []
        self._drawn.clear()
        self._marks_drawn = -1

    def draw(self, data: CurveData, max_points: int, status: str, final: bool = False) -> bool:
        """Send what changed since the last draw in one batch; False when nothing had."""
        infos = data.traces()
        new = [info for info in infos if info.key not in self._index]
        if new:
            start = len(self.fig.data)
            self.fig.add_traces([self._new_trace(info) for info in new])
            self._index.update({info.key: start + k for k, info in enumerate(new)})
        smoothing = self.smoothing
        changed = bool(new)
        restyle: dict[int, tuple[Any, Any]] = {}
        with self.fig.batch_update():
            for info in infos:
                changed |= self._draw_trace(data, info, smoothing, max_points, restyle)
        if restyle:
            # One unvalidated restyle for all new arrays: plotly's per-property validators
            # cost more than the rest of a redraw, and these arrays are ours, already clean.
            order = sorted(restyle)
            self.fig.plotly_restyle(
                {"x": [restyle[i][0] for i in order], "y": [restyle[i][1] for i in order]},
                trace_indexes=order,
            )
            changed = True
        with self.fig.batch_update():
            if data.marks_version != self._marks_drawn:
                shapes, notes = mark_shapes(data.marks)
                self.fig.layout.shapes, self.fig.layout.annotations = shapes, notes
                self._marks_drawn = data.marks_version
                changed = True
            layout = (self.log_y, self.title, smoothing)
            if layout != self._layout_drawn:
                self.fig.layout.title.text = self.title
                self.fig.layout.yaxis.type = "log" if self.log_y else "linear"
                if "mean:loss" in self._index:
                    self.fig.data[self._index["mean:loss"]].update(mean_style(smoothing))
                self._layout_drawn = layout
                changed = True
        # The status line is its own widget message: once a second is plenty for a step counter.
        now = time.monotonic()
        if self._status.value != status and (now - self._status_at >= 1.0 or final):
            self._status.value = status
            self._status_at = now
        return changed

    def _new_trace(self, info: TraceInfo) -> dict[str, Any]:
        trace = trace_dict(info)
        if info.role == "mean":
            trace.update(mean_style(self.smoothing))
        return trace

    def _draw_trace(
        self,
        data: CurveData,
        info: TraceInfo,
        smoothing: float,
        max_points: int,
        restyle: dict[int, tuple[Any, Any]],
    ) -> bool:
        visible = not (
            (info.role == "smoothed" and smoothing <= 0)
            or (info.role == "rank" and not self.show_ranks)
        )
        changed = False
        if self._visible.get(info.key) != visible:
            self.fig.data[self._index[info.key]].visible = visible
            self._visible[info.key] = visible
            changed = True
        if not visible:
            return changed  # hidden traces catch up when shown again
        smooth_key = smoothing if info.role in ("rank", "smoothed") else 0.0
        stamp = (data.series_version(info), smooth_key)
        if self._drawn.get(info.key) != stamp:
            restyle[self._index[info.key]] = data.xy(info, smoothing, max_points)
            self._drawn[info.key] = stamp
        return changed


__all__ = ["CurveView"]
