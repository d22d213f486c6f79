"""CompressionExplorer: run compression variants on the cluster and see the trade-offs.

Pick a method and strengths, press Run: every variant is built and measured as one Dask task
(in-process without a cluster).  Points land on accuracy-vs-size and accuracy-vs-latency plots
with their Pareto fronts, the table fills in, and any variant can be exported with
``compress.save``.
"""

from __future__ import annotations

import functools
import html
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from lepton_nb.compress._candidates import BASELINE
from lepton_nb.compress._variant_tasks import run_variants
from lepton_nb.compress.methods import METHODS, Variant, VariantContext
from lepton_nb.errors import ConfigError, LeptonError
from lepton_nb.widgets._explorer_plot import empty_figure, update_figure
from lepton_nb.widgets._explorer_search import show_recipe, start_search

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from lepton_nb.compress.search import SearchResult


_COLUMNS = ["method", "strength", "params", "bytes", "latency_ms", "accuracy"]


class CompressionExplorer(W.VBox):
    """Interactive trade-off explorer for one trained ``model`` on labelled ``eval_data``.

    ``calibration_data`` enables static-int8, ``example_input`` structured pruning (taken from
    ``eval_data`` when omitted), ``train_data`` fine-tuning and, with ``student``, distillation.
    ``settings`` are :class:`lepton_nb.compress.ReportConfig` fields.  :meth:`search` runs
    :func:`lepton_nb.compress.search` and draws it live.
    """

    def __init__(
        self,
        model: nn.Module,
        eval_data: Any,
        cluster: Any = None,
        *,
        calibration_data: Any = None,
        example_input: Any = None,
        train_data: Any = None,
        student: nn.Module | None = None,
        fine_tune_epochs: int = 1,
        settings: dict[str, Any] | None = None,
    ) -> None:
        from lepton_nb.compress._data import first_input

        self.model = model.eval()
        self.eval_data = eval_data
        self.cluster = cluster
        if example_input is None:
            example_input = first_input(eval_data, 1, "eval_data")[:1]
        if calibration_data is None and train_data is not None:
            calibration_data = train_data
        self.context = VariantContext(
            calibration_data, example_input, train_data, fine_tune_epochs, student
        )
        self.settings = dict(settings or {"runs": 20})
        self.models: dict[str, nn.Module] = {}
        self.errors: dict[str, str] = {}  # label -> why that variant failed
        self.recipes: dict[str, dict[str, Any]] = {}  # label -> what built it (shown on click)
        self.search_result: SearchResult | None = None
        self._rows: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._build_controls()
        self.figure = empty_figure()
        for points in (self.figure.data[0], self.figure.data[2]):
            points.on_click(functools.partial(show_recipe, self))
        self.recipe_view = W.HTML()
        self.table = W.HTML()
        self.status = W.HTML()
        parts = [self.controls, self.figure, self.recipe_view, self.table, self.export_box]
        super().__init__(
            [*parts, self.status],
            layout={"border": "1px solid var(--jp-border-color2, #ddd)", "padding": "4px"},
        )
        self.add_class("lepton-compression-explorer")

    def _build_controls(self) -> None:
        names = [n for n in METHODS.names() if n != "distill" or self.context.student is not None]
        self.method = W.Dropdown(options=names, value="dynamic-int8", description="method")
        self.strengths = W.Text(description="strength", placeholder="e.g. 0.3, 0.5, 0.7")
        self.run_button = W.Button(description="Run", icon="play", button_style="primary")
        self.run_button.on_click(lambda _: self._on_run())
        self.method.observe(lambda _: self._sync_strength(), names="value")
        self.controls = W.HBox([self.method, self.strengths, self.run_button])
        self.choice = W.Dropdown(options=[], description="variant")
        self.path = W.Text(value="compressed.pt", description="path")
        self.export_button = W.Button(description="Export", icon="download")
        self.export_button.on_click(lambda _: self._guard(self._export_chosen))
        self.export_box = W.HBox([self.choice, self.path, self.export_button])
        self._sync_strength()

    def _sync_strength(self) -> None:
        spec = METHODS.get(self.method.value)
        self.strengths.disabled = spec.strength is None
        self.strengths.description = spec.strength or "strength"
        self.strengths.value = "" if spec.default is None else f"{spec.default:g}"

    def variants_from_controls(self) -> list[Variant]:
        method = self.method.value
        if METHODS.get(method).strength is None:
            return [Variant(method)]
        try:
            values = [float(v) for v in self.strengths.value.replace(";", ",").split(",") if v]
        except ValueError:
            raise ConfigError(
                f"strengths {self.strengths.value!r} are not numbers; write e.g. 0.3, 0.5"
            ) from None
        if not values:
            raise ConfigError("enter at least one strength, e.g. 0.5")
        return [Variant(method, v) for v in values]

    def _guard(self, fn: Any) -> None:
        try:
            fn()
        except LeptonError as e:  # the user's mistake: show it, keep the widget alive
            self._say(str(e), error=True)

    def _export_chosen(self) -> None:
        self.export(self.choice.value, self.path.value)

    def _on_run(self) -> None:
        self._guard(lambda: self.run(self.variants_from_controls(), wait=False))

    def run(self, variants: Sequence[Variant], wait: bool = True) -> pd.DataFrame:
        """Build and measure ``variants`` (plus the baseline, once); returns :attr:`results`."""
        for v in variants:
            METHODS.get(v.method)  # fail fast on unknown names, before any task starts
        todo: list[Variant | None] = [None] if BASELINE not in self._rows else []
        todo += [v for v in variants if v.label not in self._rows]
        thread = threading.Thread(target=self._run_all, args=(todo,), daemon=True)
        self._thread = thread
        thread.start()
        if wait:
            thread.join()
        return self.results

    def _run_all(self, todo: list[Variant | None]) -> None:
        self._say(f"running {len(todo)} variant(s)...")
        self.run_button.disabled = True
        try:
            failed = []
            outcomes = run_variants(
                self.model,
                todo,
                context=self.context,
                eval_data=self.eval_data,
                settings=self.settings,
                cluster=self.cluster,
            )
            for label, row, model in outcomes:
                if isinstance(row, BaseException):
                    failed.append(f"{label}: {row}")
                    self.errors[label] = str(row)
                    continue
                with self._lock:
                    self._rows[label] = row
                    self.models[label] = model
                    self.recipes[label] = {"method": row["method"], "strength": row["strength"]}
                self._redraw()
            done = f"{len(self._rows) - 1} variant(s) measured"
            self._say("; ".join([done, *failed]), error=bool(failed))
        finally:
            self.run_button.disabled = False

    def search(self, max_drop: float = 1.0, objective: str = "latency", wait: bool = True,
               **options: Any) -> SearchResult | None:  # fmt: skip
        """Run :func:`lepton_nb.compress.search` on this model and data, drawing every candidate
        as it is measured; the chosen model lands in :attr:`models` and :attr:`search_result`.
        ``options`` are search()'s other keywords (``methods``, ``budget_s``, ``config``)."""
        return start_search(self, max_drop, objective, wait, options)

    @property
    def results(self) -> pd.DataFrame:
        """All measured variants with ratios against the baseline (index = label)."""
        import pandas as pd

        with self._lock:
            rows = dict(self._rows)
        if not rows:
            return pd.DataFrame(columns=_COLUMNS)
        table = pd.DataFrame.from_dict(rows, orient="index")[_COLUMNS]
        if BASELINE in table.index:
            ref = table.loc[BASELINE]
            table["size_x"] = ref["bytes"] / table["bytes"]
            table["speedup"] = ref["latency_ms"] / table["latency_ms"]
            table["accuracy_delta"] = (table["accuracy"] - ref["accuracy"]) * 100
        table.index.name = "variant"
        return table

    def _redraw(self) -> None:
        from lepton_nb.compress.report import to_html

        table = self.results
        update_figure(self.figure, table)
        self.table.value = to_html(table.assign(params=table["params"].astype(float)))
        self.choice.options = list(table.index)

    def export(self, label: str, path: str | Path) -> Path:
        """Save the variant ``label`` with :func:`lepton_nb.compress.save`."""
        from lepton_nb.compress.io import save

        if label not in self.models:
            raise ConfigError(f"no variant {label!r}; choose one of {sorted(self.models)}")
        out = Path(path)
        save(self.models[label], out)
        self._say(f"saved {html.escape(label)} to {html.escape(str(out))}")
        return out

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def _say(self, text: str, error: bool = False) -> None:
        color = "#c00" if error else "inherit"
        self.status.value = f'<span style="color:{color}">{html.escape(text)}</span>'


__all__ = ["CompressionExplorer"]
