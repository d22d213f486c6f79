"""A ``compress.search`` drawn live in the CompressionExplorer: each candidate appears as it is
measured (its accuracy updated when the full eval set confirms it), with the accuracy budget
line, the Pareto front and, at the end, the chosen point; clicking a point shows its recipe."""

from __future__ import annotations

import html
import json
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lepton_nb.compress.search import SearchResult
    from lepton_nb.widgets.explorer import CompressionExplorer


def search_rows_to_explorer(row: dict[str, Any]) -> dict[str, Any]:
    """A search row in the explorer's shape (method, strength, params, bytes, ...)."""
    keep = ("params", "bytes", "latency_ms", "accuracy", "evaluated_on", "drop")
    out = {k: row.get(k) for k in keep}
    out.update(label=row["recipe"], method=row["family"], strength=None)
    return out


class LiveSearch:
    """Feeds one search's rows into ``ex`` and redraws; runs in the explorer's worker thread."""

    def __init__(self, ex: CompressionExplorer, max_drop: float, objective: str,
                 options: dict[str, Any]) -> None:  # fmt: skip
        self.ex, self.max_drop, self.objective, self.options = ex, max_drop, objective, options
        self.threshold: float | None = None
        self.chosen: str | None = None

    def on_result(self, row: dict[str, Any]) -> None:
        ex = self.ex
        if "error" in row:
            ex.errors[row["recipe"]] = row["error"]
            return
        if row["recipe"] == "baseline":
            self.threshold = row["accuracy"] - self.max_drop / 100
        with ex._lock:
            ex._rows[row["recipe"]] = search_rows_to_explorer(row)
            ex.recipes[row["recipe"]] = row["recipe_dict"]
        self.redraw()
        done = sum(1 for k in ex._rows if k != "baseline")
        ex._say(f"searching... {done} candidate(s) measured")

    def redraw(self) -> None:
        from lepton_nb.widgets._explorer_plot import update_search_traces

        self.ex._redraw()
        update_search_traces(self.ex.figure, self.ex.results, self.threshold, self.chosen)

    def run(self) -> SearchResult | None:
        from lepton_nb.compress.search import search
        from lepton_nb.errors import LeptonError

        ex, ctx = self.ex, self.ex.context
        try:
            result = search(
                ex.model, train_data=ctx.train_data, eval_data=ex.eval_data,
                calibration_data=ctx.calibration_data, max_drop=self.max_drop,
                objective=self.objective, cluster=ex.cluster, example_input=ctx.example_input,
                on_result=self.on_result, **self.options,
            )  # fmt: skip
        except LeptonError as e:  # the user's mistake: show it, keep the widget alive
            ex._say(str(e), error=True)
            return None
        self.chosen = result.recipe.label
        with ex._lock:
            ex.models[self.chosen] = result.best
        self.redraw()
        ex.choice.value = self.chosen
        ex.search_result = result
        ex._say(result.report().splitlines()[0], error=not result.met_budget)
        return result


def start_search(ex: CompressionExplorer, max_drop: float, objective: str, wait: bool,
                 options: dict[str, Any]) -> SearchResult | None:  # fmt: skip
    """Run the search in the explorer's worker thread (joined when ``wait``)."""
    from lepton_nb.widgets._explorer_plot import add_search_traces

    add_search_traces(ex.figure)
    live = LiveSearch(ex, max_drop, objective, options)
    out: list[SearchResult | None] = [None]

    def work() -> None:
        ex.run_button.disabled = True
        try:
            out[0] = live.run()
        finally:
            ex.run_button.disabled = False

    thread = threading.Thread(target=work, daemon=True)
    ex._thread = thread
    thread.start()
    if wait:
        thread.join()
    return out[0]


def show_recipe(ex: CompressionExplorer, trace: Any, points: Any, selector: Any) -> None:
    """Plotly click callback: the clicked point's recipe under the plots."""
    if not points.point_inds:
        return
    label = str(trace.text[points.point_inds[0]])
    recipe = ex.recipes.get(label, {})
    body = html.escape(json.dumps(recipe, indent=1, default=str))
    ex.recipe_view.value = f"<b>{html.escape(label)}</b><pre>{body}</pre>"


__all__ = ["LiveSearch", "search_rows_to_explorer", "show_recipe", "start_search"]
