"""Notebook widgets: LossCurve (live training curves), ClusterWidget, CompressionExplorer.

Names resolve lazily so importing the package pulls in neither plotly nor ipywidgets, and a
widget module that is missing or broken only fails when its name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    "LossCurve": "lepton_nb.widgets.loss_curve",
    "ClusterWidget": "lepton_nb.widgets.cluster",
    "CompressionExplorer": "lepton_nb.widgets.explorer",
}

__all__ = ["ClusterWidget", "CompressionExplorer", "LossCurve"]

if TYPE_CHECKING:  # pragma: no cover
    from lepton_nb.widgets.cluster import ClusterWidget
    from lepton_nb.widgets.explorer import CompressionExplorer
    from lepton_nb.widgets.loss_curve import LossCurve


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lepton_nb.widgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
