"""Provenance: git commit/dirty of a real temporary repository, versions, hashes."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from lepton_nb.jobs._provenance import environment, git_info, package_versions, sha256_file


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_git_commit_and_dirty_flag(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    nb = repo / "nb.ipynb"
    nb.write_text("{}")
    info = git_info(nb)
    assert info is not None and info.commit is None and info.dirty  # untracked, no commit
    _git(repo, "add", "nb.ipynb")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    info = git_info(nb)
    assert info is not None
    assert info.commit == _git(repo, "rev-parse", "HEAD")
    assert info.dirty is False and Path(info.root).resolve() == repo.resolve()
    nb.write_text('{"changed": 1}')
    info = git_info(nb)
    assert info is not None and info.dirty is True


def test_outside_a_repository(tmp_path: Path) -> None:
    (tmp_path / "nb.ipynb").write_text("{}")
    assert git_info(tmp_path / "nb.ipynb") is None


def test_versions_and_environment(tmp_path: Path) -> None:
    versions = package_versions()
    for name in ("torch", "dask", "distributed", "papermill", "lepton-nb"):
        assert versions[name], name
    env = environment()
    assert env["host"] and env["python"].startswith("CPython 3.") and env["cpu"]
    assert isinstance(env["gpu"], list)
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    assert sha256_file(f) == hashlib.sha256(b"abc").hexdigest()
