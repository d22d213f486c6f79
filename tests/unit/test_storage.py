"""Storage by URL (lepton_nb._storage) with fsspec's local and in-memory filesystems, and the
checkpoint/resume behaviour of fit that builds on it (in-process, no cluster)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dask.config
import pytest
import torch

from lepton_nb import _storage, compress, datasets
from lepton_nb.errors import CheckpointError, LeptonError, StorageError
from lepton_nb.models import MLP
from lepton_nb.train import fit
from lepton_nb.train.checkpoint import load_checkpoint, save_checkpoint


def test_memory_url_roundtrip_and_join() -> None:
    loc = _storage.location("memory://lepton-test/run1").join("latest.pt")
    assert loc.url == "memory://lepton-test/run1/latest.pt" and not loc.is_local
    assert not loc.exists()
    loc.write_bytes(b"abc")
    assert loc.exists() and loc.read_bytes() == b"abc"
    loc.remove()
    assert not loc.exists()


def test_checkpoint_at_url_loads_weights_only_and_names_bad_files() -> None:
    url = "memory://lepton-test/ckpt/latest.pt"
    save_checkpoint({"step": 3, "w": torch.ones(2)}, url)
    assert load_checkpoint(url)["step"] == 3
    loc = _storage.location(url)
    loc.write_bytes(loc.read_bytes()[:50])  # truncated
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(url)
    import io

    buf = io.BytesIO()
    torch.save({"obj": _storage.Location("x")}, buf)  # a pickled object, not tensors
    loc.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(url)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint("memory://lepton-test/none/latest.pt")


def test_failed_save_leaves_previous_checkpoint_and_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "latest.pt"
    save_checkpoint({"step": 1}, target)
    with pytest.raises(Exception):  # noqa: B017 - torch refuses a lambda, whatever its type
        save_checkpoint({"step": 2, "bad": lambda: 0}, target)
    assert load_checkpoint(target)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


@pytest.mark.parametrize(
    ("url", "options", "match"),
    [
        ("foo://bucket/run", None, "unknown storage protocol 'foo'"),
        ("gs://bucket/run", None, "gcsfs"),
        ("s3://lepton-bucket/run", {"bogus": 1}, "storage_options .*bogus.* rejected"),
        ("memory://x/run", "key=1", "storage_options must be a dict"),
    ],
)
def test_bad_storage_is_a_lepton_error_before_training(url: str, options: Any, match: str) -> None:
    split = datasets.digits()
    with pytest.raises(StorageError, match=match) as info:
        fit(
            MLP(in_features=64),
            split.train,
            epochs=1,
            checkpoint_dir=url,
            storage_options=options,
            progress=False,
        )
    assert isinstance(info.value, LeptonError)


def test_local_checkpoint_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(StorageError, match="not a writable directory"):
        _storage.check_writable(tmp_path / "f", what="checkpoint_dir")


def test_compress_save_load_by_url() -> None:
    model = MLP(in_features=64, hidden=16)
    assert (
        compress.save(
            model, "memory://lepton-test/m.pt", init_kwargs={"in_features": 64, "hidden": 16}
        )
        == "memory://lepton-test/m.pt"
    )
    back = compress.load("memory://lepton-test/m.pt")
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), back.state_dict().values(), strict=True)
    )
    with pytest.raises(CheckpointError, match="no compressed model at memory://"):
        compress.load("memory://lepton-test/missing.pt")


def test_second_fit_resumes_from_default_checkpoint_location(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    split = datasets.digits()
    kw: dict[str, Any] = dict(batch_size=64, lr=3e-3, progress=False)
    with dask.config.set({"lepton.storage.checkpoints": str(tmp_path / "ck")}):
        first = fit(MLP(in_features=64, hidden=32), split.train, epochs=1, **kw)
        assert (tmp_path / "ck" / "latest.pt").is_file()
        assert "resume" not in set(first.history.kind)
        with caplog.at_level(logging.INFO, logger="lepton_nb.train"):
            second = fit(MLP(in_features=64, hidden=32), split.train, epochs=2, **kw)
    steps = first.metrics["steps"]
    resume = second.history[second.history.kind == "resume"]
    assert len(resume) == 1 and int(resume.step.iloc[0]) == steps
    assert second.metrics["steps"] == 2 * steps
    assert second.history[second.history.kind == "step"].step.min() > steps
    lines = [r.getMessage() for r in caplog.records if "resuming" in r.getMessage()]
    assert len(lines) == 1 and f"step {steps}" in lines[0]
