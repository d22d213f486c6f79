"""Small jobs done in one place each (issue 18): a new copy elsewhere fails here, naming the
helper to call instead.  The source is read as text and ast; nothing is imported or run."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import lepton_nb

ROOT = Path(lepton_nb.__file__).resolve().parent

# (what is done, the pattern that does it, the one file allowed to, what to call instead)
JOBS = [
    ("ask the scheduler for its workers", r"\.identity\b", "cluster/_client.py",
     "lepton_nb.cluster._client.live_workers(client)"),
    ("turn a Cluster or a Client into a Client", r"getattr\([^)]*[\"']client[\"']",
     "cluster/_client.py", "lepton_nb.cluster._client.client_of(cluster)"),
    ("ask which worker runs this task", r"get_worker\(\)\.address", "cluster/_client.py",
     "lepton_nb.cluster._client.worker_address()"),
    ("name a run's event topic", r"lepton-train-", "train/context.py",
     "lepton_nb.train.context.event_topic(run_id)"),
]  # fmt: skip


def _sources() -> list[tuple[str, str]]:
    return [(p.relative_to(ROOT).as_posix(), p.read_text(encoding="utf-8"))
            for p in sorted(ROOT.rglob("*.py"))]  # fmt: skip


@pytest.mark.parametrize("what,pattern,home,helper", JOBS, ids=[j[0] for j in JOBS])
def test_done_in_one_place(what: str, pattern: str, home: str, helper: str) -> None:
    found = {name for name, text in _sources() if re.search(pattern, text)}
    assert home in found, f"{home} no longer does this: update this test"
    assert found == {home}, f"{sorted(found - {home})} {what} again: call {helper}"


def test_one_lazy_loader() -> None:
    """A package __init__ resolving names lazily uses lepton_nb._lazy.lazy_attributes."""
    own = [name for name, text in _sources()
           if any(isinstance(n, ast.FunctionDef) and n.name in ("__getattr__", "__dir__")
                  for n in ast.parse(text).body)]  # fmt: skip
    assert own == [], f"{own} define a module __getattr__/__dir__: use lazy_attributes"
