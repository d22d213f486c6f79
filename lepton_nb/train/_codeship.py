"""The user's code travels with the run.

A model or dataset class imported from a module next to the notebook (``from mymodels import
Net``) is pickled *by reference*: the workers must import ``mymodels`` themselves, and workers
started elsewhere (``dask worker`` in another directory, a gateway, a batch job) cannot.  Before
the ranks start, :func:`ship_user_code` asks the workers which of the client's own modules
(imported, not installed, not the standard library) they cannot import, and pickles the
strategy and payload with cloudpickle *by value* for those modules: the classes and functions
travel inside the payload, and nothing is left installed on the workers.  Where that cannot
work (a compiled module, an object cloudpickle cannot copy), it raises a ConfigError naming the
module and the fix, before training starts.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import sys
from typing import Any

from lepton_nb.errors import ConfigError

# the Payload fields that hold the user's objects (the rest is lepton_nb's own config)
_USER_FIELDS = ("model", "train_data", "val_data", "loss", "optimizer")
_FIX = (
    "install it on the workers (pip install, or a shared PYTHONPATH), or upload it once "
    "with cluster.client.upload_file('{file}')"
)


@functools.lru_cache(maxsize=1)
def _installed_top_levels() -> frozenset[str]:
    from importlib.metadata import packages_distributions

    return frozenset(packages_distributions())


def _is_user_module(name: str, module: Any) -> bool:
    top = name.partition(".")[0]
    if name == "__main__" or top in sys.stdlib_module_names or top in _installed_top_levels():
        return False
    path = getattr(module, "__file__", None)
    if not isinstance(path, str):
        return False
    parts = os.path.normpath(path).split(os.sep)
    return "site-packages" not in parts and "dist-packages" not in parts


def user_modules() -> dict[str, Any]:
    """Top-level modules this process imported from the user's own files."""
    found: dict[str, Any] = {}
    for name, module in list(sys.modules.items()):
        if module is not None and "." not in name and _is_user_module(name, module):
            found[name] = module
    return found


def _missing_here(names: list[str]) -> list[str]:
    """Runs on each worker: the names it cannot import."""
    out = []
    for name in names:
        try:
            if importlib.util.find_spec(name) is None:
                out.append(name)
        except (ImportError, ValueError):
            out.append(name)
    return out


class ByValue:
    """A cloudpickle blob that unpickles (on the worker) into the original object."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        import cloudpickle

        return cloudpickle.loads, (self.blob,)


def _check_shippable(module: Any, workers: list[str]) -> None:
    path = str(getattr(module, "__file__", ""))
    if not path.endswith(".py"):
        raise ConfigError(
            f"module {module.__name__!r} ({path}) is not installed on the workers "
            f"{', '.join(workers)} and is not pure Python, so it cannot be sent with the run; "
            + _FIX.format(file=path)
        )


def _by_value(obj: Any, modules: dict[str, Any], workers: list[str]) -> ByValue:
    import pickle

    import cloudpickle

    for m in modules.values():
        cloudpickle.register_pickle_by_value(m)
    try:
        return ByValue(cloudpickle.dumps(obj))
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        names = ", ".join(repr(n) for n in modules)
        files = ", ".join(str(getattr(m, "__file__", "")) for m in modules.values())
        raise ConfigError(
            f"module(s) {names} are not installed on the workers {', '.join(workers)}, and "
            f"sending their code with the run failed ({type(e).__name__}: {e}); "
            + _FIX.format(file=files)
        ) from e
    finally:
        for m in modules.values():
            cloudpickle.unregister_pickle_by_value(m)


def ship_user_code(client: Any, strategy: Any, payload: Any) -> tuple[Any, Any]:
    """``(strategy, payload)`` as they should be submitted: unchanged when the workers can
    import every user module this process uses, else wrapped to travel by value."""
    mods = user_modules()
    if not mods:
        return strategy, payload
    per_worker = client.run(_missing_here, sorted(mods))
    missing_names = sorted({n for names in per_worker.values() for n in names})
    if not missing_names:
        return strategy, payload
    workers = sorted(a for a, names in per_worker.items() if names)
    missing = {n: mods[n] for n in missing_names}
    for m in missing.values():
        _check_shippable(m, workers)
    shipped_strategy = _by_value(strategy, missing, workers)
    if payload is None:
        return shipped_strategy, None
    if dataclasses.is_dataclass(payload) and not isinstance(payload, type):
        # Wrap the user's objects, not the Payload: strategies' prepare() reads its fields.
        fields = {
            name: _by_value(getattr(payload, name), missing, workers)
            for name in _USER_FIELDS
            if hasattr(payload, name)
        }
        return shipped_strategy, dataclasses.replace(payload, **fields)
    return shipped_strategy, _by_value(payload, missing, workers)


__all__ = ["ByValue", "ship_user_code", "user_modules"]
