"""Seeds a job's kernel at start-up from ``LEPTON_SEED`` (run via IPKernelApp.exec_lines).

``random`` and numpy are seeded at once; torch is seeded when the notebook first imports it
(an import hook), so kernels that never use torch do not pay for importing it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import random
import sys
from types import ModuleType
from typing import Any


class _SeedTorchOnImport(importlib.abc.MetaPathFinder):
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader, seed = spec.loader, self.seed
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            module.manual_seed(seed)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install(seed: int | None = None) -> int | None:
    if seed is None:
        raw = os.environ.get("LEPTON_SEED")
        if raw is None:
            return None
        seed = int(raw)
    random.seed(seed)
    try:
        import numpy

        numpy.random.seed(seed % 2**32)
    except ImportError:
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    else:
        sys.meta_path.insert(0, _SeedTorchOnImport(seed))
    return seed


install()
