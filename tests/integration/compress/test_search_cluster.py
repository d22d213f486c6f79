"""compress.search with every candidate a task on a real 2-worker Dask cluster.

Whether 2 workers beat in-process is measured in benchmarks/search_table.py, not asserted here:
on a shared 2-core machine the ratio depends on the neighbours.  This checks the cluster path's
correctness: tasks on both workers, the same measurements as in-process, nothing left behind.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from torch import nn

from lepton_nb import compress
from lepton_nb.compress import Recipe, SearchConfig
from lepton_nb.compress._data import accuracy
from lepton_nb.compress.methods import VariantContext
from lepton_nb.datasets import Split
from lepton_nb.errors import ConfigError

pytestmark = pytest.mark.integration

CFG = SearchConfig(subset_size=256, prune_amounts=(0.25, 0.5), max_skip=1,
                   settings={"runs": 5, "warmup": 2})  # fmt: skip


def _scheduler_tasks(cluster: Any) -> int:
    client = cluster.client
    deadline = time.monotonic() + 20
    while True:  # releases reach the scheduler asynchronously
        n = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
        if n == 0 or time.monotonic() > deadline:
            return int(n)
        time.sleep(0.2)


def test_search_runs_every_candidate_as_a_task(
    cluster2: Any, trained_lenet: nn.Module, split: Split
) -> None:
    calib = split.train.tensors[0][:500]
    result = compress.search(trained_lenet, eval_data=split.test, calibration_data=calib,
                             max_drop=1.0, cluster=cluster2, config=CFG)  # fmt: skip
    t = result.table
    assert result.met_budget and result.workers == 2
    drop = (accuracy(trained_lenet, split.test) - accuracy(result.best, split.test)) * 100
    assert drop <= 1.0
    singles = t[t["single_method"] & t["within_budget"]]
    assert t.loc[result.recipe.label, "latency_ms"] <= singles["latency_ms"].min()
    workers = {w["address"] for w in cluster2.workers}
    assert set(t["worker"].dropna()) == workers  # built and timed on both workers, not here
    # the same candidate built here measures the same subset accuracy
    subset = (split.test.tensors[0][:256], split.test.tensors[1][:256])
    ctx = VariantContext(calib, split.test.tensors[0][:1])
    for recipe in (Recipe(quantize="dynamic-int8"), Recipe(prune=0.25)):
        here = recipe.apply(trained_lenet, ctx)
        assert accuracy(here, subset) == t.loc[recipe.label, "accuracy_subset"], recipe.label
    assert _scheduler_tasks(cluster2) == 0  # every future and scattered input released


def test_budget_too_small_leaves_nothing_on_the_cluster(
    cluster2: Any, trained_lenet: nn.Module, split: Split
) -> None:
    with pytest.raises(ConfigError, match="too small for even one candidate"):
        compress.search(trained_lenet, eval_data=split.test, cluster=cluster2, budget_s=0.05,
                        methods=["dynamic-int8"], config=CFG)  # fmt: skip
    assert _scheduler_tasks(cluster2) == 0
