"""Provenance: what a job ran (notebook hash, git state) and where (Python, packages, host, GPU).

Package versions come from installed metadata, never by importing the package: importing torch
costs seconds and must not be paid by every job.
"""

from __future__ import annotations

import hashlib
import os
import platform
import socket
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from lepton_nb.jobs.models import GitInfo

PACKAGES = (
    "lepton-nb",
    "torch",
    "dask",
    "distributed",
    "papermill",
    "nbclient",
    "ipykernel",
    "numpy",
    "pandas",
)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_info(path: str | Path) -> GitInfo | None:
    """Commit and dirty flag of the repository holding ``path`` (None outside a repository).

    Dirty means tracked files have changes, or the notebook itself is untracked or modified:
    either way the commit alone would not reproduce the run.
    """
    p = Path(path).resolve()
    where = p if p.is_dir() else p.parent
    root = _git(where, "rev-parse", "--show-toplevel")
    if not root:
        return None
    commit = _git(where, "rev-parse", "--verify", "-q", "HEAD") or None
    tracked = _git(where, "status", "--porcelain", "--untracked-files=no")
    own = _git(where, "status", "--porcelain", "--", str(p)) if p.is_file() else ""
    branch = _git(where, "rev-parse", "--abbrev-ref", "HEAD")
    return GitInfo(
        root=root,
        commit=commit,
        dirty=bool(tracked) or bool(own) or tracked is None,
        branch=branch if branch and branch != "HEAD" else None,
    )


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@lru_cache(maxsize=1)
def cpu_description() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} logical CPUs)"


@lru_cache(maxsize=1)
def gpu_description() -> tuple[str, ...]:
    from lepton_nb.cluster import detect_gpus

    return tuple(f"{g.name} ({g.memory_bytes / 2**30:.0f} GiB)" for g in detect_gpus())


def environment() -> dict[str, Any]:
    """The fields of a JobRecord that describe the machine and software running the job."""
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable})",
        "packages": package_versions(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "pid": os.getpid(),
        "cpu": cpu_description(),
        "gpu": list(gpu_description()),
    }


__all__ = [
    "PACKAGES",
    "cpu_description",
    "environment",
    "git_info",
    "gpu_description",
    "package_versions",
    "sha256_file",
]
