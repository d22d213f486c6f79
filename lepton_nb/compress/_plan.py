"""The guided search's plan: which candidates each round proposes from what the last one measured.

Coarse to fine, like successive halving: round 1 tries each method alone at its coarse settings
on an eval subset; round 2 refines around what passed (skip the layers most sensitive to
quantization, per-layer pruning amounts guided by sensitivity); round 3 stacks the best pruned
models with the best quantizations.  Only the Pareto front of the survivors is evaluated on the
full eval set (see :mod:`lepton_nb.compress.search`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lepton_nb.compress._candidates import Recipe


@dataclass
class Plan:
    quant_methods: list[str]
    prune: bool
    amounts: tuple[float, ...]
    max_skip: int
    fine_tune_epochs: int
    # method -> the layers it quantizes, most sensitive to quantization first
    quant_ranking: dict[str, list[str]] = field(default_factory=dict)
    prune_drops: dict[str, float] = field(default_factory=dict)  # layer -> drop (points)

    def grid_size(self) -> int:
        """Every recipe this plan could ever propose (the full grid a search avoids)."""
        quants = len(self.quant_methods) * (self.max_skip + 1)
        prunes = 2 * len(self.amounts) if self.prune else 0
        return quants + prunes + prunes * quants

    def coarse(self) -> list[Recipe]:
        out = [Recipe(quantize=q) for q in self.quant_methods]
        if self.prune:
            out += [Recipe(prune=a, fine_tune_epochs=self.fine_tune_epochs) for a in self.amounts]
        return out

    def refine(self, over: set[str], ok: set[str]) -> list[Recipe]:
        """Quantization that went ``over`` the budget retried without its most sensitive
        layers; guided pruning at the largest uniform amount that was ``ok`` and the next one."""
        out = []
        for q in self.quant_methods:
            ranking = self.quant_ranking.get(q, [])
            if Recipe(quantize=q).label in over:
                # keep at least one layer quantized, or the candidate is just the original
                for k in range(1, min(self.max_skip, len(ranking) - 1) + 1):
                    out.append(Recipe(quantize=q, skip=tuple(ranking[:k])))
        if self.prune and len(self.prune_drops) > 1:  # with one layer, guided = uniform
            passed = [a for a in self.amounts if self._uniform(a).label in ok]
            top = max(passed) if passed else None
            above = [a for a in self.amounts if top is None or a > top]
            for a in ([top] if top is not None else []) + above[:1]:
                out.append(self.guided(a))
        return out

    def stack(
        self,
        rows: dict[str, dict[str, Any]],
        ok: Sequence[str],
        recipes: dict[str, Recipe],
        cost: str,
        width: int = 2,
    ) -> list[tuple[Recipe, str]]:
        """(stacked recipe, label of its pruned parent) for the ``width`` cheapest passing
        pruned models times the ``width`` cheapest passing quantizations."""

        def cheapest(family: str) -> list[str]:
            labels = [lb for lb in ok if recipes[lb].family == family]
            return sorted(labels, key=lambda lb: rows[lb][cost])[:width]

        out = []
        for p in cheapest("prune"):
            for q in cheapest("quantize"):
                both = {**recipes[p].to_dict(), "quantize": recipes[q].quantize,
                        "skip": recipes[q].skip}  # fmt: skip
                out.append((Recipe.from_dict(both), p))
        return out

    def _uniform(self, amount: float) -> Recipe:
        return Recipe(prune=amount, fine_tune_epochs=self.fine_tune_epochs)

    def guided(self, amount: float) -> Recipe:
        """Per-layer amounts averaging ``amount``: the least sensitive layer gets 1.25x, the most
        sensitive 0.75x (ranked by the accuracy drop of pruning that layer alone)."""
        ranked = sorted(self.prune_drops, key=lambda n: self.prune_drops[n])
        n = len(ranked)
        amounts = {
            name: round(min(0.9, amount * (1.25 - 0.5 * (i / (n - 1) if n > 1 else 0.5))), 3)
            for i, name in enumerate(ranked)
        }
        return Recipe(prune=amount, guided=True, layer_amounts=amounts,
                      fine_tune_epochs=self.fine_tune_epochs)  # fmt: skip


__all__ = ["Plan"]
