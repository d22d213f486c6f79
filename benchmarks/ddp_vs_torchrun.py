"""lepton_nb ``fit(strategy="ddp")`` on a 2-worker Dask cluster vs a plain DDP script under
``torchrun --nproc-per-node 2``: same model (LeNet5), data (MNIST 4k), global batch, steps.

Prints steady-state step time (median of 10-step means after the first 10 steps; fit runs on a
warmed-up cluster, a first cold fit gives its time to first step), time to first step, and
samples/s of each, their ratios, and the parameter-server strategies' samples/s vs ddp.

Reproduce:  python benchmarks/ddp_vs_torchrun.py [--epochs 3] [--batch 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TORCHRUN_SCRIPT = r'''
import json, os, sys, time
import torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler
t_launch = float(sys.argv[1]); epochs = int(sys.argv[2]); batch = int(sys.argv[3])
torch.set_num_threads(1)
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
from lepton_nb import datasets
from lepton_nb.models import LeNet5
train = datasets.mnist().train
torch.manual_seed(0)
model = DDP(LeNet5())
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=0)
dl = DataLoader(train, batch_size=batch // world, sampler=sampler)
times, first = [], None
t = time.perf_counter()
for epoch in range(epochs):
    sampler.set_epoch(epoch)
    for x, y in dl:  # step time includes data loading, as fit's samples/s does
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
        loss.item()  # fit reports a loss; keep the work equal
        now = time.perf_counter()
        times.append(now - t)
        t = now
        if first is None:
            first = time.time() - t_launch
if rank == 0:
    print("RESULT " + json.dumps({"times": times, "first": first}))
dist.destroy_process_group()
'''


def run_torchrun(epochs: int, batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "ddp_script.py"
        script.write_text(TORCHRUN_SCRIPT)
        t0 = time.time()
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", str(script), str(t0),
               str(epochs), str(batch)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        wall = time.time() - t0
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    r = json.loads(line[len("RESULT "):])
    # like fit's reports: mean step time per 10-step interval, median over intervals
    t = r["times"]
    chunks = [sum(t[i:i + 10]) / 10 for i in range(10, len(t) - 9, 10)]
    return {"step_s": statistics.median(chunks), "first_s": r["first"], "wall_s": wall,
            "steps": len(r["times"])}


def run_fit(cluster: Any, strategy: str, epochs: int, batch: int) -> dict[str, Any]:
    from lepton_nb import datasets
    from lepton_nb.models import LeNet5
    from lepton_nb.train import fit

    train = datasets.mnist().train
    t0 = time.time()
    res = fit(LeNet5, train, None, cluster=cluster, epochs=epochs, batch_size=batch, lr=2e-3,
              strategy=strategy, log_every=10, progress=False)
    wall = time.time() - t0
    h = res.history[res.history.kind == "step"]
    r0 = h[h["rank"] == 0]
    per_rank = batch // 2
    # steady state: per-interval samples/s of rank 0 after the first interval (warm-up)
    sps = statistics.median(r0["samples_per_s"].iloc[1:])
    first = float(r0["time"].iloc[0]) - t0  # first report (10 steps) minus 10 steady steps
    step_s = per_rank / sps
    return {"step_s": step_s, "first_s": first - 9 * step_s, "wall_s": wall,
            "samples_per_s": 2 * sps, "steps": int(res.metrics["steps"])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    import lepton_nb as ln

    tr = run_torchrun(args.epochs, args.batch)
    tr["samples_per_s"] = args.batch / tr["step_s"]
    with ln.launch_cluster(n_workers=2, threads_per_worker=1, gpu=False,
                           dashboard_address="127.0.0.1:0") as cluster:
        cluster.wait_for_workers(2)
        cold = run_fit(cluster, "ddp", 1, args.batch)  # fresh workers: time to first step
        res = {s: run_fit(cluster, s, args.epochs, args.batch)
               for s in ("ddp", "ps-sync", "ps-async")}
    ours = res["ddp"]
    ours["first_s"] = cold["first_s"]
    print(f"LeNet5, MNIST 4k, global batch {args.batch}, {args.epochs} epochs, 2 ranks (CPU)")
    print(f"{'':22}{'step ms':>9}{'first step s':>14}{'samples/s':>11}{'wall s':>8}")
    rows = [("torchrun DDP", tr), ("lepton fit ddp", ours),
            ("lepton fit ps-sync", res["ps-sync"]), ("lepton fit ps-async", res["ps-async"])]
    for name, r in rows:
        print(f"{name:22}{1e3 * r['step_s']:9.2f}{r['first_s']:14.2f}"
              f"{r['samples_per_s']:11.0f}{r['wall_s']:8.1f}")
    print(f"steady-state step ratio fit/torchrun: {ours['step_s'] / tr['step_s']:.3f} "
          "(target <= 1.05)")
    print(f"time-to-first-step ratio fit/torchrun: {ours['first_s'] / tr['first_s']:.2f}")
    for s in ("ps-sync", "ps-async"):
        print(f"{s} samples/s vs ddp: {res[s]['samples_per_s'] / ours['samples_per_s']:.2f}")
    print("reproduce: python benchmarks/ddp_vs_torchrun.py "
          f"--epochs {args.epochs} --batch {args.batch}")


if __name__ == "__main__":
    main()
