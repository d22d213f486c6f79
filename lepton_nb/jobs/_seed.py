"""Seeds a job's kernel at start-up from ``LEPTON_SEED`` (run via IPKernelApp.exec_lines).

``random`` is seeded at once; numpy and torch are seeded when the notebook first imports them
(an import hook), so kernels that never use them do not pay for importing them.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import random
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

_SEEDERS: dict[str, Callable[[ModuleType, int], None]] = {
    "numpy": lambda np, seed: np.random.seed(seed % 2**32),
    "torch": lambda torch, seed: torch.manual_seed(seed),
}


class _SeedOnImport(importlib.abc.MetaPathFinder):
    """Runs the seeder of a module right after the module is first executed."""

    def __init__(self, seed: int, names: set[str]) -> None:
        self.seed, self.names = seed, names

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in self.names:
            return None
        self.names.discard(name)
        if not self.names:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        original, seed, seeder = spec.loader.exec_module, self.seed, _SEEDERS[name]

        def exec_module(module: ModuleType) -> None:
            original(module)
            seeder(module, seed)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install(seed: int | None = None) -> int | None:
    if seed is None:
        raw = os.environ.get("LEPTON_SEED")
        if raw is None:
            return None
        seed = int(raw)
    random.seed(seed)
    pending = set()
    for name, seeder in _SEEDERS.items():
        if name in sys.modules:
            seeder(sys.modules[name], seed)
        else:
            pending.add(name)
    if pending:
        sys.meta_path.insert(0, _SeedOnImport(seed, pending))
    return seed


install()

__all__ = ["install"]
