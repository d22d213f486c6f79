"""Issue 11 items 1 and 7: a model file never makes ``compress.load`` import or call what it
names, and every malformed file is a CheckpointError that names the file and the problem."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from lepton_nb import compress
from lepton_nb.compress.io import FORMAT, from_bytes
from lepton_nb.errors import CheckpointError
from lepton_nb.models import MLP

PROBE = "lepton_probe_module_for_tests"


class UserNet(nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.fc = nn.Linear(3, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def _file(tmp_path: Path, arch: Any = None, recipe: Any = None, **extra: Any) -> Path:
    payload: dict[str, Any] = {
        "format": FORMAT,
        "arch": arch if arch is not None else {"module": "lepton_nb.models", "qualname": "MLP"},
        "recipe": recipe if recipe is not None else [],
        "state_dict": MLP().state_dict(),
        **extra,
    }
    path = tmp_path / "m.pt"
    torch.save({k: v for k, v in payload.items() if v is not ...}, path)
    return path


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An importable module that leaves a marker file if anything imports it."""
    marker = tmp_path / "imported"
    (tmp_path / f"{PROBE}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\n"
        "import torch\nclass Boom(torch.nn.Module):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return marker


@pytest.mark.parametrize(
    "arch",
    [
        {"module": "os", "qualname": "system", "kwargs": {"command": "touch {marker}"}},
        {"module": "subprocess", "qualname": "run", "kwargs": {"args": ["touch", "{marker}"]}},
        {"module": "builtins", "qualname": "exec", "kwargs": {"source": "open('{marker}','w')"}},
        {"module": PROBE, "qualname": "Boom"},
        {"module": "lepton_nb.models", "qualname": "_Block"},
        {"module": "lepton_nb.models", "qualname": "torch"},
        {"module": "lepton_nb.models", "qualname": "nn.Module"},
        {"module": "lepton_nb.models", "qualname": "F.relu"},
        {"module": "../../etc", "qualname": "passwd"},
        {"module": "os", "qualname": 7},
    ],
    ids=lambda a: f"{a['module']}.{a['qualname']}",
)
def test_hostile_architectures_never_import_or_call(
    tmp_path: Path, probe: Path, arch: dict[str, Any]
) -> None:
    arch = {
        k: (
            {n: str(v).replace("{marker}", str(probe)) for n, v in val.items()}
            if k == "kwargs"
            else val
        )
        for k, val in arch.items()
    }
    path = _file(tmp_path, arch)
    with pytest.raises(CheckpointError, match=r"not an allowed model class|names no model") as e:
        compress.load(path)
    assert str(path) in str(e.value) or "given" in str(e.value)
    assert not probe.exists(), "the file made load() import or call something"
    assert PROBE not in sys.modules


def test_allowed_classes_user_passed_registered_or_model(tmp_path: Path, probe: Path) -> None:
    net = UserNet(width=6)
    path = compress.save(net, tmp_path / "u.pt", init_kwargs={"width": 6})
    with pytest.raises(CheckpointError, match="allow=\\[TheClass\\]"):
        compress.load(path)
    assert isinstance(compress.load(path, allow=[UserNet]), UserNet)
    assert isinstance(compress.load(path, model=UserNet(width=6)), UserNet)
    compress.register_model(UserNet)
    try:
        assert compress.load(path).fc.out_features == 6
    finally:
        from lepton_nb.compress import _allow

        _allow._REGISTERED.pop((UserNet.__module__, UserNet.__qualname__))
    with pytest.raises(Exception, match=r"nn\.Module subclass"):
        compress.register_model(print)  # type: ignore[arg-type]
    assert isinstance(compress.load(_file(tmp_path)), MLP)  # the project's own models
    assert not probe.exists()


def test_garbage_bytes_are_not_called_pickled_objects(tmp_path: Path) -> None:
    for data in (b"", b"\x00garbage\xff" * 100, b"PK\x03\x04truncated"):
        path = tmp_path / "g.pt"
        path.write_bytes(data)
        with pytest.raises(CheckpointError) as e:
            compress.load(path)
        assert "pickled" not in str(e.value) and str(path) in str(e.value), e.value
    with pytest.raises(CheckpointError, match="not a lepton_nb model file"):
        from_bytes(b"not a model")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"recipe": ...}, "no 'recipe' entry"),
        ({"arch": ...}, "no 'arch' entry"),
        ({"recipe": {"kind": "prune"}}, "'recipe' entry is a dict"),
        ({"recipe": [{"kind": "exec"}]}, "recipe step 0 is 'exec'"),
        ({"recipe": [{"nokind": 1}]}, "has no 'kind'"),
        (
            {"recipe": [{"kind": "quantize", "method": "static-int8",
                         "example_shape": [10**6] * 4}]},
            "example_shape",
        ),
        ({"recipe": [{"kind": "quantize", "method": "static-int8"}]}, "example_shape"),
        ({"recipe": [{"kind": "quantize", "method": "os.system"}]}, "unknown quantization"),
        ({"recipe": [{"kind": "quantize", "method": "weight-only-intx", "bits": 99}]}, "bits"),
        (
            {"recipe": [{"kind": "prune", "structured": True, "shapes": {},
                         "attributions": {"1": {"forward": 3}}}]},
            "may not be set",
        ),
        (
            {"recipe": [{"kind": "prune", "structured": True, "attributions": {},
                         "shapes": {"1.weight": [10**5, 10**5]}}]},
            "differs from its stored tensor",
        ),
        (
            {"recipe": [{"kind": "prune", "structured": True, "attributions": {},
                         "shapes": {"9.weight": [10**5, 10**5]}}]},
            "larger than the whole file",
        ),
        (
            {"recipe": [{"kind": "prune", "structured": True, "attributions": {},
                         "shapes": {"nope.weight": [2, 2]}}]},
            "does not fit the model",
        ),
        ({"arch": {"module": "lepton_nb.models", "qualname": "MLP", "kwargs": {"hidden": -3}}},
         "cannot build MLP"),
        ({"arch": {"module": "lepton_nb.models", "qualname": "MLP", "kwargs": [1]}},
         "constructor kwargs"),
    ],
)  # fmt: skip
def test_malformed_files_are_checkpoint_errors_naming_file_and_problem(
    tmp_path: Path, change: dict[str, Any], words: str
) -> None:
    path = _file(tmp_path, **change) if "arch" in change or "recipe" in change else None
    assert path is not None
    with pytest.raises(CheckpointError) as e:
        compress.load(path)
    assert words in str(e.value) and str(path) in str(e.value), e.value


def test_file_objects_are_checked_too() -> None:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "arch": {"module": "os", "qualname": "system"},
                "recipe": [], "state_dict": {}}, buf)  # fmt: skip
    with pytest.raises(CheckpointError, match="not an allowed model class"):
        from_bytes(buf.getvalue())
