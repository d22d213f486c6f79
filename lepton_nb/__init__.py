"""lepton_nb: a Jupyter-native platform for distributed training, compression and notebook jobs.

Importing this package starts nothing and imports neither torch nor dask: every public name is
resolved lazily on first use, so ``import lepton_nb`` stays cheap in a kernel and in workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lepton_nb._lazy import lazy_attributes

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "launch_cluster": "lepton_nb.cluster",
    "connect": "lepton_nb.cluster",
    "clusters": "lepton_nb.cluster",
    "Cluster": "lepton_nb.cluster",
    "ClusterWidget": "lepton_nb.widgets.cluster",
    "fit": "lepton_nb.train",
    "run": "lepton_nb.train",
    "FitResult": "lepton_nb.train",
    "RunResult": "lepton_nb.train",
    "TrainContext": "lepton_nb.train",
    "Callback": "lepton_nb.train.callbacks",
    "LossCurve": "lepton_nb.widgets.loss_curve",
    "CompressionExplorer": "lepton_nb.widgets.explorer",
    "record": "lepton_nb.jobs.record",
    "LeptonError": "lepton_nb.errors",
}
_SUBMODULES = {
    "cluster",
    "train",
    "compress",
    "jobs",
    "datasets",
    "models",
    "widgets",
    "errors",
    "tutorials",
}

__all__ = [
    "Callback",
    "Cluster",
    "ClusterWidget",
    "CompressionExplorer",
    "FitResult",
    "LeptonError",
    "LossCurve",
    "RunResult",
    "TrainContext",
    "__version__",
    "cluster",
    "clusters",
    "compress",
    "connect",
    "datasets",
    "errors",
    "fit",
    "jobs",
    "launch_cluster",
    "models",
    "record",
    "run",
    "train",
    "tutorials",
    "widgets",
]

if TYPE_CHECKING:  # pragma: no cover
    from lepton_nb import (
        cluster,
        compress,
        datasets,
        errors,
        jobs,
        models,
        train,
        tutorials,
        widgets,
    )
    from lepton_nb.cluster import Cluster, clusters, connect, launch_cluster
    from lepton_nb.errors import LeptonError
    from lepton_nb.jobs.record import record
    from lepton_nb.train import FitResult, RunResult, TrainContext, fit, run
    from lepton_nb.train.callbacks import Callback
    from lepton_nb.widgets.cluster import ClusterWidget
    from lepton_nb.widgets.explorer import CompressionExplorer
    from lepton_nb.widgets.loss_curve import LossCurve


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__, submodules=_SUBMODULES)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from lepton_nb.server import _jupyter_server_extension_points as points

    return points()


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "lepton-nb"}]
