"""Issue 13: elastic bounds are checked before anything starts; the world size an elastic run
takes keeps the global batch; the rest of an epoch re-sharded over a new world skips and
repeats no sample."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import TensorDataset

from lepton_nb.errors import ConfigError
from lepton_nb.models import MLP
from lepton_nb.train import Strategy, fit, run
from lepton_nb.train._common import loader, skip_batches
from lepton_nb.train._elastic import Elastic
from lepton_nb.train.config import FitConfig


class FixedWorld(Strategy):
    """A strategy that has not declared it can re-form its world."""

    name = "fixed"

    def body(self, ctx: Any, payload: Any) -> Any:
        return {}


DATA = TensorDataset(torch.randn(16, 784), torch.randint(0, 10, (16,)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(min_workers=0), r"min_workers must be a whole number >= 1 or None, got 0"),
        (dict(max_workers=-1), r"max_workers must be a whole number >= 1"),
        (dict(min_workers=1.5), r"min_workers must be a whole number"),
        (dict(min_workers=3, max_workers=2), r"max_workers=2 is below min_workers=3"),
        (dict(min_workers=1, wait_timeout_s=0), r"wait_timeout_s must be a positive number"),
        (dict(min_workers=1, strategy="single"), r"strategy='single' trains in this process"),
        (dict(min_workers=1, n_workers=2), r"leave n_workers=None"),
        (dict(min_workers=1, strategy=FixedWorld()), r"strategy 'fixed' is not elastic yet"),
        (
            dict(min_workers=2, max_workers=3, batch_size=64),
            r"world sizes \[3\].*do not divide it\. Use a multiple of 6 \(e\.g\. batch_size=66\)",
        ),
    ],
)
def test_bad_elastic_input_is_refused_before_anything_runs(
    cluster2: Any, tmp_path: Path, kwargs: dict[str, Any], match: str
) -> None:
    kw = dict(checkpoint_dir=str(tmp_path), epochs=1, progress=False, **kwargs)
    before = set(cluster2.client.who_has())
    with pytest.raises(ConfigError, match=match):
        fit(MLP(), DATA, cluster=cluster2, **kw)
    assert set(cluster2.client.who_has()) == before  # nothing was scattered or run


def test_elastic_needs_a_place_to_checkpoint_and_a_cluster(cluster2: Any) -> None:
    with pytest.raises(
        ConfigError,
        match=r"re-forms the world from checkpoints.*"
        r"pass checkpoint_dir=\.\.\.",
    ):
        fit(MLP(), DATA, cluster=cluster2, max_workers=2, progress=False)
    with pytest.raises(ConfigError, match=r"need a cluster: pass cluster="):
        fit(MLP(), DATA, min_workers=1, checkpoint_dir="/tmp", progress=False)
    with pytest.raises(ConfigError, match=r"re-forms the world from checkpoints"):
        run(lambda ctx: None, cluster2, min_workers=1)
    with pytest.raises(ConfigError, match=r"max_workers=1 is below min_workers=2"):
        run(lambda ctx: None, cluster2, min_workers=2, max_workers=1, checkpoint_dir="/tmp")


def test_elastic_settings_round_trip() -> None:
    cfg = FitConfig(min_workers=1, max_workers=4, wait_timeout_s=30.0, batch_size=48)
    cfg.validate()
    again = FitConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.elastic and not FitConfig().elastic
    assert cfg.to_dict()["max_workers"] == 4


def test_world_for_keeps_the_global_batch() -> None:
    e = Elastic(min_workers=2, max_workers=None, wait_timeout_s=1.0, batch_size=64)
    assert [e.world_for(n) for n in range(1, 8)] == [0, 2, 2, 4, 4, 4, 4]
    capped = Elastic(min_workers=1, max_workers=3, wait_timeout_s=1.0, batch_size=None)
    assert [capped.world_for(n) for n in range(0, 6)] == [0, 1, 2, 3, 3, 3]


@pytest.mark.parametrize(("old", "new", "batches"), [(1, 2, 7), (3, 2, 4), (2, 3, 9), (2, 1, 0)])
def test_rest_of_epoch_resharded_without_skip_or_repeat(old: int, new: int, batches: int) -> None:
    n, global_batch = 1200, 60
    ds = TensorDataset(torch.arange(n), torch.zeros(n, dtype=torch.long))
    cfg = FitConfig(batch_size=global_batch, seed=3)

    def shard(world: int, skip: int) -> list[int]:
        out: list[int] = []
        for r in range(world):
            dl = loader(ds, cfg, r, world, torch.device("cpu"))
            dl.sampler.set_epoch(2)  # type: ignore[attr-defined]
            assert dl.batch_size * world == global_batch  # the global batch is kept
            out += [int(i) for x, _ in skip_batches(dl, skip) for i in x]
        return out

    consumed: list[int] = []
    # what the old world trained before the boundary: its first `batches` batches
    for r in range(old):
        dl = loader(ds, cfg, r, old, torch.device("cpu"))
        dl.sampler.set_epoch(2)  # type: ignore[attr-defined]
        for k, (x, _) in enumerate(dl):
            if k == batches:
                break
            consumed += [int(i) for i in x]
    samples = batches * global_batch  # what the boundary's checkpoint records
    rest = shard(new, samples // global_batch)  # how the new world resumes
    assert len(consumed) == samples
    assert sorted(consumed + rest) == list(range(n))  # each sample once in the epoch
