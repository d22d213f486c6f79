"""Keras MLP on 2 workers: ``ln.run(framework="tensorflow")`` vs the same script by hand.

Anchor: the plain multi-worker Keras script (784-128-10 MLP, Adam, batch 32 per worker, the
4,000-image MNIST subset), started by hand as 2 processes with ``TF_CONFIG`` and
``TF_USE_LEGACY_KERAS=1``, the way TensorFlow's tutorial does it.  Ours: the same function through
``ln.run(train_fn, cluster=..., framework="tensorflow")`` on a running 2-worker cluster, with
``LeptonCallback`` streaming every batch's loss to the client.  Runs alternate (anchor, ours).

Measured inside the ranks (rank 0): per-epoch wall time (median of the epochs after the first,
which traces the graph) and time to first step (from the moment the launch starts, i.e.
``subprocess.Popen`` / ``ln.run``, to the end of the first batch).

Reproduce: ``python benchmarks/keras_vs_tfconfig.py --epochs 6 --repeats 3``
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def keras_mlp(ctx: Any, epochs: int, t_launch: float, lepton: bool) -> dict[str, Any]:
    """The user's script; ``ctx`` is None when started by hand."""
    import tensorflow as tf

    from lepton_nb import datasets

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    (x, y), (x_test, y_test) = datasets.mnist_numpy()
    with strategy.scope():
        model = tf.keras.Sequential(
            [
                tf.keras.layers.Input((784,)),
                tf.keras.layers.Dense(128, activation="relu"),
                tf.keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(
            optimizer=tf.keras.optimizers.Adam(1e-3),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    workers = strategy.num_replicas_in_sync
    train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(32 * workers)

    class Clock(tf.keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.first: float | None = None
            self.epochs: list[float] = []

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if self.first is None:
                self.first = time.time() - t_launch

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.epochs.append(time.perf_counter() - self._t)

    clock = Clock()
    callbacks: list[Any] = [clock]
    if lepton:
        from lepton_nb.keras import LeptonCallback

        callbacks.append(LeptonCallback())
    model.fit(train, epochs=epochs, verbose=0, callbacks=callbacks)
    _, acc = model.evaluate(
        tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(256), verbose=0
    )
    return {"first_step_s": clock.first, "epoch_s": clock.epochs, "accuracy": float(acc)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def by_hand(epochs: int, out_dir: Path) -> dict[str, Any]:
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    t0 = time.time()
    procs = []
    for i in range(2):
        env = {
            **os.environ,
            "TF_USE_LEGACY_KERAS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TF_CONFIG": json.dumps(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
            ),
        }
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--rank",
                    str(i),
                    "--epochs",
                    str(epochs),
                    "--t-launch",
                    repr(t0),
                    "--out",
                    str(out_dir / f"rank{i}.json"),
                ],
                env=env,
                stderr=subprocess.DEVNULL,
            )
        )
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"a hand-started rank failed with code {p.returncode}")
    return {**json.loads((out_dir / "rank0.json").read_text()), "total_s": time.time() - t0}


def through_lepton(cluster: Any, epochs: int) -> dict[str, Any]:
    import lepton_nb as ln

    t0 = time.time()

    def train_fn(ctx: Any) -> dict[str, Any]:
        return keras_mlp(ctx, epochs, t0, lepton=True)

    out = ln.run(train_fn, cluster=cluster, framework="tensorflow")
    return {**out[0], "total_s": time.time() - t0}


def _summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    per_epoch = [statistics.median(r["epoch_s"][1:]) for r in runs]
    return {
        "epoch_s": statistics.median(per_epoch),
        "first_step_s": statistics.median(r["first_step_s"] for r in runs),
        "total_s": statistics.median(r["total_s"] for r in runs),
        "accuracy": min(r["accuracy"] for r in runs),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rank", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--t-launch", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rank is not None:  # one hand-started rank
        result = keras_mlp(None, args.epochs, args.t_launch, lepton=False)
        Path(args.out).write_text(json.dumps(result))
        return

    import lepton_nb as ln

    cluster = ln.launch_cluster(
        n_workers=2, threads_per_worker=1, gpu=False, dashboard_address="127.0.0.1:0"
    )
    cluster.wait_for_workers(2)
    anchor: list[dict[str, Any]] = []
    ours: list[dict[str, Any]] = []
    loads = [os.getloadavg()[0]]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.repeats):
                anchor.append(by_hand(args.epochs, Path(tmp)))
                ours.append(through_lepton(cluster, args.epochs))
                loads.append(os.getloadavg()[0])
                print(
                    f"repeat {i + 1}: anchor {anchor[-1]['epoch_s']}, ours {ours[-1]['epoch_s']}",
                    flush=True,
                )
    finally:
        cluster.close()
    a, o = _summary(anchor), _summary(ours)
    print(
        f"\nKeras MLP, 2 workers, {args.epochs} epochs, medians of {args.repeats} "
        f"(load average {min(loads):.1f}-{max(loads):.1f})"
    )
    print("| measure | by hand (TF_CONFIG) | ln.run | ratio |")
    print("|---|---:|---:|---:|")
    for key, label in (
        ("epoch_s", "per-epoch time (s)"),
        ("first_step_s", "time to first step (s)"),
        ("total_s", "whole run (s)"),
    ):
        print(f"| {label} | {a[key]:.3f} | {o[key]:.3f} | {o[key] / a[key]:.3f} |")
    print(f"| test accuracy (min) | {a['accuracy']:.4f} | {o['accuracy']:.4f} | |")
    print(
        f"\nreproduce: python benchmarks/keras_vs_tfconfig.py --epochs {args.epochs} "
        f"--repeats {args.repeats}"
    )


if __name__ == "__main__":
    main()
