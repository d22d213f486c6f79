"""The round trip every typed config makes: ``to_dict()`` and ``from_dict(d)``.

A config is a dataclass; inheriting :class:`DictConfig` gives it both methods, so a config
saved in JSON or YAML (a job's parameters, a compressed model's recipe) comes back equal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Self

from lepton_nb.errors import ConfigError


class DictConfig:
    """Mixin for dataclass configs: ``to_dict`` / ``from_dict`` (unknown keys refused)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} settings {unknown}; known: {sorted(fields)}")
        # JSON and YAML have no tuples: a tuple field comes back as a list
        kwargs = {
            k: tuple(v) if isinstance(v, list) and str(fields[k].type).startswith("tuple") else v
            for k, v in d.items()
        }
        return cls(**kwargs)


__all__ = ["DictConfig"]
