"""The registry of compression methods a variant can use (the explorer's menu).

Each method takes the model, a strength (sparsity, temperature, or none) and a context holding
the data some methods need, and returns a new model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lepton_nb._config import DictConfig
from lepton_nb._registry import Registry
from lepton_nb.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn


@dataclass
class VariantContext:
    """Data that some methods need; passed to the Dask task with the model."""

    calibration_data: Any = None
    example_input: Any = None
    train_data: Any = None
    fine_tune_epochs: int = 1
    student: Any = None  # an untrained student model, for "distill"
    fit_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodSpec:
    """A compression method: how to build a variant, and what its strength means."""

    build: Callable[[nn.Module, float | None, VariantContext], nn.Module]
    strength: str | None = None  # what the strength means: "sparsity", "temperature", "bits"
    low: float = 0.0
    high: float = 0.0
    default: float | None = None
    # set for quantization methods (lepton_nb.compress.quantize.register_quantizer): what
    # quantize(model, name) runs and how compress.load rebuilds such a model
    quantizer: Any = None


@dataclass
class Variant(DictConfig):
    """One point of the trade-off: a method and its strength; round-trips to a dict."""

    method: str
    strength: float | None = None

    @property
    def label(self) -> str:
        return self.method if self.strength is None else f"{self.method}@{self.strength:g}"


# Every compression method, once: pruning and distillation below, quantization methods in
# quantize.py (register_quantizer), which lepton_nb.compress imports.
METHODS: Registry[MethodSpec] = Registry("compression method")


def _prune_l1(model: nn.Module, strength: float | None, ctx: VariantContext) -> nn.Module:
    from lepton_nb.compress.prune import prune

    return prune(model, amount=float(strength or 0.0), structured=False, scope="global")


def _prune_structured(model: nn.Module, strength: float | None, ctx: VariantContext) -> nn.Module:
    from lepton_nb.compress.prune import prune

    return prune(
        model,
        amount=float(strength or 0.0),
        structured=True,
        example_input=ctx.example_input,
        train_data=ctx.train_data,
        fine_tune_epochs=ctx.fine_tune_epochs,
        **ctx.fit_kwargs,
    )


def _distill(model: nn.Module, strength: float | None, ctx: VariantContext) -> nn.Module:
    from lepton_nb.compress.distill import distill

    if ctx.student is None or ctx.train_data is None:
        raise ConfigError("the distill method needs a student model and train_data")
    return distill(
        model,
        ctx.student,
        ctx.train_data,
        temperature=float(strength or 4.0),
        epochs=ctx.fine_tune_epochs,
        **ctx.fit_kwargs,
    )


METHODS.add("prune-l1", MethodSpec(_prune_l1, "sparsity", 0.0, 0.95, 0.5))
METHODS.add("prune-structured", MethodSpec(_prune_structured, "sparsity", 0.0, 0.9, 0.5))
METHODS.add("distill", MethodSpec(_distill, "temperature", 1.0, 10.0, 4.0))


def make_variant(
    model: nn.Module, variant: Variant, ctx: VariantContext | None = None
) -> nn.Module:
    """Build ``variant`` of ``model`` (a new model; ``model`` is not changed)."""
    spec = METHODS.get(variant.method)
    if spec.strength is not None and variant.strength is not None:
        if not spec.low <= variant.strength <= spec.high:
            raise ConfigError(
                f"{variant.method} {spec.strength} must be in [{spec.low}, {spec.high}], "
                f"got {variant.strength}"
            )
    return spec.build(model, variant.strength, ctx or VariantContext())


def build_and_measure(
    model: nn.Module,
    variant: Variant,
    ctx: VariantContext,
    eval_data: Any,
    settings: dict[str, Any],
) -> tuple[dict[str, Any], nn.Module]:
    """One explorer task: build the variant and measure it (runs on a Dask worker)."""
    from lepton_nb.compress.report import ReportConfig, measure

    out = make_variant(model, variant, ctx)
    row = {"label": variant.label, **variant.to_dict()}
    row.update(measure(out, eval_data, ReportConfig(**settings)))
    return row, out


__all__ = [
    "METHODS",
    "MethodSpec",
    "Variant",
    "VariantContext",
    "build_and_measure",
    "make_variant",
]
