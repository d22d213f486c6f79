"""The recipe a compressed model carries, so save/load can rebuild its structure safely.

Loading never unpickles code: :func:`lepton_nb.compress.load` builds the original class (only
if it is an allowed model class, see ``_allow.py``), replays the recorded structural steps
(pruning shapes, quantization wrappers) on a fresh instance and then loads tensors with
``weights_only=True``.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

_RECIPE = "_lepton_recipe"
_ARCH = "_lepton_arch"
# The original class object, kept in memory only (never saved): an in-process round trip
# (e.g. the explorer's workers sending results back) may rebuild it without a name lookup.
_CLS = "_lepton_cls"


def class_of(model: nn.Module) -> type:
    return getattr(model, _CLS, None) or type(model)


def arch_of(model: nn.Module) -> dict[str, Any]:
    arch = getattr(model, _ARCH, None)
    if arch is not None:
        return dict(arch)
    cls = type(model)
    return {"module": cls.__module__, "qualname": cls.__qualname__, "kwargs": {}}


def recipe_of(model: nn.Module) -> list[dict[str, Any]]:
    return [dict(step) for step in getattr(model, _RECIPE, [])]


def copy_for_compression(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode that remembers the original architecture."""
    arch = arch_of(model)
    recipe = recipe_of(model)
    out = copy.deepcopy(model).eval()
    object.__setattr__(out, _ARCH, arch)
    object.__setattr__(out, _RECIPE, recipe)
    object.__setattr__(out, _CLS, class_of(model))
    return out


def stamp(out: nn.Module, source: nn.Module, step: dict[str, Any]) -> nn.Module:
    """Record ``step`` on ``out`` after the steps ``source`` already had."""
    object.__setattr__(out, _ARCH, arch_of(source))
    object.__setattr__(out, _RECIPE, [*recipe_of(source), step])
    object.__setattr__(out, _CLS, class_of(source))
    return out


__all__ = [
    "arch_of",
    "class_of",
    "copy_for_compression",
    "recipe_of",
    "stamp",
]
