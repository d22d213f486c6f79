"""The jobs namespace: contract names, lazy imports, and the kernel's seeding hook."""

from __future__ import annotations

import subprocess
import sys


def test_contract_names_are_functions_even_after_submodule_imports() -> None:
    import lepton_nb as ln
    import lepton_nb.jobs.runner
    import lepton_nb.jobs.sweeper
    from lepton_nb import jobs

    for name in ("run", "list", "get", "rerun", "compare", "cancel", "sweep"):
        assert callable(getattr(jobs, name)) and not isinstance(getattr(jobs, name), type(jobs))
    assert jobs.list is jobs.list_jobs
    assert ln.record.__module__ == "lepton_nb.jobs.record" and callable(ln.record)


def test_kernel_seed_hook_is_light_and_seeds_random_numpy_and_torch() -> None:
    code = (
        "import os, sys, random\n"
        "os.environ['LEPTON_SEED'] = '123'\n"
        "import lepton_nb.jobs._seed\n"
        "heavy = [m for m in ('numpy', 'torch', 'pandas', 'papermill', 'pydantic', 'dask') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "a = random.random()\n"
        "import numpy as np\n"
        "b = float(np.random.rand())\n"
        "import torch\n"
        "c = float(torch.rand(1))\n"
        "print(a, b, c)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    import random

    import numpy as np
    import torch

    random.seed(123)
    np.random.seed(123)
    assert out[0] == repr(random.random()) and float(out[1]) == float(np.random.rand())
    torch.manual_seed(123)
    assert float(out[2]) == float(torch.rand(1))
