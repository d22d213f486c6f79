"""One search from start to end: baseline and sensitivity, three cheap rounds on an eval subset,
then full evaluation of the front, cheapest first, until the cheapest model within budget is
known.  Every build, measurement and evaluation is a task of the runner (Dask or in-process)."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from lepton_nb.compress._candidates import (
    BASELINE,
    PRUNE_METHOD,
    Recipe,
    baseline_task,
    build_task,
    full_eval_task,
    rebuild,
)
from lepton_nb.compress._plan import Plan
from lepton_nb.compress._runner import OutOfTime, runner_for
from lepton_nb.compress._search_types import OnResult, SearchConfig, SearchResult
from lepton_nb.compress._wire import pack
from lepton_nb.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn


class SearchRun:
    def __init__(
        self, model: nn.Module, train_data: Any, eval_data: Any, calibration_data: Any,
        max_drop: float, cost: str, cluster: Any, budget_s: float | None, example_input: Any,
        cfg: SearchConfig, on_result: OnResult | None,
    ) -> None:  # fmt: skip
        from lepton_nb.compress._data import first_input
        from lepton_nb.compress.methods import VariantContext

        self.model = model.eval()
        self.eval_data, self.max_drop, self.cost, self.cfg = eval_data, max_drop, cost, cfg
        self.cluster, self.budget_s, self.on_result = cluster, budget_s, on_result
        if example_input is None:
            example_input = first_input(eval_data, 1, "eval_data")[:1]
        if calibration_data is None and train_data is not None:
            calibration_data = train_data  # static int8 reads a few batches of inputs
        fit_kwargs = {"progress": False, **cfg.fit_kwargs}
        self.ctx = VariantContext(calibration_data, example_input, train_data,
                                  cfg.fine_tune_epochs, None, fit_kwargs)  # fmt: skip
        self.tune = cfg.fine_tune_epochs if train_data is not None else 0
        self.rows: dict[str, dict[str, Any]] = {}
        self.recipes: dict[str, Recipe] = {}
        self.built: dict[str, Any] = {}
        self.notes: list[str] = []
        self.t0 = time.monotonic()
        self.deadline = self.t0 + (budget_s if budget_s is not None else math.inf)
        self.out_of_time = False

    # ---- data ---------------------------------------------------------------------------
    def _subset(self) -> tuple[Any, Any]:
        """The first ``subset_size`` labelled samples of eval_data, as an (x, y) pair."""
        import torch

        from lepton_nb.compress._data import iter_batches

        xs, ys, n = [], [], 0
        for x, y in iter_batches(self.eval_data, 256, "eval_data"):
            xs.append(x)
            ys.append(y)
            n += len(x)
            if n >= self.cfg.subset_size:
                break
        if not xs:
            raise ConfigError("eval_data is empty; pass at least one labelled batch")
        size = self.cfg.subset_size
        return torch.cat(xs)[:size], torch.cat(ys)[:size]

    # ---- the search ---------------------------------------------------------------------
    def execute(self, methods: list[str], objective: str) -> SearchResult:
        runner = runner_for(self.cluster)
        try:
            return self._execute(runner, methods, objective)
        finally:
            runner.close()  # nothing of this search stays queued or running on the cluster

    def _too_small(self) -> ConfigError:
        took = time.monotonic() - self.t0
        return ConfigError(
            f"budget_s={self.budget_s:g} is too small for even one candidate: the search had "
            f"measured no compressed model after {took:.1f} s; allow at least ~{3 * took + 5:.0f}"
            " s, or leave budget_s=None"
        )

    def _execute(self, r: Any, methods: list[str], objective: str) -> SearchResult:
        subset = self._subset()
        settings = dict(self.cfg.settings)
        self.refs = (r.put(pack(self.model)), r.put(pack(self.ctx)), r.put(subset),
                     r.put(self.eval_data))  # fmt: skip
        base_h = r.submit(baseline_task, self.refs[0], self.refs[2], self.refs[3], settings)
        plan = Plan([m for m in methods if m != PRUNE_METHOD], PRUNE_METHOD in methods,
                    tuple(self.cfg.prune_amounts), self.cfg.max_skip, self.tune)  # fmt: skip
        self._sensitivity(plan, subset)
        try:
            [(_, base)] = list(r.completed([base_h], self.deadline))
        except OutOfTime:
            raise self._too_small() from None
        base.update(accuracy=base["accuracy_full"], drop=0.0, drop_subset=0.0, round=0,
                    evaluated_on="full", within_budget=True,
                    recipe_dict=Recipe().to_dict())  # fmt: skip
        self._emit(BASELINE, base)
        self.slack = significance_slack(base["accuracy_subset"], len(subset[1]))

        self._round(r, [(c, None) for c in plan.coarse()], 1)
        if not any(k != BASELINE and "error" not in row for k, row in self.rows.items()):
            if self.out_of_time:
                raise self._too_small()
        over, ok = self._passing()
        self._round(r, [(c, None) for c in plan.refine(over, ok)], 2)
        _, ok = self._passing()
        stacks = plan.stack(self.rows, sorted(ok), self.recipes, self.cost)
        self._round(r, [(c, self.built[p]) for c, p in stacks], 3)
        best, met = self._full(r)
        model = rebuild(self.model, r.result(self.built[best])[1])
        return SearchResult(
            best=model, recipe=self.recipes[best], table=self._table(), max_drop=self.max_drop,
            objective=objective, met_budget=met, candidates_evaluated=len(self.recipes),
            grid_size=plan.grid_size(), wall_s=time.monotonic() - self.t0,
            workers=r.n_workers, notes=self.notes,
        )  # fmt: skip

    def _sensitivity(self, plan: Plan, subset: Any) -> None:
        """Rank layers for quantization (4-bit rounding of one layer) and pruning (50% of one
        layer's weights) by the accuracy each loses alone, on the subset."""
        from torch import nn

        from lepton_nb.compress.prune import _output_layer
        from lepton_nb.compress.sensitivity import sensitivity

        mods = dict(self.model.named_modules())
        kinds = {"dynamic-int8": (nn.Linear,), "weight-only-int8": (nn.Linear,),
                 "static-int8": (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)}  # fmt: skip
        if plan.quant_methods and plan.max_skip > 0:
            t = sensitivity(self.model, subset, self.cluster, method="quantize", levels=(4,))
            ranking = list(t.sort_values("accuracy_drop", ascending=False, kind="stable")["layer"])
            plan.quant_ranking = {q: [n for n in ranking if isinstance(mods[n], kinds[q])]
                                  for q in plan.quant_methods}  # fmt: skip
        if plan.prune:
            out = _output_layer(self.model)
            t = sensitivity(self.model, subset, self.cluster, method="prune", levels=(0.5,))
            plan.prune_drops = {row.layer: float(row.accuracy_drop) for row in t.itertuples()
                                if mods[row.layer] is not out}  # fmt: skip

    def _round(self, r: Any, todo: list[tuple[Recipe, Any]], number: int) -> None:
        if self.out_of_time:
            return
        handles = {}
        for recipe, parent in todo:
            if recipe.label in self.recipes:
                continue
            self.recipes[recipe.label] = recipe
            parent_ref = None if parent is None else r.ref(parent)
            h = r.submit(build_task, self.refs[0], parent_ref, recipe.to_dict(), self.refs[1],
                         self.refs[2], dict(self.cfg.settings))  # fmt: skip
            self.built[recipe.label] = h
            handles[h] = recipe.label
        try:
            for h, (row, _) in r.completed(list(handles), self.deadline):
                base = self.rows[BASELINE]
                row.update(round=number, evaluated_on="subset", within_budget=False,
                           recipe_dict=self.recipes[handles[h]].to_dict())  # fmt: skip
                if "error" not in row:
                    row["drop_subset"] = (base["accuracy_subset"] - row["accuracy_subset"]) * 100
                    row.update(accuracy=row["accuracy_subset"], drop=row["drop_subset"])
                self._emit(handles[h], row)
        except OutOfTime:
            self._ran_out(f"round {number}")

    def _ran_out(self, where: str) -> None:
        self.out_of_time = True
        self.notes.append(f"budget_s={self.budget_s:g} ran out during {where}; the search "
                          "stopped there and chose among what it had measured")  # fmt: skip

    def _passing(self) -> tuple[set[str], set[str]]:
        """(labels over max_drop on the subset, labels within it up to the subset's noise)."""
        done = {k: v for k, v in self.rows.items() if k != BASELINE and "error" not in v}
        over = {k for k, v in done.items() if v["drop_subset"] > self.max_drop}
        ok = {k for k, v in done.items() if v["drop_subset"] <= self.max_drop + self.slack}
        return over, ok

    def _full(self, r: Any) -> tuple[str, bool]:
        """Evaluate the front on all of eval_data, cheapest first, until nothing cheaper than
        the cheapest model within budget is left; returns (chosen label, met the budget)."""
        _, ok = self._passing()
        queue = self._front_first(ok)
        if not queue:  # nothing passed on the subset: find the most accurate on full data
            done = [k for k, v in self.rows.items() if k != BASELINE and "error" not in v]
            queue = sorted(done, key=lambda k: -self.rows[k]["accuracy_subset"])
            queue = queue[: self.cfg.front_size]
        self._cheapest_passing(r, queue)
        # the best single method at the same budget too, so the result can be compared with it
        self._cheapest_passing(r, [k for k in queue if self.recipes[k].single_method])
        best = self._best_within(self.rows)
        if best is not None:
            return best, True
        done = [k for k, v in self.rows.items() if k != BASELINE and "error" not in v]
        if not done:
            raise ConfigError("every candidate failed to build: "
                              + "; ".join(f"{k}: {v['error']}" for k, v in self.rows.items()
                                          if "error" in v))  # fmt: skip
        return max(done, key=lambda k: (self.rows[k]["evaluated_on"] == "full",
                                        self.rows[k]["accuracy"])), False  # fmt: skip

    def _front_first(self, labels: set[str]) -> list[str]:
        """The Pareto front of ``labels`` on (cost, subset accuracy) by cost, then the rest."""
        import pandas as pd

        from lepton_nb.compress.report import pareto_front

        if not labels:
            return []
        pool = pd.DataFrame.from_dict({k: self.rows[k] for k in labels}, orient="index")
        front = sorted(pareto_front(pool, self.cost, "accuracy_subset"),
                       key=lambda k: self.rows[k][self.cost])  # fmt: skip
        return front + [k for k in pool.sort_values(self.cost).index if k not in front]

    def _cheapest_passing(self, r: Any, queue: list[str]) -> None:
        """Full evaluations in ``queue`` order, as many at once as there are workers, until
        none is left cheaper than the cheapest of ``queue`` within budget."""
        among = set(queue)
        while queue and not self.out_of_time:
            best = self._best_within(among)
            if best is not None:
                queue = [k for k in queue if self.rows[k][self.cost] < self.rows[best][self.cost]]
            queue = [k for k in queue if self.rows[k]["evaluated_on"] != "full"]
            width = min(self.cfg.front_size, r.n_workers)
            batch, queue = queue[:width], queue[width:]
            if batch:
                self._evaluate_full(r, batch)

    def _best_within(self, among: Any) -> str | None:
        within = [k for k in among if k != BASELINE and self.rows[k]["within_budget"]]
        return min(within, key=lambda k: self.rows[k][self.cost]) if within else None

    def _evaluate_full(self, r: Any, batch: list[str]) -> None:
        handles = {r.submit(full_eval_task, self.refs[0], r.ref(self.built[k]), self.refs[3]): k
                   for k in batch}  # fmt: skip
        try:
            for h, acc in r.completed(list(handles), self.deadline):
                row = self.rows[handles[h]]
                drop = (self.rows[BASELINE]["accuracy_full"] - acc) * 100
                row.update(accuracy_full=acc, accuracy=acc, drop=drop, evaluated_on="full",
                           within_budget=drop <= self.max_drop + 1e-9)  # fmt: skip
                self._emit(handles[h], row)
        except OutOfTime:
            self._ran_out("the full evaluation")

    def _emit(self, label: str, row: dict[str, Any]) -> None:
        self.rows[label] = row
        if self.on_result is not None:
            self.on_result({**row, "max_drop": self.max_drop})

    def _table(self) -> Any:
        import pandas as pd

        from lepton_nb.compress.report import pareto_front

        t = pd.DataFrame.from_dict(self.rows, orient="index").drop(columns=["recipe_dict"])
        t.index.name = "candidate"
        base = t.loc[BASELINE]
        t["speedup"] = base["latency_ms"] / t["latency_ms"]
        t["size_x"] = base["bytes"] / t["bytes"]
        # the front of what was measured on all of eval_data (subset accuracies are too noisy)
        full = t[t["evaluated_on"] == "full"]
        t["pareto"] = t.index.isin(pareto_front(full, self.cost))
        t["within_budget"] = t["within_budget"].astype(bool)
        cols = ["recipe", "family", "single_method", "params", "bytes", "latency_ms",
                "accuracy", "drop", "evaluated_on", "within_budget", "pareto", "speedup",
                "size_x", "accuracy_subset", "drop_subset", "round", "build_s", "worker",
                "error"]  # fmt: skip
        return t[[c for c in cols if c in t.columns]]


def significance_slack(accuracy: float, n: int) -> float:
    """Two standard errors of an accuracy measured on ``n`` samples, in points (>= 0.5)."""
    return max(0.5, 200 * math.sqrt(max(accuracy * (1 - accuracy), 1e-4) / max(n, 1)))


__all__ = ["SearchRun", "significance_slack"]
