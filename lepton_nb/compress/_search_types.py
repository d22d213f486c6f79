"""What a search takes and returns: :class:`SearchConfig`, :class:`SearchResult`, ``OnResult``.

Their own module so that :mod:`~lepton_nb.compress.search` (the verb) and
:mod:`~lepton_nb.compress._search_run` (the run it drives) both import them, and neither
imports the other back.  Public through ``lepton_nb.compress``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lepton_nb._config import DictConfig
from lepton_nb.compress._candidates import Recipe

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

OnResult = Callable[[dict[str, Any]], None]


@dataclass
class SearchConfig(DictConfig):
    """How the search spends its evaluations; round-trips through :meth:`to_dict`."""

    subset_size: int = 256  # eval samples for the cheap rounds
    prune_amounts: tuple[float, ...] = (0.25, 0.5, 0.75)
    max_skip: int = 2  # at most this many sensitive layers left in float
    fine_tune_epochs: int = 1  # after structured pruning, when train_data is given
    fit_kwargs: dict[str, Any] = field(default_factory=lambda: {"batch_size": 32, "lr": 1e-3})
    front_size: int = 6  # candidates evaluated on the full eval set per batch
    settings: dict[str, Any] = field(default_factory=lambda: {"runs": 20, "warmup": 5})


@dataclass
class SearchResult:
    """``best`` (the chosen model), its ``recipe``, the ``table`` of every candidate."""

    best: nn.Module
    recipe: Recipe
    table: pd.DataFrame
    max_drop: float
    objective: str
    met_budget: bool
    candidates_evaluated: int
    grid_size: int
    wall_s: float
    workers: int
    notes: list[str] = field(default_factory=list)

    @property
    def chosen(self) -> pd.Series:
        return self.table.loc[self.recipe.label]

    def report(self) -> str:
        """A plain-text account of what was chosen, why, and what the search cost."""
        row, base = self.chosen, self.table.loc["baseline"]
        verdict = (f"within the budget of {self.max_drop:g} pt" if self.met_budget else
                   f"NOTHING met the budget of {self.max_drop:g} pt: the most accurate "
                   "candidate is returned")  # fmt: skip
        lines = [
            f"chosen: {self.recipe.label} ({verdict}, objective {self.objective})",
            f"  accuracy {row['accuracy']:.2%} vs {base['accuracy']:.2%} "
            f"(drop {row['drop']:+.2f} pt on {row['evaluated_on']} eval data)",
            f"  {row['speedup']:.2f}x faster ({row['latency_ms']:.3f} vs {base['latency_ms']:.3f}"
            f" ms), {row['size_x']:.2f}x smaller ({row['bytes']:,.0f} vs {base['bytes']:,.0f} B)",
            f"  searched {self.candidates_evaluated} candidates of a {self.grid_size}-recipe grid"
            f" in {self.wall_s:.1f} s on {self.workers} worker(s); "
            f"{int(self.table['within_budget'].sum()) - 1} met the budget on the full eval set",
            *[f"  note: {n}" for n in self.notes],
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        table = self.table.to_html(float_format="{:.4g}".format)
        return f"<pre>{html.escape(self.report())}</pre>{table}"


__all__ = ["OnResult", "SearchConfig", "SearchResult"]
