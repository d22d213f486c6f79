"""LossCurve: live training curves in a notebook that also survive saving.

The live view is a plotly FigureWidget redrawn at most every ``redraw_interval`` seconds, in one
``batch_update`` that sends only the traces whose data changed.  When a run ends (and after a
cell in which a curve was fed while no frontend had a view of it, as under papermill) the
curve's output is replaced in place, via its display id, by a static plotly figure that needs
no kernel: the live widget is kept next to it only if a frontend is known to show it.
"""

from __future__ import annotations

import threading
import time
from copy import deepcopy
from pathlib import Path
from typing import Any

import pandas as pd

from lepton_nb.errors import ConfigError
from lepton_nb.train.callbacks import Callback, Event
from lepton_nb.widgets._curve_data import CurveData
from lepton_nb.widgets._curve_figure import base_figure, static_bundle, static_figure
from lepton_nb.widgets._curve_view import CurveView

_BASE_COLUMNS = ["kind", "rank", "step", "epoch", "time"]


def _shell() -> Any:
    """The running IPython kernel shell, or None (scripts, terminal IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the notebook stack
        return None
    shell = get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


class LossCurve(Callback):
    """Live loss curves: ``display(curve); fit(..., callbacks=[curve])`` or, for any loop,
    ``curve.update(step=..., loss=...)`` and ``curve.close()`` at the end.

    ``smoothing`` is the EMA weight of the bold mean and the rank lines (0 = raw);
    ``max_points`` bounds the points drawn per trace live (the history keeps everything, and
    the saved figure is full resolution unless ``static_max_points`` is set);
    ``include_plotlyjs`` goes to the saved figure's HTML ("cdn", or True to embed plotly.js
    for offline HTML); ``cluster`` adds a live ClusterWidget under the curves.
    """

    def __init__(
        self,
        *,
        smoothing: float = 0.6,
        log_y: bool = False,
        show_ranks: bool = True,
        redraw_interval: float = 0.2,
        max_points: int = 2000,
        static_max_points: int | None = None,
        title: str = "Training",
        height: int = 520,
        include_plotlyjs: str | bool = "cdn",
        cluster: Any = None,
    ) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ConfigError(f"smoothing={smoothing!r} must be in [0, 1): 0 is raw, 0.9 heavy")
        if redraw_interval < 0:
            raise ConfigError(f"redraw_interval={redraw_interval!r} must be >= 0 seconds")
        if max_points < 10 or (static_max_points is not None and static_max_points < 10):
            raise ConfigError("max_points and static_max_points must be at least 10")
        self.redraw_interval = redraw_interval
        self.max_points = max_points
        self.static_max_points = static_max_points
        self.title = title
        self.height = height
        self.include_plotlyjs = include_plotlyjs
        self.redraw_count = 0
        self.finalized = False
        self._data = CurveData()
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._last_draw = 0.0
        self._draw_seconds = 0.0
        self._static_version = -1
        self._handles: list[Any] = []
        self._hooked = False
        self._view = CurveView(
            base_figure(title, height), smoothing, log_y, show_ranks, on_change=self._draw_now
        )
        self.cluster_widget: Any = None
        self._strategy = ""
        self._title_world: Any = None
        if cluster is not None:  # the workers (and GPU memory) next to the curves they make
            from lepton_nb.widgets.cluster import ClusterWidget

            self.cluster_widget = ClusterWidget(cluster)
            self._view.box.children = (*self._view.box.children, self.cluster_widget)

    # ---- fit callback -------------------------------------------------------------------
    def on_train_start(self, info: dict[str, Any]) -> None:
        with self._lock:
            if self._data.n_rows:  # a curve shows one run; a second fit starts it afresh
                self._data = CurveData()
                self._static_version = -1
                self._view.clear()
            self._strategy = str(info.get("strategy", ""))
            self._set_title(info.get("world_size"))
            self.finalized = False
            self._hook()
            self._draw()

    def on_events(self, events: list[Event]) -> None:
        with self._lock:
            self._data.ingest(events)
            world = self._data.world_size
            if world is not None and world != self._title_world:  # an elastic run resized
                self._set_title(world)
            self._request_draw()

    def _set_title(self, world: Any) -> None:
        self._title_world = world
        parts = [self.title, self._strategy, "" if world is None else str(world)]
        self._view.set_title(" · ".join(p for p in parts if p))

    def on_train_end(self, info: dict[str, Any]) -> None:
        if info.get("status") == "failed":
            self._view.set_title(f"{self._view.title} (failed)")
        self.finalize()

    # ---- standalone ---------------------------------------------------------------------
    def update(
        self,
        step: int,
        loss: float | None = None,
        *,
        rank: int = 0,
        epoch: int | None = None,
        kind: str = "step",
        **metrics: Any,
    ) -> None:
        """Record one point from any loop; unknown metric names become new traces."""
        event: Event = {
            "kind": kind,
            "rank": rank,
            "step": step,
            "epoch": epoch,
            "time": time.time(),
            **metrics,
        }
        if loss is not None:
            event["loss"] = loss
        self._hook()
        self.on_events([event])

    def finalize(self, keep_widget: bool | None = None) -> dict[str, Any]:
        """Draw everything and write the static figure output (in place of this curve's
        displays, or as a new output if it was never displayed); returns that mime bundle.

        ``keep_widget`` keeps the live widget in the output too; by default only when a
        frontend currently shows it, since a saved widget without its kernel is an error box.
        """
        with self._lock:
            self._cancel_timer()
            self._draw(final=True)
            bundle = static_bundle(self.figure(), self.include_plotlyjs, self._summary())
            self._static_version = self._data.version
            self.finalized = True
        keep = self.frontend_attached if keep_widget is None else keep_widget
        if _shell() is None:
            return bundle
        from IPython.display import display

        out = {**self._view.box._repr_mimebundle_(), **bundle} if keep else bundle
        if self._handles:
            for handle in self._handles:
                handle.update(out, raw=True)
        else:
            handle = display(out, raw=True, display_id=True)
            if handle is not None:
                self._handles.append(handle)
        return bundle

    close = finalize

    # ---- results ------------------------------------------------------------------------
    @property
    def history(self) -> pd.DataFrame:
        """Every event received (all ranks, all attempts), one row each, in arrival order."""
        with self._lock:
            frame = pd.DataFrame({k: list(v) for k, v in self._data.columns.items()})
        if frame.empty:
            return pd.DataFrame(columns=_BASE_COLUMNS)
        rest = [c for c in frame.columns if c not in _BASE_COLUMNS]
        return frame[_BASE_COLUMNS + rest]

    @property
    def stats(self) -> dict[str, Any]:
        return {
            "events": self._data.n_rows,
            "redraws": self.redraw_count,
            "bad_values": dict(self._data.bad_values),
            "restarts": self._data.restarts,
            "world_changes": self._data.world_changes,
            "world_size": self._data.world_size,
            "ranks": self._data.ranks,
            "last_step": self._data.last_step,
        }

    @property
    def frontend_attached(self) -> bool:
        """Whether a frontend has reported a live view of the figure (ipywidgets view count);
        papermill/nbclient never do, and a kernel busy in a cell hears of views only after."""
        return bool(self._view.fig._view_count)

    def figure(self) -> Any:
        """The whole history as a plain plotly Figure (full resolution by default)."""
        with self._lock:  # the redraw timer thread shares the smoothing caches
            return static_figure(
                self._data,
                title=self._view.title,
                height=self.height,
                smoothing=self._view.smoothing,
                log_y=self._view.log_y,
                show_ranks=self._view.show_ranks,
                max_points=self.static_max_points,
            )

    def to_html(self, path: str | Path | None = None) -> str:
        """A standalone HTML page of the curves; written to ``path`` when given."""
        html = str(self.figure().to_html(include_plotlyjs=self.include_plotlyjs, full_html=True))
        if path is not None:
            Path(path).write_text(html, encoding="utf-8")
        return html

    def to_csv(self, path: str | Path | None = None) -> str:
        """The history as CSV text; written to ``path`` when given."""
        text = str(self.history.to_csv(index=False))
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    # ---- display ------------------------------------------------------------------------
    @property
    def widget(self) -> Any:
        return self._view.box

    def _ipython_display_(self) -> None:
        from IPython.display import display

        fig = self._view.fig
        # A nested FigureWidget syncs its full state only at construction; refresh it so a
        # view created now starts from the current curves (what FigureWidget's own repr does).
        fig._widget_layout = deepcopy(fig._layout_obj._props)
        fig._widget_data = deepcopy(fig._data)
        handle = display(self._view.box, display_id=True)
        if handle is not None:
            self._handles.append(handle)
        self._hook()

    def _hook(self) -> None:
        shell = _shell()
        if shell is not None and not self._hooked:
            shell.events.register("post_run_cell", self._after_cell)
            self._hooked = True

    def _after_cell(self, *_: Any) -> None:
        # Nobody will see the live widget (papermill, nbclient, a closed tab): leave the static
        # curves of whatever this cell fed in, as if the loop had called close().
        # A cell that fed nothing (typically the one that only displayed the curve, before its
        # view is reported) must not finalize: the next cell's fit would then draw to nothing.
        fed = self._data.version > 0 and self._data.version != self._static_version
        if fed and not self.frontend_attached:
            self.finalize(keep_widget=False)

    # ---- drawing ------------------------------------------------------------------------
    def _request_draw(self) -> None:
        # Redraws never take more than ~5% of the kernel: a slow one (huge history, busy
        # machine) stretches the gap to the next.  redraw_interval=0 means every event.
        gap = max(self.redraw_interval, 20 * self._draw_seconds) if self.redraw_interval else 0
        wait = gap - (time.monotonic() - self._last_draw)
        if wait <= 0:
            self._cancel_timer()
            self._draw()
        elif self._timer is None:  # trailing redraw so the last burst is never left undrawn
            self._timer = threading.Timer(wait, self._timer_fired)
            self._timer.daemon = True
            self._timer.start()

    def _timer_fired(self) -> None:
        with self._lock:
            self._timer = None
            self._draw()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _draw_now(self) -> None:
        with self._lock:
            self._draw()

    def _draw(self, final: bool = False) -> None:
        start = time.monotonic()
        if self._view.draw(self._data, self.max_points, self._status(), final):
            self.redraw_count += 1
        self._last_draw = time.monotonic()
        self._draw_seconds = self._last_draw - start

    def _status(self) -> str:
        d = self._data
        # the current world's ranks when events say so (ranks that left are not counted)
        n = d.world_size if d.world_size is not None else len(d.ranks)
        parts = [
            f"step {d.last_step}" if d.last_step is not None else "waiting for events",
            f"{n} rank{'s' if n != 1 else ''}",
        ]
        if d.bad_values:
            parts.append(f"{sum(d.bad_values.values())} bad values")
        if d.restarts:
            parts.append(f"{d.restarts} restart{'s' if d.restarts != 1 else ''}")
        if d.world_changes:
            w = d.world_changes
            parts.append(f"{w} world change{'s' if w != 1 else ''}")
        return " · ".join(parts)

    def _summary(self) -> str:
        return f"LossCurve({self._status()}, {self._data.n_rows} events)"

    def __repr__(self) -> str:
        return self._summary()


__all__ = ["LossCurve"]
