"""compress.search at max_drop=1.0 on MLP, LeNet5 and the wide MLP: what it chooses next to the
best single method at the same budget, its wall time in-process / on 1 / on 2 Dask workers, and
how many candidates it built out of the full grid.

Each family is trained once with ``lepton_nb.train.fit`` on the shipped MNIST subset (as in
``compression_table.py``); pruned candidates are fine-tuned 1 epoch on the training split.  Every
search of one family sees the same model and data; latency is measured by the worker that built
the candidate (1 thread, batch 64), so ratios compare rows of the same search table.

Reproduce:  python benchmarks/search_table.py [--epochs 3] [--workers 0,1,2]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from typing import Any

import pandas as pd
import torch
from torch import nn

import lepton_nb as ln
from lepton_nb import compress
from lepton_nb.datasets import mnist
from lepton_nb.models import MLP, LeNet5
from lepton_nb.train import fit

FIT: dict[str, Any] = {"batch_size": 32, "lr": 3e-3, "progress": False,
                       "checkpoint_every": 10**9, "log_every": 50}  # fmt: skip


def wide_mlp() -> nn.Module:
    """Linear-heavy: 784-1024-1024-10 (1.9M parameters), as in compression_table.py."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024),
                         nn.ReLU(), nn.Linear(1024, 10))  # fmt: skip


def one_search(model: Any, workers: int) -> dict[str, Any]:
    split = mnist()
    cluster = None
    if workers:
        cluster = ln.launch_cluster(n_workers=workers, threads_per_worker=1, gpu=False,
                                    dashboard_address="127.0.0.1:0")  # fmt: skip
        cluster.wait_for_workers(workers)
    try:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = compress.search(model, train_data=split.train, eval_data=split.test,
                                  calibration_data=split.train.tensors[0][:1000], max_drop=1.0,
                                  cluster=cluster)  # fmt: skip
        wall = time.perf_counter() - t0
    finally:
        if cluster is not None:
            cluster.close()
    t = res.table
    singles = t[t["single_method"] & t["within_budget"]].sort_values("latency_ms")
    single = singles.iloc[0] if len(singles) else None
    row = res.chosen
    return {
        "workers": workers or "in-process", "wall_s": round(wall, 1),
        "chosen": res.recipe.label, "speedup": row["speedup"], "size_x": row["size_x"],
        "drop": row["drop"], "best single": None if single is None else single.name,
        "single speedup": None if single is None else single["speedup"],
        "single size_x": None if single is None else single["size_x"],
        "single drop": None if single is None else single["drop"],
        "built": res.candidates_evaluated, "grid": res.grid_size,
        "full evals": int((t["evaluated_on"] == "full").sum()) - 1,
        "met": res.met_budget, "load": round(os.getloadavg()[0], 1),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", default="0,1,2", help="0 = in-process")
    ap.add_argument("--families", default="MLP,LeNet5,wide MLP")
    args = ap.parse_args()
    split = mnist()
    factories = {"MLP": MLP, "LeNet5": LeNet5, "wide MLP": wide_mlp}
    rows = []
    for name in args.families.split(","):
        torch.manual_seed(0)
        model = fit(factories[name](), split.train, epochs=args.epochs, seed=0, **FIT).model
        for w in (int(v) for v in args.workers.split(",")):
            rows.append({"family": name, **one_search(model, w)})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.round(2).to_string(index=False))
    print(f"torch {torch.__version__}; load average at the end {os.getloadavg()}")
    print(f"reproduce: python benchmarks/search_table.py --epochs {args.epochs} "
          f"--workers {args.workers}")  # fmt: skip


if __name__ == "__main__":
    main()
