from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from lepton_nb import compress
from lepton_nb.datasets import Split
from lepton_nb.errors import CheckpointError
from lepton_nb.models import MLP

Build = Callable[[nn.Module, torch.Tensor], nn.Module]

VARIANTS: dict[str, tuple[str, Build]] = {
    "fp32": ("lenet", lambda m, x: m),
    "dynamic": ("mlp", lambda m, x: compress.quantize(m, "dynamic-int8")),
    "static": ("lenet", lambda m, x: compress.quantize(m, "static-int8", calibration_data=x)),
    "static-pc": (
        "lenet",
        lambda m, x: compress.quantize(m, "static-int8", calibration_data=x, per_channel=True),
    ),
    "weight-only": ("mlp", lambda m, x: compress.quantize(m, "weight-only-int8")),
    "intx4": ("mlp", lambda m, x: compress.quantize(m, "weight-only-intx", bits=4)),
    "l1": ("lenet", lambda m, x: compress.prune(m, 0.7, scope="global")),
    "structured": ("lenet", lambda m, x: compress.prune(m, 0.5, True, example_input=x[:1])),
    "structured+static": (
        "lenet",
        lambda m, x: compress.quantize(
            compress.prune(m, 0.5, True, example_input=x[:1]), "static-int8", calibration_data=x
        ),
    ),
    "structured+dynamic": (
        "lenet",
        lambda m, x: compress.quantize(compress.prune(m, 0.5, True, example_input=x[:1])),
    ),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_round_trip_gives_identical_outputs(
    name: str,
    trained_lenet: nn.Module,
    trained_mlp: nn.Module,
    calib: torch.Tensor,
    split: Split,
    tmp_path: Path,
) -> None:
    which, build = VARIANTS[name]
    model = build(trained_lenet if which == "lenet" else trained_mlp, calib)
    path = compress.save(model, tmp_path / f"{name}.pt")
    loaded = compress.load(path)
    x = split.test.tensors[0][:64]
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert type(loaded).__name__ == type(model).__name__
    assert compress.report.__module__  # loaded models are measurable like any other
    assert compress.report({"m": loaded}, split.test, runs=2).loc["m", "bytes"] > 0


def test_init_kwargs_rebuild_non_default_architectures(tmp_path: Path) -> None:
    model = MLP(hidden=32)
    with pytest.raises(CheckpointError, match="does not match"):
        compress.load(compress.save(model, tmp_path / "a.pt"))
    loaded = compress.load(compress.save(model, tmp_path / "b.pt", init_kwargs={"hidden": 32}))
    assert loaded[1].out_features == 32
    assert compress.load(tmp_path / "a.pt", model=MLP(hidden=32))[1].out_features == 32


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def test_refuses_files_with_pickled_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    with path.open("wb") as f:
        pickle.dump({"format": compress.io.FORMAT, "x": _Evil()}, f)
    with pytest.raises(CheckpointError, match="not a lepton_nb model file"):
        compress.load(path)  # a bare pickle is not even a torch.save archive
    torch.save({"format": compress.io.FORMAT, "x": _Evil()}, path)
    with pytest.raises(CheckpointError, match=r"refusing to load .* pickled Python objects"):
        compress.load(path)


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no compressed model"):
        compress.load(tmp_path / "nope.pt")
    torch.save({"weights": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"compress\.save"):
        compress.load(tmp_path / "other.pt")
