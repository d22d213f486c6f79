"""environment.yml and pyproject.toml must name the same packages."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"pytorch": "torch"}
# conda-only build tools, not Python dependencies
CONDA_ONLY = {"python", "pip", "nodejs"}


def _name(req: str) -> str:
    name = re.split(r"[\s<>=!~\[;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")
    return CONDA_TO_PYPI.get(name, name)


def test_environment_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    wanted |= {_name(r) for r in project["optional-dependencies"]["dev"]}

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    have: set[str] = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            have |= {_name(r) for r in dep["pip"] if not r.startswith("-")}
        else:
            have.add(_name(dep))
    have -= CONDA_ONLY
    assert have == wanted, {
        "only in environment.yml": have - wanted,
        "only in pyproject": wanted - have,
    }


def test_gpu_extra_pins_dask_cuda_with_matching_dask() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    gpu = project["optional-dependencies"]["gpu"]
    assert any(r.startswith("dask-cuda[cu13]") for r in gpu)
    # dask-cuda 26.10 pins dask/distributed 2026.7.1; the core pins must agree
    assert "distributed==2026.7.1" in project["dependencies"]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    import runpy

    mod = runpy.run_path(str(ROOT / ".ci" / "readme_command.py"))
    cmds = mod["commands"]()
    assert len(cmds) == 2, cmds
    assert "lepton-nb demo" in cmds[0] and "pytest" in cmds[1]
    assert "readme_command.py test" in (ROOT / ".ci" / "run").read_text()
