"""Which model classes a model file may name: loading never imports or calls anything else.

A file names its architecture as ``{"module": ..., "qualname": ...}``. That text is data from
whoever wrote the file, so it is looked up in an allowlist *before* any import: lepton_nb's own
models, classes registered with :func:`register_model`, and classes passed as ``allow=[...]``.
A name outside the list is a :class:`CheckpointError`, whatever module it names (``os``,
``subprocess``, ``builtins``...), and nothing is imported or called. Passing ``model=`` skips
the lookup altogether: the caller built the skeleton.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from typing import Any

from lepton_nb.errors import CheckpointError, ConfigError

# Modules whose public nn.Module classes every file may name (imported only after the check).
PROJECT_MODULES = ("lepton_nb.models",)
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_REGISTERED: dict[tuple[str, str], type] = {}


def _require_module_class(cls: Any, what: str) -> type:
    from torch import nn

    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError(f"{what} must be an nn.Module subclass, got {cls!r}")
    return cls


def register_model(cls: type) -> type:
    """Allow ``cls`` to be rebuilt by name by :func:`lepton_nb.compress.load` (a decorator too).

    Register only classes whose constructor is safe to call with the keyword arguments any
    file may carry.
    """
    _require_module_class(cls, "register_model(cls)")
    _REGISTERED[(cls.__module__, cls.__qualname__)] = cls
    return cls


def registered_models() -> list[str]:
    return sorted(f"{m}.{q}" for m, q in _REGISTERED)


def resolve_class(arch: Any, allow: Iterable[type] | None, where: str) -> type:
    """The allowed class ``arch`` names; a CheckpointError before any import otherwise."""
    if not isinstance(arch, dict):
        raise CheckpointError(f"{where} has no valid 'arch' entry; write it with compress.save()")
    module, qualname = arch.get("module"), arch.get("qualname")
    if not (isinstance(module, str) and isinstance(qualname, str)):
        raise CheckpointError(f"{where} names no model class (arch without module/qualname)")
    name = f"{module}.{qualname}"[:200]
    allowed = [_require_module_class(c, "allow=[...] items") for c in allow or ()]
    if _DOTTED.match(module) and _DOTTED.match(qualname):
        for cls in allowed:
            if (cls.__module__, cls.__qualname__) == (module, qualname):
                return cls
        # the class the caller passed, saved from another module (e.g. a notebook's __main__)
        same_name = [c for c in allowed if c.__qualname__ == qualname]
        if len(same_name) == 1:
            return same_name[0]
        if (module, qualname) in _REGISTERED:
            return _REGISTERED[(module, qualname)]
        if module in PROJECT_MODULES and "." not in qualname and not qualname.startswith("_"):
            found = getattr(importlib.import_module(module), qualname, None)
            from torch import nn

            if (
                isinstance(found, type)
                and issubclass(found, nn.Module)
                and found.__module__ == module
            ):
                return found
    raise CheckpointError(
        f"{where} names the model class {name!r}, which is not an allowed model class: loading "
        "never imports or calls what a file names. If you trust the file and that class, pass "
        "model=<a fresh instance>, or allow=[TheClass], or compress.register_model(TheClass)"
    )


__all__ = ["PROJECT_MODULES", "register_model", "registered_models", "resolve_class"]
