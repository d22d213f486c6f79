"""Search candidates: a :class:`Recipe` (prune, then quantize) and the Dask tasks that build and
measure one.  Tasks take and return plain data (packed models, lepton_nb's safe model bytes), so
they run the same on a worker as in-process.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lepton_nb.cluster._client import worker_address
from lepton_nb.compress._wire import unpack
from lepton_nb.errors import LeptonError

if TYPE_CHECKING:
    from torch import nn

    from lepton_nb.compress.methods import VariantContext

BASELINE = "baseline"  # the row of the original model in every table
QUANT_METHODS = ("dynamic-int8", "static-int8", "weight-only-int8")
PRUNE_METHOD = "prune-structured"


@dataclass(frozen=True)
class Recipe:
    """What a candidate applies to the original model: structured pruning (uniform ``prune`` or
    per-layer ``layer_amounts``, optionally fine-tuned), then int8 ``quantize`` leaving the
    layers in ``skip`` in float.  Round-trips through :meth:`to_dict` / :meth:`from_dict`."""

    prune: float | None = None
    guided: bool = False  # layer_amounts come from the sensitivity analysis
    layer_amounts: dict[str, float] = field(default_factory=dict)
    fine_tune_epochs: int = 0
    quantize: str | None = None
    skip: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        parts = []
        if self.prune is not None:
            p = f"{PRUNE_METHOD}@{self.prune:g}" + ("/guided" if self.guided else "")
            parts.append(p + (f"+ft{self.fine_tune_epochs}" if self.fine_tune_epochs else ""))
        if self.quantize:
            parts.append(self.quantize + (f"-skip{len(self.skip)}" if self.skip else ""))
        return " -> ".join(parts) or "baseline"

    @property
    def family(self) -> str:
        kinds = [k for k, on in (("prune", self.prune is not None), ("quantize", self.quantize))
                 if on]  # fmt: skip
        return "+".join(kinds) or "baseline"

    @property
    def single_method(self) -> bool:
        return self.family in ("prune", "quantize")

    def quantization_only(self) -> Recipe:
        return replace(self, prune=None, guided=False, layer_amounts={}, fine_tune_epochs=0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["skip"] = list(self.skip)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recipe:
        return cls(**{**d, "skip": tuple(d.get("skip", ()))})

    def apply(self, model: nn.Module, ctx: VariantContext) -> nn.Module:
        """Build this candidate from ``model`` (a new model; ``model`` is not changed)."""
        from lepton_nb.compress.prune import prune
        from lepton_nb.compress.quantize import quantize

        out = model
        if self.prune is not None:
            tune = self.fine_tune_epochs > 0 and ctx.train_data is not None
            out = prune(
                out, self.prune, structured=True, example_input=ctx.example_input,
                train_data=ctx.train_data if tune else None,
                fine_tune_epochs=max(1, self.fine_tune_epochs),
                layer_amounts=self.layer_amounts, **(ctx.fit_kwargs if tune else {}),
            )  # fmt: skip
        if self.quantize:
            calib = ctx.calibration_data if self.quantize == "static-int8" else None
            out = quantize(out, self.quantize, calibration_data=calib, skip=list(self.skip))
        return out


def rebuild(original: nn.Module, data: bytes) -> nn.Module:
    """A candidate's model from its bytes, on a copy of the user's own instance when it is
    uncompressed (so non-default constructor arguments survive)."""
    from lepton_nb.compress.io import from_bytes

    plain = not getattr(original, "_lepton_recipe", None)
    return from_bytes(data, model=copy.deepcopy(original) if plain else None)


def baseline_task(model: Any, subset: Any, eval_data: Any, settings: dict[str, Any]) -> dict:
    from lepton_nb.compress._data import accuracy
    from lepton_nb.compress.report import ReportConfig, measure

    net = unpack(model).eval()
    row: dict[str, Any] = {"recipe": "baseline", "family": "baseline", "single_method": False}
    row.update(measure(net, subset, ReportConfig(**settings)))
    row["accuracy_subset"] = row.pop("accuracy")
    row["accuracy_full"] = accuracy(net, eval_data)
    row["worker"] = worker_address()
    return row


def build_task(
    model: Any,
    parent: tuple[dict[str, Any], bytes | None] | None,
    recipe: dict[str, Any],
    ctx: Any,
    subset: Any,
    settings: dict[str, Any],
) -> tuple[dict[str, Any], bytes | None]:
    """Build one candidate (from its pruned ``parent`` when given) and measure it on ``subset``:
    params, bytes, latency where this task runs, and subset accuracy."""
    from lepton_nb.compress.io import to_bytes
    from lepton_nb.compress.report import ReportConfig, measure

    rec = Recipe.from_dict(recipe)
    row: dict[str, Any] = {"recipe": rec.label, "family": rec.family,
                           "single_method": rec.single_method,
                           "worker": worker_address()}  # fmt: skip
    t0 = time.perf_counter()
    try:
        net = unpack(model)
        if parent is not None:
            if parent[1] is None:
                raise LeptonError(f"its pruned parent failed: {parent[0].get('error')}")
            net, rec = rebuild(net, parent[1]), rec.quantization_only()
        out = rec.apply(net, unpack(ctx))
        row["build_s"] = time.perf_counter() - t0
        row.update(measure(out, subset, ReportConfig(**settings)))
    except Exception as e:  # noqa: BLE001 - one failed candidate is a row, not the search's end
        row["error"] = f"{type(e).__name__}: {e}"
        return row, None
    row["accuracy_subset"] = row.pop("accuracy")
    return row, to_bytes(out)


def full_eval_task(model: Any, built: tuple[dict[str, Any], bytes | None], eval_data: Any) -> float:
    from lepton_nb.compress._data import accuracy

    if built[1] is None:
        raise LeptonError(f"candidate {built[0]['recipe']} was not built")
    return accuracy(rebuild(unpack(model), built[1]), eval_data)


__all__ = ["BASELINE", "PRUNE_METHOD", "QUANT_METHODS", "Recipe", "baseline_task", "build_task",
           "full_eval_task", "rebuild"]  # fmt: skip
