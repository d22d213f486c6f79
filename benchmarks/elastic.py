"""Elastic training (issue 13): what a world change costs, on a real LocalCluster.

One run of ``fit(MLP, MNIST 4k, ddp, min_workers=1, max_workers=2, log_every=1)`` starts on a
1-worker cluster; once rank 0 passes ``--grow-at`` the cluster is scaled to 2 workers, and
once the 2-rank world has run ``--shrink-after`` steps the new worker leaves: retired
gracefully (``client.retire_workers``, the default) or, with ``--leave kill``, SIGKILLed (its
nanny then starts a replacement, which the run grows onto again).  From the history and the
scheduler's event log:

- join -> first step: seconds from the scheduler registering the new worker (its
  ``add-worker`` event) to the first step event of the world that includes it (DDP ranks step
  together, so that is the new worker's first step), split at the ``world`` row: before it
  the old world keeps training while the joiner warms up (imports torch), after it nobody
  trains while the group re-forms (for every change, grow or shrink);
- steps lost per world change: the last step the old world reported minus the step the new
  world continues from (goal: <= ``checkpoint_every``; a grow or a graceful retirement waits
  for the next boundary, so 0 is expected for both; a killed worker costs the steps since the
  last checkpoint);
- throughput: samples/s summed over ranks, median over the steps of each world, next to fixed
  1- and 2-worker runs of the same config (the anchors; ``--no-anchors`` skips them).

Reproduce:  python benchmarks/elastic.py [--leave retire|kill] [--no-anchors] [--epochs 40]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
import threading
import time
from typing import Any

from lepton_nb.train import Callback


def _data() -> Any:
    from lepton_nb import datasets

    return datasets.mnist()  # 4,000 training images, 1,000 test


def _per_step(history: Any, attempt: int | None = None) -> Any:
    """samples/s summed over the ranks of each step (one world, or the whole run)."""
    steps = history[history.kind == "step"]
    if attempt is not None:
        steps = steps[steps.attempt == attempt]
    return steps.groupby("step").samples_per_s.sum()


def _median(series: Any, skip: int = 3) -> float:
    """Median samples/s, leaving out a world's first steps (DDP's first buckets, warm-up);
    NaN for a world too short to say (fewer than 20 steps)."""
    values = series.iloc[skip:]
    return float(statistics.median(values.tolist())) if len(values) >= 20 else float("nan")


class Scaler(Callback):
    """Grows the cluster to 2 workers at ``grow_at`` and retires the new one at ``shrink_at``
    (in threads: a retirement waits for the run's next boundary, which this callback's
    thread drives)."""

    def __init__(self, cluster: Any, grow_at: int, shrink_after: int, leave: str) -> None:
        self.cluster, self.grow_at, self.shrink_after = cluster, grow_at, shrink_after
        self.leave = leave
        self.first: set[str] = {w["address"] for w in cluster.workers}
        self.grown = self.shrunk = False
        self.wide_from: int | None = None  # first step of the 2-rank world
        self.left_at = 0  # the step rank 0 had reported when the new worker was made to leave
        self.threads: list[threading.Thread] = []

    def on_events(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            if e.get("kind") != "step" or e.get("rank") != 0:
                continue
            if not self.grown and e["step"] >= self.grow_at:
                self.grown = True
                self._spawn(lambda: self.cluster.scale(2))
            if self.grown and e.get("world_size") == 2 and self.wide_from is None:
                self.wide_from = e["step"]
            if (
                self.wide_from is not None
                and not self.shrunk
                and e["step"] >= self.wide_from + self.shrink_after
            ):
                self.shrunk = True
                self.left_at = e["step"]  # rank 0 had done at least this many steps
                self._spawn(self._retire)

    def _retire(self) -> None:
        new = [w["address"] for w in self.cluster.workers if w["address"] not in self.first]
        if self.leave == "kill":  # lost, as to the OOM killer (its nanny starts a new one)
            for pid in self.cluster.client.run(os.getpid, workers=new).values():
                os.kill(pid, signal.SIGKILL)
        else:
            self.cluster.client.retire_workers(workers=new, close_workers=True)

    def _spawn(self, fn: Any) -> None:
        t = threading.Thread(target=fn, daemon=True)
        t.start()
        self.threads.append(t)


def _joins(dask_scheduler: Any) -> list[tuple[str, float]]:
    """(worker address, unix time the scheduler registered it) for every worker that joined."""
    return [
        (m["worker"], t)
        for t, m in dask_scheduler.get_events("all")
        if isinstance(m, dict) and m.get("action") == "add-worker"
    ]


def elastic_run(args: argparse.Namespace, train: Any, test: Any) -> dict[str, Any]:
    import lepton_nb as ln
    from lepton_nb import models

    cluster = ln.launch_cluster(
        n_workers=1, threads_per_worker=1, gpu=False, dashboard_address="127.0.0.1:0"
    )
    try:
        cluster.wait_for_workers(1)
        scaler = Scaler(cluster, args.grow_at, args.shrink_after, args.leave)
        with tempfile.TemporaryDirectory() as ckpt:
            t0 = time.monotonic()
            res = ln.fit(
                models.MLP(),
                train,
                val_data=test,
                cluster=cluster,
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=1e-3,
                seed=0,
                log_every=1,
                checkpoint_dir=ckpt,
                checkpoint_every=args.checkpoint_every,
                min_workers=1,
                max_workers=2,
                callbacks=[scaler],
                progress=False,
            )
            wall = time.monotonic() - t0
        for t in scaler.threads:
            t.join(timeout=60)
        # filtered on the scheduler: other events of the "all" topic (retirements) hold
        # objects that do not serialize back to the client
        joins = dict(cluster.client.run_on_scheduler(_joins))
    finally:
        cluster.close()
    h = res.history
    worlds = h[h.kind == "world"].reset_index(drop=True)
    out: dict[str, Any] = {
        "wall_s": wall,
        "accuracy": res.metrics.get("val_accuracy"),
        "restarts": int((h.kind == "restart").sum()),
        "changes": [],
    }
    steps = h[h.kind == "step"]
    for _, w in worlds.iterrows():
        before = steps[steps.attempt < w.attempt]
        after = steps[steps.attempt == w.attempt]
        change: dict[str, Any] = {
            "what": f"{int(w.old_size)}->{int(w.new_size)}",
            "reason": w.reason,
            "step": int(w.step),
            # a failing rank's last batch of events may never arrive: the step at which the
            # worker was made to leave is a floor for what the old world had done
            "steps_lost": max(
                int(before.step.max()), scaler.left_at if w.new_size < w.old_size else 0
            )
            - int(w.step)
            if len(before)
            else None,
            "first_step_time": float(after.time.min()) if len(after) else None,
            "world_time": float(w.time),
        }
        if change["first_step_time"] is not None:  # the group re-forming: nobody trains
            change["world_to_first_step_s"] = change["first_step_time"] - change["world_time"]
        joined = [a for a in joins if a in str(w.reason)]
        if w.new_size > w.old_size and joined:
            t_join = joins[joined[0]]
            change["join_to_world_s"] = change["world_time"] - t_join
            if change["first_step_time"] is not None:
                change["join_to_first_step_s"] = change["first_step_time"] - t_join
        out["changes"].append(change)
    gens = sorted(steps.attempt.unique())
    out["throughput"] = {
        int(a): (int(steps[steps.attempt == a].world_size.max()), _median(_per_step(h, a)))
        for a in gens
    }
    return out


def fixed_run(args: argparse.Namespace, train: Any, test: Any, n: int) -> float:
    import lepton_nb as ln
    from lepton_nb import models

    with ln.launch_cluster(
        n_workers=n, threads_per_worker=1, gpu=False, dashboard_address="127.0.0.1:0"
    ) as cluster:
        cluster.wait_for_workers(n)
        res = ln.fit(
            models.MLP(),
            train,
            val_data=test,
            cluster=cluster,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=1e-3,
            seed=0,
            log_every=1,
            progress=False,
        )
    return _median(_per_step(res.history))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--checkpoint-every", type=int, default=20)
    ap.add_argument("--grow-at", type=int, default=20)
    ap.add_argument(
        "--shrink-after",
        type=int,
        default=300,
        help="steps the 2-rank world runs before its new worker is retired",
    )
    ap.add_argument(
        "--leave",
        choices=["retire", "kill"],
        default="retire",
        help="how the new worker leaves: graceful retirement or SIGKILL",
    )
    ap.add_argument("--no-anchors", action="store_true")
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    train, test = _data()
    r = elastic_run(args, train, test)
    print(
        f"elastic run ({args.leave}): MNIST 4k x {args.epochs} epochs, batch {args.batch_size}, "
        f"checkpoint_every {args.checkpoint_every}; wall {r['wall_s']:.1f} s, "
        f"restarts {r['restarts']}, val accuracy {r['accuracy']}"
    )
    print(
        "| world change | reason | continues at step | steps lost | join -> world row (s) "
        "| world row -> first step (s) | join -> first step (s) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for c in r["changes"]:

        def f(key: str, c: dict[str, Any] = c) -> str:
            return f"{c[key]:.2f}" if c.get(key) is not None else "-"

        print(
            f"| {c['what']} | {c['reason']} | {c['step']} | {c['steps_lost']} | "
            f"{f('join_to_world_s')} | {f('world_to_first_step_s')} | "
            f"{f('join_to_first_step_s')} |"
        )
    print(f"load average: {os.getloadavg()}")
    print("| run | world | samples/s (median over steps) | vs fixed 1 worker |")
    print("|---|---:|---:|---:|")
    anchors: dict[int, float] = {}
    if not args.no_anchors:
        for n in (1, 2):
            anchors[n] = fixed_run(args, train, test, n)
    base = anchors.get(1)
    for a, (size, sps) in r["throughput"].items():
        if sps != sps:  # NaN
            print(f"| elastic, generation {a} | {size} | too few steps | - |")
            continue
        ratio = f"{sps / base:.2f}" if base else "-"
        print(f"| elastic, generation {a} | {size} | {sps:.0f} | {ratio} |")
    for n, sps in anchors.items():
        ratio = f"{sps / base:.2f}" if base else "-"
        print(f"| fixed | {n} | {sps:.0f} | {ratio} |")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
