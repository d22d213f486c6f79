"""`import lepton_nb` must start nothing and stay light (no torch, no dask, no threads)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import lepton_nb
from lepton_nb._registry import Registry
from lepton_nb.errors import NotFoundError


def test_import_is_lazy_and_starts_nothing() -> None:
    code = (
        "import sys, threading\n"
        "import lepton_nb\n"
        "heavy = [m for m in ('torch', 'dask', 'distributed', 'plotly', 'papermill', "
        "'ipywidgets', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_public_names() -> None:
    for name in ("launch_cluster", "connect", "fit", "run", "LossCurve", "record", "LeptonError"):
        assert name in lepton_nb.__all__
    assert lepton_nb.LeptonError is lepton_nb.errors.LeptonError
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lepton_nb.nope  # noqa: B018


def test_cluster_use_does_not_initialise_cuda() -> None:
    code = (
        "import sys, lepton_nb\n"
        "lepton_nb.cluster.detect_gpus()\n"
        "import torch\n"
        "assert not torch.cuda.is_initialized()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_registry_lists_known_names() -> None:
    reg: Registry[int] = Registry("widget kind")
    reg.add("b", 2)
    reg.add("a", 1)
    assert reg.get("a") == 1 and list(reg) == ["a", "b"]
    with pytest.raises(NotFoundError, match="unknown widget kind 'c'; choose one of: 'a', 'b'"):
        reg.get("c")
    with pytest.raises(ValueError, match="already registered"):
        reg.add("a", 3)


def test_all_matches_lazy_table() -> None:
    expected = set(lepton_nb._LAZY) | lepton_nb._SUBMODULES | {"__version__"}
    assert set(lepton_nb.__all__) == expected
