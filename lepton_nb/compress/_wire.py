"""Ship models to and from Dask workers as pickled bytes.

distributed serializes ``nn.Module`` with ``register_generic``, which rebuilds ``__dict__`` with
plain dicts: the hook OrderedDicts come back as ``dict`` and registering a hook afterwards
(pruning, observers) fails with "cannot create weak reference to 'dict' object".  Plain pickle
keeps modules intact.  Results coming back use lepton_nb's own safe model format instead
(:func:`lepton_nb.compress.io.to_bytes`), because quantized FX graph modules do not pickle.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Packed:
    payload: bytes


def pack(obj: Any) -> Packed:
    import cloudpickle  # classes defined in a notebook's __main__ must reach the workers too

    return Packed(cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def unpack(obj: Any) -> Any:
    return pickle.loads(obj.payload) if isinstance(obj, Packed) else obj


__all__ = ["Packed", "pack", "unpack"]
