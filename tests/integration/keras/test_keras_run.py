"""Keras (tf-keras) MultiWorkerMirroredStrategy ranks through ``ln.run(framework="tensorflow")``
on a real 2-worker Dask cluster: accuracy, TF_CONFIG per rank, the live curve, recovery.

One module-scoped cluster; the recovery test kills one of its workers (the nanny restarts it),
so it runs last.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lepton_nb as ln
from lepton_nb.errors import ConfigError, TrainingError
from lepton_nb.train import run
from lepton_nb.train._driver import workers_of

if importlib.util.find_spec("tf_keras") is None:  # find, not import: TF takes seconds
    pytest.skip("needs the tf extra: pip install 'lepton-nb[tf]'", allow_module_level=True)
pytestmark = pytest.mark.integration


def keras_mlp(ctx: Any, epochs: int = 5) -> dict[str, Any]:
    """The classic example as a user writes it: 784-128-10, Adam, batches of 32 per worker."""
    import tensorflow as tf
    import tf_keras

    from lepton_nb import datasets
    from lepton_nb.keras import LeptonCallback

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
    train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0)
    test = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(256)
    model.fit(
        train.batch(32 * ctx.world_size),
        validation_data=test,
        epochs=epochs,
        verbose=0,
        callbacks=[tf.keras.callbacks.BackupAndRestore(ctx.checkpoint_dir), LeptonCallback()],
    )
    _, accuracy = model.evaluate(test, verbose=0)
    return {
        "rank": ctx.rank,
        "test_accuracy": float(accuracy),
        "pid": os.getpid(),
        "tf_config": json.loads(os.environ["TF_CONFIG"]),
        "legacy_keras": os.environ.get("TF_USE_LEGACY_KERAS"),
        "keras": tf_keras.__version__,
    }


def outside_scope(ctx: Any) -> None:
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    model = tf.keras.Sequential([tf.keras.layers.Input((4,)), tf.keras.layers.Dense(1)])
    with strategy.scope():
        model.compile(optimizer="adam", loss="mse")


@pytest.fixture(scope="module")
def cluster(launch_cluster2: Any) -> Iterator[Any]:
    with launch_cluster2() as c:
        yield c


@pytest.fixture(scope="module")
def mlp(cluster: Any) -> dict[str, Any]:
    curve = ln.LossCurve()
    out = run(keras_mlp, cluster=cluster, framework="tensorflow", callbacks=[curve])
    return {
        "out": out,
        "curve": curve,
        "workers": workers_of(cluster.client),
        "worker_pids": set(cluster.client.run(os.getpid).values()),
    }


def test_keras_mlp_reaches_90_percent_on_both_ranks(mlp: dict[str, Any]) -> None:
    out = mlp["out"]
    assert [r["rank"] for r in out] == [0, 1]
    assert all(r["test_accuracy"] >= 0.90 for r in out), out
    assert all(r["legacy_keras"] == "1" and r["keras"].startswith("2.") for r in out)
    h = out.history
    steps = h[h.kind == "step"]
    assert set(steps["rank"]) == {0, 1}
    assert steps.groupby("rank")["step"].max().tolist() == [5 * 63, 5 * 63]  # 4,000 / 64
    epochs = h[h.kind == "epoch"]
    assert len(epochs) == 2 * 5 and epochs["val_accuracy"].iloc[-1] >= 0.90


def test_each_rank_has_its_own_process_and_tf_config(mlp: dict[str, Any]) -> None:
    out, workers = mlp["out"], mlp["workers"]
    hosts = {w["host"] for w in workers.values()}
    config = out[0]["tf_config"]["cluster"]["worker"]
    assert len(config) == 2 and len(set(config)) == 2
    assert {c.rsplit(":", 1)[0] for c in config} == hosts
    for r in out:
        assert r["tf_config"]["cluster"]["worker"] == config  # both name both workers
        assert r["tf_config"]["task"] == {"type": "worker", "index": r["rank"]}
    worker_pids = mlp["worker_pids"] | {os.getpid()}
    assert len({r["pid"] for r in out}) == 2 and not {r["pid"] for r in out} & worker_pids


def test_curve_receives_both_ranks_losses(mlp: dict[str, Any]) -> None:
    curve = mlp["curve"]
    stats = curve.stats
    assert stats["ranks"] == [0, 1] and set(stats["bad_values"]) <= {"worker"}, stats
    seen = curve.history
    losses = seen[(seen.kind == "step")].groupby("rank")["loss"].count()
    assert losses.loc[0] == losses.loc[1] == 5 * 63
    assert len(seen) == len(mlp["out"].history)


def test_unknown_framework_and_too_many_ranks(cluster: Any) -> None:
    with pytest.raises(ln.LeptonError, match=r"unknown framework 'jax'.*'tensorflow'.*'torch'"):
        run(keras_mlp, cluster=cluster, framework="jax")
    with pytest.raises(ConfigError, match="n_workers=3 ranks but the cluster has only 2"):
        run(keras_mlp, cluster=cluster, framework="tensorflow", n_workers=3)


def test_model_outside_strategy_scope_is_named(cluster: Any) -> None:
    with pytest.raises(TrainingError, match=r"inside the strategy's scope"):
        run(outside_scope, cluster=cluster, framework="tensorflow")


def test_killed_worker_resumes_from_backup(
    cluster: Any, kill_worker_at: Any, tmp_path: Path
) -> None:
    killer = kill_worker_at(cluster.client, step=2 * 63 + 10, rank=1)  # during the third epoch
    out = run(
        keras_mlp,
        cluster=cluster,
        framework="tensorflow",
        max_restarts=1,
        checkpoint_dir=str(tmp_path),
        callbacks=[killer],
    )
    assert killer.killed_at is not None and killer.restart_seen_at is not None
    print(f"restart marked {killer.restart_seen_at - killer.killed_at:.2f} s after SIGKILL")
    h = out.history
    restarts = h[h.kind == "restart"]
    assert len(restarts) == 1 and int(restarts.attempt.iloc[0]) == 1
    assert "lost worker" in restarts.reason.iloc[0] or "failed" in restarts.reason.iloc[0]
    resumed = int(restarts.step.iloc[0])
    assert resumed == 2 * 63  # the last epoch BackupAndRestore saved
    second = h[(h.kind == "step") & (h.attempt == 1)]
    assert int(second.step.min()) == resumed + 1  # not from scratch
    assert set(second["rank"]) == {0, 1} and int(second.step.max()) == 5 * 63
    assert all(r["test_accuracy"] >= 0.90 for r in out)
