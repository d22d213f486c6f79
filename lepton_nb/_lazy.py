"""The lazy ``__getattr__``/``__dir__`` pair that package ``__init__``s use (PEP 562).

A package whose public names live in heavy modules (torch, dask, ipywidgets, plotly,
TensorFlow) lists them in a table and imports each module only when its name is first used;
``import lepton_nb`` and every job kernel stay cheap.  The names stay visible to readers and
type checkers through the package's ``if TYPE_CHECKING:`` imports.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_attributes(
    package: str,
    names: Mapping[str, str | tuple[str, str]],
    public: Iterable[str],
    submodules: Iterable[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``.

    ``names`` maps a public name to the module that defines it under the same name, or to
    ``(module, attribute)`` when the attribute is named otherwise; ``submodules`` are
    ``package.<name>`` modules imported on first use.  A resolved name is cached in the
    package's namespace, so ``__getattr__`` runs once per name.
    """
    table = {k: (v, k) if isinstance(v, str) else v for k, v in names.items()}
    subs = frozenset(submodules)
    listed = sorted(public)

    def __getattr__(name: str) -> Any:
        if name in subs:
            return importlib.import_module(f"{package}.{name}")
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(target[0]), target[1])
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return list(listed)

    return __getattr__, __dir__


__all__ = ["lazy_attributes"]
