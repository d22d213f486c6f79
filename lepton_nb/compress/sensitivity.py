"""Per-layer sensitivity: perturb one layer at a time at several levels, measure accuracy.

Every (layer, level) variant is one Dask task, so a cluster evaluates them in parallel.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lepton_nb._registry import Registry
from lepton_nb.cluster._client import worker_address
from lepton_nb.compress._data import accuracy, require_module_types
from lepton_nb.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

Perturb = Callable[["nn.Module", float], None]
PERTURBATIONS: Registry[Perturb] = Registry("sensitivity method")
DEFAULT_LEVELS = {"prune": (0.25, 0.5, 0.75, 0.9), "quantize": (8.0, 4.0, 2.0)}


@PERTURBATIONS.register("prune")
def _prune_layer(layer: nn.Module, level: float) -> None:
    """L1-unstructured pruning of ``level`` of this layer's weights."""
    import torch.nn.utils.prune as tprune

    if not 0.0 <= level < 1.0:
        raise ConfigError(f"prune levels are fractions in [0, 1), got {level}")
    tprune.l1_unstructured(layer, "weight", amount=level)
    tprune.remove(layer, "weight")


@PERTURBATIONS.register("quantize")
def _quantize_layer(layer: nn.Module, level: float) -> None:
    """Round this layer's weights to ``level`` bits (symmetric, per tensor) to see the loss."""
    import torch

    bits = int(level)
    if not 2 <= bits <= 16:
        raise ConfigError(f"quantize levels are bit widths in [2, 16], got {level}")
    w = layer.weight.data
    assert isinstance(w, torch.Tensor)
    qmax = 2 ** (bits - 1) - 1
    scale = w.abs().max().clamp(min=1e-12) / qmax
    layer.weight.data = torch.clamp(torch.round(w / scale), -qmax, qmax) * scale


def _one_variant(
    model: nn.Module, layer: str, method: str, level: float, eval_data: Any
) -> dict[str, Any]:
    from lepton_nb.compress._wire import unpack

    variant = copy.deepcopy(unpack(model)).eval()
    PERTURBATIONS.get(method)(dict(variant.named_modules())[layer], level)
    acc = accuracy(variant, eval_data)
    return {
        "layer": layer,
        "method": method,
        "level": level,
        "accuracy": acc,
        "worker": worker_address(),
    }


def sensitivity(
    model: nn.Module,
    eval_data: Any,
    cluster: Any = None,
    method: str = "prune",
    levels: Sequence[float] | None = None,
    layers: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Accuracy when each layer alone is perturbed by ``method`` at each of ``levels``.

    Returns a DataFrame with ``layer``, ``method``, ``level``, ``accuracy``, ``worker`` and
    ``accuracy_drop`` (points below the unperturbed model).  With ``cluster`` every variant is
    a task on it; without, they run here one after another.
    """
    import pandas as pd
    from torch import nn

    PERTURBATIONS.get(method)
    levels = tuple(levels) if levels is not None else DEFAULT_LEVELS[method]
    found = require_module_types(model, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d), "analyse")
    if layers is None:
        layers = found
    unknown = sorted(set(layers) - set(found))
    if unknown:
        raise ConfigError(f"unknown layers {unknown}; choose among {found}")
    base = accuracy(model, eval_data)
    jobs = [(layer, level) for layer in layers for level in levels]
    if cluster is None:
        rows = [_one_variant(model, la, method, lv, eval_data) for la, lv in jobs]
    else:
        from lepton_nb.cluster._client import client_of
        from lepton_nb.compress._wire import pack

        client = client_of(cluster)

        m_fut, d_fut = client.scatter([pack(model), eval_data], broadcast=True)
        futures = [
            client.submit(_one_variant, m_fut, la, method, lv, d_fut, pure=False) for la, lv in jobs
        ]
        rows = client.gather(futures)
    table = pd.DataFrame(rows)
    table["accuracy_drop"] = (base - table["accuracy"]) * 100
    table.attrs["baseline_accuracy"] = base
    return table


__all__ = ["DEFAULT_LEVELS", "PERTURBATIONS", "sensitivity"]
