"""The framework registry, the tensorflow entry's client side, and rank child processes.

No TensorFlow is imported here: the rank processes run plain functions."""

from __future__ import annotations

import importlib.abc
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from lepton_nb.errors import ConfigError, LeptonError, NotFoundError
from lepton_nb.train import _tf, run
from lepton_nb.train._rankproc import RankProcessError, current_context, run_in_child


def test_unknown_framework_lists_the_known_ones() -> None:
    with pytest.raises(
        NotFoundError,
        match="unknown framework 'jax'; choose one of: 'pytorch', 'tensorflow', 'torch'",
    ):
        run(lambda ctx: None, framework="jax")
    assert isinstance(NotFoundError("x"), LeptonError)


class _Hide(importlib.abc.MetaPathFinder):
    """An environment without TensorFlow: these modules cannot be found."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] in ("tensorflow", "tf_keras"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def test_missing_tensorflow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("tensorflow", "tf_keras"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "meta_path", [_Hide(), *sys.meta_path])
    with pytest.raises(
        ConfigError, match=r'tensorflow and tf-keras.*pip install "lepton-nb\[tf\]"'
    ):
        run(lambda ctx: None, framework="tensorflow")


def test_tf_config_names_every_worker_and_the_rank() -> None:
    c = _tf.TFCluster(("10.0.0.1:2222", "10.0.0.2:3333"))
    assert json.loads(c.tf_config(1)) == {
        "cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:3333"]},
        "task": {"type": "worker", "index": 1},
    }
    assert _tf._hostport("::1", 5) == "[::1]:5"


def test_checkpoint_location_and_resume_step(tmp_path: Path) -> None:
    with _tf.checkpoint_location(None) as tmp:
        assert Path(tmp).is_dir()
        assert _tf.resume_step(tmp) == 0  # no epoch finished yet
        (Path(tmp) / _tf.RESUME_FILE).write_text(json.dumps({"epoch": 2, "step": 126}))
        assert _tf.resume_step(tmp) == 126
    assert not Path(tmp).exists()  # a temporary location goes with the run
    with _tf.checkpoint_location(str(tmp_path)) as mine:
        assert mine == str(tmp_path)
    assert tmp_path.is_dir() and _tf.resume_step(None) == 0
    with (
        pytest.raises(ConfigError, match=r"tf.io.gfile.*s3:// needs tensorflow-io"),
        _tf.checkpoint_location("s3://bucket/run"),
    ):
        pass


def _reports(ctx: Any) -> dict[str, Any]:
    assert current_context() is ctx
    for step in (1, 2, 3):
        ctx.report(step=step, epoch=0, loss=1.0 / step)
    return {"rank": ctx.rank, "pid": os.getpid(), "env": os.environ.get("LEPTON_TEST_ENV")}


def _raises_config(ctx: Any) -> None:
    raise ConfigError("bad setting, change it")


def _raises_plain(ctx: Any) -> None:
    raise KeyError("missing")


def _dies(ctx: Any) -> None:
    os._exit(3)


def _fields(rank: int = 1) -> dict[str, Any]:
    return {"rank": rank, "world_size": 2, "run_id": "r1", "checkpoint_dir": None}


def test_child_relays_events_and_returns_the_result() -> None:
    events: list[dict[str, Any]] = []
    out = run_in_child(_reports, _fields(), {"LEPTON_TEST_ENV": "yes"}, events.append)
    assert out["rank"] == 1 and out["env"] == "yes" and out["pid"] != os.getpid()
    assert [e["step"] for e in events] == [1, 2, 3]
    assert all(e["rank"] == 1 and e["kind"] == "step" for e in events)


def test_child_errors_keep_lepton_classes_and_name_others() -> None:
    with pytest.raises(ConfigError, match="bad setting"):
        run_in_child(_raises_config, _fields(), {}, lambda e: None)
    with pytest.raises(
        RankProcessError,
        match=r"KeyError: 'missing' \(in _raises_plain at "
        r"test_frameworks.py:[0-9]+; full traceback",
    ):
        run_in_child(_raises_plain, _fields(), {}, lambda e: None)
    with pytest.raises(RankProcessError, match="exited with code 3 before returning"):
        run_in_child(_dies, _fields(), {}, lambda e: None)
    assert current_context() is None  # the parent never has a rank context


def _unpicklable(ctx: Any) -> Any:
    import threading

    return threading.Lock()


def test_unpicklable_return_value_is_explained() -> None:
    with pytest.raises(RankProcessError, match="return plain values"):
        run_in_child(_unpicklable, _fields(), {}, lambda e: None)


def _sleeps(ctx: Any) -> None:
    import time

    ctx.report(step=1, pid=os.getpid())
    time.sleep(120)


def test_child_exits_when_its_worker_is_killed(tmp_path: Path) -> None:
    """A SIGKILLed parent (a lost Dask worker) leaves no orphan rank behind."""
    import signal
    import subprocess
    import time

    import psutil

    code = (
        "import sys\n"
        "from lepton_nb.train._rankproc import run_in_child\n"
        "from tests.unit.train.test_frameworks import _sleeps, _fields\n"
        "run_in_child(_sleeps, _fields(), {}, lambda e: print(e['pid'], flush=True))\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[3],
    )
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    assert child.is_running()
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the rank process outlived its worker"
        time.sleep(0.05)


def _env_of_rank(ctx: Any) -> dict[str, Any]:
    ctx.report(step=1, loss=0.5)
    return {
        "legacy": os.environ.get("TF_USE_LEGACY_KERAS"),
        "pid": os.getpid(),
        "tf_config": os.environ.get("TF_CONFIG"),
        "ckpt": ctx.checkpoint_dir,
        "tf_imported": "tensorflow" in sys.modules,
    }


def test_tensorflow_without_a_cluster_runs_one_rank_process(tmp_path: Path) -> None:
    """No cluster: one rank, still in its own process with the legacy-Keras switch (a plain
    function here, so no TensorFlow is imported), events reaching the history."""
    out = run(_env_of_rank, framework="tensorflow")
    r = out[0]
    assert r["legacy"] == "1" and r["tf_config"] is None and r["pid"] != os.getpid()
    assert r["ckpt"] and not Path(r["ckpt"]).exists()  # a temporary location, removed after
    assert not r["tf_imported"] and "tensorflow" not in sys.modules
    assert out.history[out.history.kind == "step"]["loss"].tolist() == [0.5]
    mine = run(_env_of_rank, framework="tensorflow", checkpoint_dir=str(tmp_path))
    assert mine[0]["ckpt"] == str(tmp_path)


def test_hub_takes_batches_of_events_from_the_stream() -> None:
    from lepton_nb.train._events import EventHub

    hub = EventHub([], progress=False, total_steps=None)
    batch = [{"kind": "step", "rank": r, "step": 1, "epoch": 0, "loss": 1.0} for r in (0, 1)]
    hub.on_dask_event((0.0, tuple(batch)))  # as msgpack returns a list
    hub.on_dask_event((0.0, {"kind": "step", "rank": 0, "step": 2, "epoch": 0, "loss": 0.5}))
    hub.drain(force=True)
    assert [(e["rank"], e["step"]) for e in hub.events] == [(0, 1), (1, 1), (0, 2)]
