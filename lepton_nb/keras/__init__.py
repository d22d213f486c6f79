"""Keras (tf-keras) helpers for ``ln.run(train_fn, cluster=..., framework="tensorflow")``.

:class:`LeptonCallback` is a ``tf.keras.callbacks.Callback`` that sends Keras' per-batch logs
and per-epoch validation metrics through lepton_nb's event stream, so ``LossCurve``, the
progress bar, ``result.history`` and ``ln.record`` work as they do for PyTorch.  Importing this
package does not import TensorFlow; resolving ``LeptonCallback`` does (in a rank process,
where ``TF_USE_LEGACY_KERAS=1`` is already set).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lepton_nb._lazy import lazy_attributes

if TYPE_CHECKING:  # pragma: no cover
    from lepton_nb.keras._callback import LeptonCallback

__all__ = ["LeptonCallback"]


_LAZY = {"LeptonCallback": "lepton_nb.keras._callback"}
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
