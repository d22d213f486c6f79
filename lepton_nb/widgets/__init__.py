"""Notebook widgets: LossCurve (live training curves), ClusterWidget, CompressionExplorer.

Names resolve lazily so importing the package pulls in neither plotly nor ipywidgets, and a
widget module that is missing or broken only fails when its name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lepton_nb._lazy import lazy_attributes

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


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
