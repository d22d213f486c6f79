"""Pruning: unstructured L1 (made permanent) and structured channel pruning that physically
shrinks layers (Torch-Pruning), optionally iterative with fine-tuning through ``train.fit``.

Unstructured pruning only zeroes weights: dense kernels still multiply the zeros, so bytes and
latency do not drop.  Structured pruning removes whole filters/neurons and every dependent input
channel, so parameters, bytes and latency really fall.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lepton_nb._config import DictConfig
from lepton_nb._registry import Registry
from lepton_nb.compress._recipe import copy_for_compression, stamp
from lepton_nb.errors import CompressionError, ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class PruneConfig(DictConfig):
    """How to prune; round-trips through :meth:`to_dict` / :meth:`from_dict`."""

    amount: float = 0.5
    structured: bool = False
    scope: str = "layer"
    steps: int = 1
    fine_tune_epochs: int = 1
    # structured only: per-layer fractions of output channels (module name -> amount), e.g.
    # guided by sensitivity; layers not named get ``amount``
    layer_amounts: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for what, value in [("amount", self.amount), *self.layer_amounts.items()]:
            if not 0.0 <= float(value) < 1.0:
                raise ConfigError(
                    f"{what} must be in [0, 1) (the fraction of weights or channels to "
                    f"remove), got {value}"
                )
        self.layer_amounts = {str(k): float(v) for k, v in self.layer_amounts.items()}
        SCOPES.get(self.scope)
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")


# scope name -> whether channel/weight ranking is global across layers
SCOPES: Registry[bool] = Registry("pruning scope")
SCOPES.add("layer", False)
SCOPES.add("global", True)


def _prunable(model: nn.Module, ignored: Sequence[nn.Module]) -> list[tuple[str, nn.Module]]:
    from torch import nn

    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    skip = {id(m) for m in ignored}
    return [(n, m) for n, m in model.named_modules() if isinstance(m, kinds) and id(m) not in skip]


def _nothing(model: nn.Module, what: str) -> CompressionError:
    return CompressionError(
        f"nothing to compress: {type(model).__name__} has no {what} to prune; pruning needs "
        "Linear or Conv layers (not counting ignored_layers and the output layer)"
    )


def _unstructured(
    model: nn.Module,
    cfg: PruneConfig,
    ignored: Sequence[nn.Module],
    fine_tune: Callable[[nn.Module], None] | None,
) -> None:
    import torch.nn.utils.prune as tprune

    layers = _prunable(model, ignored)
    if not layers:
        raise _nothing(model, "Linear or Conv weights")
    if SCOPES.get(cfg.scope):
        params = [(m, "weight") for _, m in layers]
        tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=cfg.amount)
    else:
        for _, m in layers:
            tprune.l1_unstructured(m, "weight", amount=cfg.amount)
    if fine_tune is not None:  # with the masks still attached, so pruned weights stay zero
        fine_tune(model)
    for _, m in layers:  # make it permanent: drop the mask and the weight_orig copy
        tprune.remove(m, "weight")


_STRUCTURED_OK = (
    "Linear", "Conv1d", "Conv2d", "Conv3d", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
    "LayerNorm", "GroupNorm", "PReLU",
)  # fmt: skip


# the module attributes that encode a pruned layer's size (recorded so load() can rebuild it)
_SHAPE_ATTRS = {
    "in_channels", "out_channels", "in_features", "out_features", "num_features",
    "normalized_shape", "num_channels", "num_parameters",
}  # fmt: skip


def _check_structured_layers(model: nn.Module) -> None:
    for name, m in model.named_modules():
        own = list(m.parameters(recurse=False))
        if own and type(m).__name__ not in _STRUCTURED_OK:
            raise CompressionError(
                f"structured pruning cannot handle layer {name!r} ({type(m).__name__}); it "
                f"supports {', '.join(_STRUCTURED_OK)}. Use structured=False, or prune a model "
                "without this layer"
            )


def _output_layer(model: nn.Module) -> nn.Module | None:
    layers = _prunable(model, ())
    return layers[-1][1] if layers else None


def _structured(
    model: nn.Module,
    cfg: PruneConfig,
    example_input: torch.Tensor | None,
    ignored: Sequence[nn.Module],
    fine_tune: Callable[[nn.Module], None] | None,
) -> dict[str, Any]:
    import torch_pruning as tp

    if example_input is None:
        raise ConfigError(
            "structured pruning needs example_input (one batch of inputs, e.g. x[:1]) to trace "
            "which channels depend on each other"
        )
    _check_structured_layers(model)
    out_layer = _output_layer(model)
    ignored = [*ignored, *([out_layer] if out_layer is not None else [])]
    if not _prunable(model, ignored):
        raise _nothing(model, "hidden Linear or Conv channels")
    modules = dict(model.named_modules())
    unknown = sorted(set(cfg.layer_amounts) - set(modules))
    if unknown:
        raise ConfigError(f"layer_amounts names unknown layers {unknown}; use names from "
                          "model.named_modules()")  # fmt: skip
    pruner = tp.pruner.MetaPruner(
        model,
        example_input,
        importance=tp.importance.MagnitudeImportance(p=1),
        pruning_ratio=cfg.amount,
        pruning_ratio_dict={modules[n]: a for n, a in cfg.layer_amounts.items()} or None,
        iterative_steps=cfg.steps,
        ignored_layers=ignored,
        global_pruning=SCOPES.get(cfg.scope),
    )
    for _ in range(cfg.steps):
        pruner.step()
        if fine_tune is not None:
            fine_tune(model)
    return {
        name: {k: v for k, v in attrs.items() if k in _SHAPE_ATTRS}
        for name, attrs in tp.state_dict(model)["attributions"].items()
        if any(k in _SHAPE_ATTRS for k in attrs)
    }


def prune(
    model: nn.Module,
    amount: float = 0.5,
    structured: bool = False,
    scope: str = "layer",
    example_input: torch.Tensor | None = None,
    *,
    ignored_layers: Sequence[nn.Module] = (),
    train_data: Any = None,
    steps: int = 1,
    fine_tune_epochs: int = 1,
    cluster: Any = None,
    layer_amounts: dict[str, float] | None = None,
    **fit_kwargs: Any,
) -> nn.Module:
    """Return a pruned copy of ``model``.

    With ``structured=True`` whole channels are removed (the output layer is kept) and, when
    ``train_data`` is given, each of ``steps`` pruning steps is followed by ``fine_tune_epochs``
    of :func:`lepton_nb.train.fit` (``cluster`` and ``fit_kwargs`` are passed through).
    ``layer_amounts`` (structured only) sets per-layer fractions that override ``amount``.
    """
    cfg = PruneConfig(amount, structured, scope, steps, fine_tune_epochs, dict(layer_amounts or {}))
    if cfg.layer_amounts and not structured:
        raise ConfigError("layer_amounts applies to structured=True pruning only")
    work = copy_for_compression(model)
    by_id = {id(m): n for n, m in model.named_modules()}
    work_mods = dict(work.named_modules())
    ignored = [work_mods[by_id[id(m)]] for m in ignored_layers if id(m) in by_id]
    fine_tune = None
    if train_data is not None:
        fine_tune = _fine_tuner(train_data, cfg.fine_tune_epochs, cluster, fit_kwargs)
    step: dict[str, Any] = {"kind": "prune", **cfg.to_dict()}
    if structured:
        step["attributions"] = _structured(work, cfg, example_input, ignored, fine_tune)
        step["shapes"] = {k: list(v.shape) for k, v in work.state_dict().items()}
    else:
        _unstructured(work, cfg, ignored, fine_tune)
    return stamp(work.eval(), model, step)


def _fine_tuner(
    train_data: Any, epochs: int, cluster: Any, fit_kwargs: dict[str, Any]
) -> Callable[[nn.Module], None]:
    def run(model: nn.Module) -> None:
        from lepton_nb.train import fit

        result = fit(model, train_data, cluster=cluster, epochs=epochs, **fit_kwargs)
        # copy back in place: the pruner holds references to these very modules
        model.load_state_dict(result.model.state_dict())
        model.eval()

    return run


__all__ = ["SCOPES", "PruneConfig", "prune"]
