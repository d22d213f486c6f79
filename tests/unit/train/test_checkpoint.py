"""Checkpoints: atomic writes, truncated files named, pickle payloads refused."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from lepton_nb.errors import CheckpointError
from lepton_nb.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state


class Evil:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned",))


def test_round_trip(tmp_path: Path) -> None:
    state = {"model": {"w": torch.arange(4.0)}, "step": 7}
    save_checkpoint(state, tmp_path / "c.pt")
    back = load_checkpoint(tmp_path / "c.pt")
    assert back["step"] == 7 and torch.equal(back["model"]["w"], torch.arange(4.0))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind


def test_interrupted_save_keeps_previous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "latest.pt"
    save_checkpoint({"step": 1}, path)

    def crash(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(os, "fsync", crash)  # dies after writing bytes, before the rename
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 2, "big": torch.zeros(1000)}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


def test_truncated_is_reported_by_name(tmp_path: Path) -> None:
    path = tmp_path / "latest.pt"
    save_checkpoint({"w": torch.randn(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"latest\.pt is truncated or corrupt"):
        load_checkpoint(path)


def test_pickle_payload_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(CheckpointError, match=r"refusing to load .*evil\.pt"):
        load_checkpoint(path)
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)


def test_missing(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")


def test_rng_state_restores_streams(tmp_path: Path) -> None:
    import random

    import numpy as np

    torch.manual_seed(1)
    s = rng_state()
    save_checkpoint({"rng": s}, tmp_path / "r.pt")
    a = (torch.rand(3), np.random.rand(), random.random())
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    b = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]
