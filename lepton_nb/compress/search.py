"""Compression to an accuracy budget: search recipes, measured where the model runs, and pick the
fastest (or smallest) model whose accuracy drop on the full eval set is at most ``max_drop``.

>>> result = compress.search(model, eval_data=test, calibration_data=x[:512], max_drop=1.0)
>>> result.best, result.recipe, result.table, print(result.report())
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lepton_nb._registry import Registry
from lepton_nb.compress._candidates import PRUNE_METHOD, QUANT_METHODS
from lepton_nb.compress._search_types import OnResult, SearchConfig, SearchResult
from lepton_nb.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

# objective name -> the measured column it minimizes
OBJECTIVES: Registry[str] = Registry("search objective")
OBJECTIVES.add("latency", "latency_ms")
OBJECTIVES.add("size", "bytes")

SEARCH_METHODS = (*QUANT_METHODS, PRUNE_METHOD)


def _check(max_drop: float, eval_data: Any, objective: str, methods: Sequence[str] | None,
           budget_s: float | None) -> list[str]:  # fmt: skip
    if eval_data is None:
        raise ConfigError("search needs eval_data (labelled held-out data, e.g. the test split) "
                          "to measure each candidate's accuracy drop")  # fmt: skip
    if not isinstance(max_drop, int | float) or not max_drop >= 0:
        raise ConfigError(f"max_drop must be >= 0 (accuracy points the compressed model may "
                          f"lose, e.g. 1.0), got {max_drop!r}")  # fmt: skip
    OBJECTIVES.get(objective)
    if budget_s is not None and not budget_s > 0:
        raise ConfigError(f"budget_s must be a positive number of seconds, got {budget_s!r}")
    chosen = list(methods) if methods is not None else list(SEARCH_METHODS)
    unknown = sorted(set(chosen) - set(SEARCH_METHODS))
    if unknown or not chosen:
        raise ConfigError(f"unknown methods {unknown or chosen}; search can use "
                          f"{', '.join(SEARCH_METHODS)}")  # fmt: skip
    return chosen


def _applicable(model: nn.Module, methods: list[str], ctx: Any) -> tuple[list[str], dict[str, str]]:
    """The methods that apply to ``model``, and why each other one does not (tried here, on a
    tiny amount, so the search never ships an impossible candidate to the cluster)."""
    from torch import nn

    from lepton_nb.compress._data import require_module_types
    from lepton_nb.compress.prune import prune
    from lepton_nb.errors import LeptonError

    need = {"dynamic-int8": (nn.Linear, nn.LSTM, nn.GRU), "weight-only-int8": (nn.Linear,),
            "static-int8": (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)}  # fmt: skip
    ok, why = [], {}
    for m in methods:
        try:
            if m == PRUNE_METHOD:
                prune(model, 0.1, structured=True, example_input=ctx.example_input)
            else:
                require_module_types(model, need[m], m)
                if m == "static-int8" and ctx.calibration_data is None:
                    raise ConfigError("static-int8 needs calibration_data (or train_data)")
            ok.append(m)
        except LeptonError as e:
            why[m] = str(e)
    return ok, why


def search(
    model: nn.Module,
    train_data: Any = None,
    eval_data: Any = None,
    calibration_data: Any = None,
    max_drop: float = 1.0,
    objective: str = "latency",
    methods: Sequence[str] | None = None,
    cluster: Any = None,
    budget_s: float | None = None,
    example_input: Any = None,
    *,
    config: SearchConfig | None = None,
    on_result: OnResult | None = None,
) -> SearchResult:
    """Find the fastest (``objective="latency"``) or smallest (``"size"``) compressed ``model``
    whose accuracy on all of ``eval_data`` is at most ``max_drop`` points below the original.

    Candidates combine structured pruning (uniform or sensitivity-guided per-layer amounts,
    fine-tuned through ``fit`` when ``train_data`` is given) and int8 quantization
    (``methods``, default all of :data:`SEARCH_METHODS`; the layers most sensitive to
    quantization may stay in float).  Each is built and measured as a task on ``cluster``
    (in-process without one), so latency is measured where the model runs.  ``budget_s`` caps
    the search's wall time; ``on_result(row)`` sees every row as it is measured.
    """
    from lepton_nb.compress._search_run import SearchRun

    chosen = _check(max_drop, eval_data, objective, methods, budget_s)
    cfg = config or SearchConfig()
    run = SearchRun(model, train_data, eval_data, calibration_data, float(max_drop),
                    OBJECTIVES.get(objective), cluster, budget_s, example_input, cfg,
                    on_result)  # fmt: skip
    from lepton_nb.compress._data import forward_checked

    forward_checked(model, run.ctx.example_input, "eval_data")  # a clear error for bad shapes
    ok, why = _applicable(model, chosen, run.ctx)
    for m, reason in why.items():
        note = f"{m} does not apply to {type(model).__name__} and was left out: {reason}"
        run.notes.append(note)
        warnings.warn(f"compress.search: {note}; searching {', '.join(ok) or 'nothing'}",
                      UserWarning, stacklevel=2)  # fmt: skip
    if not ok:
        raise ConfigError(f"no compression method applies to {type(model).__name__}: "
                          + "; ".join(f"{m}: {r}" for m, r in why.items()))  # fmt: skip
    result = run.execute(ok, objective)
    if not result.met_budget:
        warnings.warn(f"compress.search: no candidate kept the accuracy drop within "
                      f"{max_drop:g} pt on the full eval data; returning the most accurate "
                      f"one ({result.recipe.label})", UserWarning, stacklevel=2)  # fmt: skip
    return result


__all__ = ["OBJECTIVES", "SEARCH_METHODS", "SearchConfig", "SearchResult", "search"]
