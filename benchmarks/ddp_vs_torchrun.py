"""lepton_nb ``fit(strategy="ddp")`` on a 2-worker Dask cluster vs a plain DDP script under
``torchrun --nproc-per-node 2``: same model, data (MNIST 4k), global batch, steps, for LeNet5
(~6 ms steps) and the MLP (~1 ms steps).

Side by side in one run: torchrun runs while the (idle) cluster is up, right before the fit it
is compared with, so both share the machine's load (and one torchrun run before the cluster
starts shows what an idle cluster costs).  Prints steady-state step time (median of 10-step
means after the first 10 steps, as fit's reports), wall time per step (all steps after the
first 10, epoch boundaries and fit's checkpoints included), samples/s, ratios, time to first
step on a warm cluster (fit called -> rank 0's first step, 3 times), and the parameter-server
strategies' samples/s vs ddp.

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

TORCHRUN_SCRIPT = r"""
import json, os, sys, time
import torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler
t_launch = float(sys.argv[1]); epochs = int(sys.argv[2]); batch = int(sys.argv[3])
model_name = sys.argv[4]
torch.set_num_threads(1)
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
from lepton_nb import datasets
from lepton_nb import models
train = datasets.mnist().train
torch.manual_seed(0)
model = DDP(getattr(models, model_name)())
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
"""


MODELS = ("LeNet5", "MLP")  # ~6 ms and ~1 ms steps at batch 64 on the reference machine


def _load() -> float:
    return os.getloadavg()[0]


def run_torchrun(epochs: int, batch: int, model: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "ddp_script.py"
        script.write_text(TORCHRUN_SCRIPT)
        t0 = time.time()
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            str(script),
            str(t0),
            str(epochs),
            str(batch),
            model,
        ]
        out = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        wall = time.time() - t0
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    r = json.loads(line[len("RESULT ") :])
    # like fit's reports: mean step time per 10-step interval, median over intervals; and the
    # plain mean over all steps after the first 10 (epoch boundaries included)
    t = r["times"]
    chunks = [sum(t[i : i + 10]) / 10 for i in range(10, len(t) - 9, 10)]
    return {
        "step_s": statistics.median(chunks),
        "wall_step_s": statistics.mean(t[10:]),
        "first_s": r["first"],
        "wall_s": wall,
        "steps": len(t),
        "samples_per_s": batch / statistics.median(chunks),
    }


def run_fit(
    cluster: Any, strategy: str, epochs: int, batch: int, model: str = "LeNet5"
) -> dict[str, Any]:
    from lepton_nb import datasets, models
    from lepton_nb.train import fit

    train = datasets.mnist().train
    t0 = time.time()
    res = fit(
        getattr(models, model),
        train,
        None,
        cluster=cluster,
        epochs=epochs,
        batch_size=batch,
        lr=2e-3,
        strategy=strategy,
        log_every=10,
        progress=False,
    )
    wall = time.time() - t0
    h = res.history[res.history.kind == "step"]
    r0 = h[h["rank"] == 0]
    per_rank = batch // 2
    # steady state: per-interval samples/s of rank 0 after the first interval (warm-up)
    sps = statistics.median(r0["samples_per_s"].iloc[1:])
    span = (float(r0["time"].iloc[-1]) - float(r0["time"].iloc[1])) / (
        int(r0["step"].iloc[-1]) - int(r0["step"].iloc[1])
    )
    return {
        "step_s": per_rank / sps,
        "wall_step_s": span,
        "wall_s": wall,
        "samples_per_s": 2 * sps,
        "steps": int(res.metrics["steps"]),
    }


def first_step(cluster: Any, batch: int) -> float:
    """Seconds from calling fit to rank 0's first optimizer step (reported with log_every=1)."""
    from lepton_nb import datasets
    from lepton_nb.models import LeNet5
    from lepton_nb.train import fit

    train = datasets.mnist().train
    t0 = time.time()
    res = fit(
        LeNet5,
        train,
        None,
        cluster=cluster,
        epochs=1,
        batch_size=batch,
        lr=2e-3,
        log_every=1,
        progress=False,
    )
    h = res.history
    return float(h[(h.kind == "step") & (h["rank"] == 0)]["time"].iloc[0]) - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    import lepton_nb as ln

    e, b = args.epochs, args.batch
    loads = [_load()]
    alone = run_torchrun(e, b, "LeNet5")  # no Dask cluster alive
    tr: dict[str, dict[str, Any]] = {}
    fits: dict[str, dict[str, Any]] = {}
    with ln.launch_cluster(
        n_workers=2, threads_per_worker=1, gpu=False, dashboard_address="127.0.0.1:0"
    ) as cluster:
        cluster.wait_for_workers(2)
        t = time.time()
        run_fit(cluster, "ddp", 1, b)  # fresh workers: fork servers import torch
        cold = time.time() - t
        for m in MODELS:  # torchrun while the cluster idles, then fit: same conditions
            tr[m] = run_torchrun(e, b, m)
            fits[m] = run_fit(cluster, "ddp", e, b, m)
        firsts = [first_step(cluster, b) for _ in range(3)]
        ps = {s: run_fit(cluster, s, e, b) for s in ("ps-sync", "ps-async")}
        loads.append(_load())
    print(
        f"MNIST 4k, global batch {b}, {e} epochs, 2 ranks (CPU, gloo); load average "
        f"{loads[0]:.2f} at start, {loads[1]:.2f} at end"
    )
    print(
        f"{'':34}{'step ms':>9}{'wall ms/step':>14}{'samples/s':>11}{'ratio':>7}{'wall ratio':>12}"
    )
    rows = [("torchrun LeNet5, no cluster alive", alone, alone)]
    for m in MODELS:
        rows += [(f"torchrun {m}", tr[m], tr[m]), (f"lepton fit ddp {m}", fits[m], tr[m])]
    rows += [(f"lepton fit {s} LeNet5", ps[s], tr["LeNet5"]) for s in ps]
    for name, r, ref in rows:
        print(
            f"{name:34}{1e3 * r['step_s']:9.2f}{1e3 * r['wall_step_s']:14.2f}"
            f"{r['samples_per_s']:11.0f}{r['step_s'] / ref['step_s']:7.3f}"
            f"{r['wall_step_s'] / ref['wall_step_s']:12.3f}"
        )
    for m in MODELS:
        fm, tm = fits[m], tr[m]
        print(
            f"steady step ratio fit/torchrun {m}: {fm['step_s'] / tm['step_s']:.3f} "
            f"(target <= 1.05; wall-time ratio {fm['wall_step_s'] / tm['wall_step_s']:.3f})"
        )
    print(
        f"time to first step, warm cluster: {', '.join(f'{f:.2f}' for f in firsts)} s "
        f"(target <= 1 s); first fit on fresh workers {cold:.1f} s in all; torchrun's first "
        f"step {tr['LeNet5']['first_s']:.2f} s after launch"
    )
    for s in ps:
        ratio = ps[s]["samples_per_s"] / fits["LeNet5"]["samples_per_s"]
        print(f"{s} samples/s vs ddp: {ratio:.2f} (target >= 0.85)")
    print(f"reproduce: python benchmarks/ddp_vs_torchrun.py --epochs {e} --batch {b}")


if __name__ == "__main__":
    main()
