"""Where a DDP step's time goes: the SAME phase-timed loop (LeNet5, MNIST 4k, global batch 64,
2 CPU ranks, gloo) run side by side under torchrun and as ranks of a Dask cluster.

Settings (one run, in this order, so they share the machine's load):

- ``torchrun``: ``torchrun --standalone --nproc-per-node 2``, no Dask cluster alive.
- ``torchrun + idle cluster``: the same while a 2-worker LocalCluster is up and idle.
- ``worker thread, data built``: ``lepton_nb.train.run`` with ``process=False``: the rank runs
  in a thread of its Dask worker (the engine before issue 14), dataset built on the worker.
- ``worker thread, data pickled``: the same with the dataset shipped from the client.
- ``rank process``: ``lepton_nb.train.run`` as it runs now, the rank in a child process of its
  worker (data shipped from the client).

Per setting: median per-step time of each phase (data = next batch, forward, backward incl. the
DDP all-reduce, optimizer) over the steps after the first 20, the wall time per step, the rank
thread's CPU time per step (median) and its whole process's CPU time per step (mean; in a
worker thread that includes the worker's event loop and other threads).  CPU times are what
to compare on a loaded machine: wall times there mostly measure the other users.

Reproduce:  python benchmarks/engine_profile.py [--epochs 6]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def phase_loop(epochs: int, batch: int, train: Any = None) -> dict[str, Any]:
    """The measured loop; runs as a torchrun script and as a lepton_nb rank unchanged."""
    import time

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader, DistributedSampler

    from lepton_nb.models import LeNet5

    torch.set_num_threads(1)
    if train is None:
        from lepton_nb import datasets

        train = datasets.mnist().train
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = DDP(LeNet5())
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sampler: Any = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=0)
    dl = DataLoader(train, batch_size=batch // world, sampler=sampler)
    rows: list[tuple[float, ...]] = []
    pc, tc = time.perf_counter, time.thread_time
    p0 = 0.0
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        it = iter(dl)
        while True:
            if len(rows) == 20:
                p0 = time.process_time()
            c0, t0 = tc(), pc()
            try:
                x, y = next(it)
            except StopIteration:
                break
            t1 = pc()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            t2 = pc()
            opt.zero_grad()
            loss.backward()
            t3 = pc()
            opt.step()
            t4 = pc()
            rows.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, tc() - c0))
    process_cpu = (time.process_time() - p0) / max(1, len(rows) - 20)
    dist.destroy_process_group()
    return {"rank": rank, "rows": rows, "process_cpu": process_cpu}


_SCRIPT = """
import json, sys
from typing import Any
{src}
out = phase_loop(int(sys.argv[1]), int(sys.argv[2]))
if out["rank"] == 0:
    print("RESULT " + json.dumps(out))
"""

PHASES = ("data", "forward", "backward+allreduce", "optimizer", "step", "thread CPU")


def summarize(out: dict[str, Any]) -> dict[str, float]:
    steady = out["rows"][20:]
    res = {p: 1e3 * statistics.median(r[i] for r in steady) for i, p in enumerate(PHASES)}
    res["process CPU"] = 1e3 * out["process_cpu"]
    return res


def torchrun(epochs: int, batch: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "phase_loop.py"
        script.write_text(_SCRIPT.format(src=inspect.getsource(phase_loop)))
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            str(script),
            str(epochs),
            str(batch),
        ]
        out = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    return summarize(json.loads(line[len("RESULT ") :]))


def on_cluster(
    cluster: Any, epochs: int, batch: int, ship_data: bool, process: bool
) -> dict[str, float]:
    from lepton_nb import datasets
    from lepton_nb.train import run

    data = datasets.mnist().train if ship_data else None

    def train_fn(ctx: Any) -> dict[str, Any]:
        return phase_loop(epochs, batch, data)

    res = run(train_fn, cluster, rank_process=process)
    return summarize(res[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    import lepton_nb as ln

    e, b = args.epochs, args.batch
    loads = [os.getloadavg()[0]]
    res = {"torchrun": torchrun(e, b)}
    with ln.launch_cluster(
        n_workers=2, threads_per_worker=1, gpu=False, dashboard_address="127.0.0.1:0"
    ) as cluster:
        cluster.wait_for_workers(2)
        on_cluster(cluster, 1, b, False, False)  # warm up: torch imported on the workers
        time.sleep(1.0)
        res["torchrun + idle cluster"] = torchrun(e, b)
        res["worker thread, data built"] = on_cluster(cluster, e, b, False, False)
        res["worker thread, data pickled"] = on_cluster(cluster, e, b, True, False)
        res["rank process"] = on_cluster(cluster, e, b, True, True)
    loads.append(os.getloadavg()[0])
    print(
        f"LeNet5, MNIST 4k, global batch {b}, {e} epochs, 2 ranks (CPU, gloo); "
        f"load average {loads[0]:.2f} -> {loads[1]:.2f}"
    )
    cols = (*PHASES, "process CPU")
    print(
        f"{'ms per step (median)':28}"
        + "".join(f"{p[:9]:>10}" for p in cols)
        + "  step ratio  CPU ratio"
    )
    base = res["torchrun"]
    for name, r in res.items():
        print(
            f"{name:28}"
            + "".join(f"{r[p]:10.2f}" for p in cols)
            + f"{r['step'] / base['step']:12.2f}{r['process CPU'] / base['process CPU']:11.2f}"
        )
    print(f"reproduce: python benchmarks/engine_profile.py --epochs {e} --batch {b}")


if __name__ == "__main__":
    main()
