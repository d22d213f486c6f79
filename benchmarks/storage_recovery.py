"""Recovery across hosts that share no file system, and checkpoint write time, local vs S3.

1. Recovery: a scheduler and two worker "hosts" (network namespace + private mount namespace
   with its own tmpfs on /tmp each, as in tests/integration/storage), an S3 server (moto) on
   the bridge.  ``fit(LeNet5, MNIST 4k, ddp)`` with ``checkpoint_every=20``; once rank 0 reports
   step >= 45 every process of its host is SIGKILLed.  Reported: seconds from the kill to the
   first step event after the resume, the step resumed at, and the steps lost (last step seen
   before the kill minus the resume step), with checkpoints on S3 vs in a local directory
   (private to each host, so lost with rank 0's host).
2. Checkpoint write time: ``save_checkpoint`` of model + Adam state (after one step) for LeNet5
   and TinyGPT (vocab 96, defaults otherwise), to a local directory vs to S3 (moto on
   loopback), median of N writes.

Needs root and ``ip netns`` for part 1 (skipped otherwise).
Reproduce:  python benchmarks/storage_recovery.py [--repeats 10] [--skip-recovery]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _harness() -> Any:
    """The fake-hosts and moto helpers of the storage tests (one implementation for both)."""
    path = ROOT / "tests" / "integration" / "storage" / "conftest.py"
    spec = importlib.util.spec_from_file_location("lepton_storage_harness", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the file runs
    spec.loader.exec_module(mod)
    return mod


def recovery(h: Any, where: str) -> dict[str, Any]:
    import lepton_nb as ln
    from lepton_nb import datasets
    from lepton_nb.models import LeNet5
    from lepton_nb.train import Callback, fit

    with h.fake_hosts(2) as hosts:
        cluster = ln.connect(hosts.scheduler)
        cluster.wait_for_workers(2, timeout=120)

        class Lose(Callback):
            killed = first = None
            reached = 0

            def on_events(self, events: list[dict[str, Any]]) -> None:
                for e in events:
                    if e["kind"] == "step" and e.get("attempt", 0) == 0:
                        self.reached = max(self.reached, e["step"])
                    if (
                        self.killed is None
                        and e["kind"] == "step"
                        and e["rank"] == 0
                        and e["step"] >= 45
                    ):
                        hosts.kill_host(e["worker"].split("://")[1].rsplit(":", 1)[0])
                        self.killed = time.monotonic()
                    if self.first is None and e["kind"] == "step" and e.get("attempt", 0) > 0:
                        self.first = time.monotonic()

        lose = Lose()
        if where == "s3":
            ckpt, opts = f"s3://{hosts.bucket}/{uuid.uuid4().hex[:6]}", hosts.storage_options
        else:
            ckpt, opts = f"/tmp/lepton-bench-{uuid.uuid4().hex[:6]}", None
        split = datasets.mnist()
        t0 = time.monotonic()
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the local case warns, as it should
            res = fit(
                LeNet5,
                split.train,
                split.test,
                cluster=cluster,
                epochs=2,
                batch_size=64,
                lr=2e-3,
                log_every=1,
                checkpoint_every=20,
                checkpoint_dir=ckpt,
                storage_options=opts,
                replace_timeout_s=2,
                progress=False,
                callbacks=[lose],
            )
        wall = time.monotonic() - t0
        cluster.close()
    hist = res.history
    resumed = int(hist[hist.kind == "restart"].step.iloc[0])
    return {
        "where": where,
        "kill_to_first_step_s": (lose.first or 0) - (lose.killed or 0),
        "resumed_at": resumed,
        "last_step_before_kill": lose.reached,
        "steps_lost": lose.reached - resumed,
        "fit_wall_s": wall,
        "val_accuracy": res.metrics.get("val_accuracy"),
    }


def write_times(h: Any, repeats: int) -> list[dict[str, Any]]:
    import torch

    from lepton_nb.models import LeNet5, TinyGPT
    from lepton_nb.train.checkpoint import save_checkpoint

    proc, endpoint = h.start_moto()
    opts = {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
    import s3fs

    bucket = f"lepton-bench-{uuid.uuid4().hex[:6]}"
    s3fs.S3FileSystem(skip_instance_cache=True, **opts).mkdir(bucket)
    rows = []
    try:
        for name, model in (("LeNet5", LeNet5()), ("TinyGPT", TinyGPT(vocab_size=96))):
            opt = torch.optim.Adam(model.parameters())
            for p in model.parameters():
                p.grad = torch.zeros_like(p)
            opt.step()
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 1}
            import io

            buf = io.BytesIO()
            torch.save(state, buf)
            size = len(buf.getvalue())
            with tempfile.TemporaryDirectory() as d:
                targets = {"local": f"{d}/latest.pt", "s3": f"s3://{bucket}/{name}/latest.pt"}
                row: dict[str, Any] = {"model": name, "MB": size / 1e6}
                for where, target in targets.items():
                    so = opts if where == "s3" else None
                    save_checkpoint(state, target, so)  # warm (connection, directory)
                    ts = []
                    for _ in range(repeats):
                        t = time.perf_counter()
                        save_checkpoint(state, target, so)
                        ts.append(time.perf_counter() - t)
                    row[f"{where}_ms"] = statistics.median(ts) * 1e3
                row["s3/local"] = row["s3_ms"] / row["local_ms"]
                rows.append(row)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--skip-recovery", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    h = _harness()
    print(f"load average at start: {os.getloadavg()}")
    if not args.skip_recovery:
        reason = h.can_make_hosts()
        if reason:
            print(f"recovery across hosts skipped: {reason}")
        else:
            print(
                "| checkpoints | kill -> first step after resume (s) | resumed at step | "
                "last step seen before kill | steps lost | fit wall (s) | val acc |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|")
            for where in ("s3", "local"):
                r = recovery(h, where)
                print(
                    f"| {where} | {r['kill_to_first_step_s']:.2f} | {r['resumed_at']} | "
                    f"{r['last_step_before_kill']} | {r['steps_lost']} | "
                    f"{r['fit_wall_s']:.1f} | {r['val_accuracy']:.3f} |",
                    flush=True,
                )
            print(f"load average: {os.getloadavg()}")
    print("| model | checkpoint MB | local write ms | S3 write ms | S3 / local |")
    print("|---|---:|---:|---:|---:|")
    for r in write_times(h, args.repeats):
        print(
            f"| {r['model']} | {r['MB']:.2f} | {r['local_ms']:.1f} | {r['s3_ms']:.1f} | "
            f"{r['s3/local']:.1f} |"
        )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
