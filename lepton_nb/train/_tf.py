"""The ``tensorflow`` framework of :func:`lepton_nb.train.run`: Keras MultiWorkerMirroredStrategy.

Each rank runs in its own process (:mod:`lepton_nb.train._rankproc`), a child of its Dask worker,
with ``TF_CONFIG`` naming every rank's ``host:port`` (a port found free *on that worker*) and
its own index, and ``TF_USE_LEGACY_KERAS=1``: Keras 3, the default ``tf.keras`` since
TensorFlow 2.16, cannot train under MultiWorkerMirroredStrategy, tf-keras (Keras 2) can.
This module never imports TensorFlow itself; only the rank processes do.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from lepton_nb.errors import ConfigError
from lepton_nb.train._rendezvous import free_port
from lepton_nb.train.callbacks import Event
from lepton_nb.train.context import TrainContext
from lepton_nb.train.strategy import FunctionStrategy

INSTALL = 'pip install "lepton-nb[tf]"'
RESUME_FILE = "lepton-keras.json"  # last finished epoch, written by LeptonCallback on rank 0
_MODULES = ("tensorflow", "tf_keras")
_SCOPE_MARKS = (
    "strategy scope",
    "distribution strategy scope",
    "strategy.scope()",
    "was not created in the distribution strategy",
)


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken install, or sys.modules[name] = None
        return False


def require() -> None:
    """Raise a ConfigError naming the extra when TensorFlow or tf-keras is not installed."""
    missing = [m.replace("_", "-") for m in _MODULES if not _installed(m)]
    if missing:
        raise ConfigError(
            f"framework='tensorflow' needs {' and '.join(missing)}, not installed here; "
            f"install the tf extra: {INSTALL} (on NVIDIA GPUs add tensorflow[and-cuda])"
        )


@dataclass(frozen=True)
class TFCluster:
    """The ``cluster`` part of TF_CONFIG: every rank's ``host:port``, index = rank."""

    workers: tuple[str, ...]

    def tf_config(self, index: int) -> str:
        return json.dumps(
            {"cluster": {"worker": list(self.workers)}, "task": {"type": "worker", "index": index}}
        )


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@contextmanager
def checkpoint_location(checkpoint_dir: str | None) -> Iterator[str]:
    """BackupAndRestore needs a directory every rank sees: the user's, else a temporary one
    (local clusters share the client's file system) removed when the run ends."""
    if checkpoint_dir is not None:
        where = str(checkpoint_dir)
        scheme = where.split("://", 1)[0] if "://" in where else None
        if scheme not in (None, "file", "gs"):
            raise ConfigError(
                f"checkpoint_dir={where!r}: Keras BackupAndRestore writes through tf.io.gfile, "
                "which reads local paths and gs:// (s3:// needs tensorflow-io); use a shared "
                "local or gs:// directory for framework='tensorflow'"
            )
        yield where
        return
    tmp = tempfile.mkdtemp(prefix="lepton-keras-")
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def resume_step(checkpoint_dir: str | None) -> int:
    """The step at the end of the last finished epoch (where BackupAndRestore resumes)."""
    if checkpoint_dir is None:
        return 0
    try:
        return int(json.loads((Path(checkpoint_dir) / RESUME_FILE).read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


class _Relay:
    """Where the child's events go: the in-process sink, or the worker's event topic in
    batches of at most ``interval`` seconds (one ``log_event`` per event costs the worker,
    scheduler and client a message each; at one event per batch per rank that is CPU taken
    from the ranks on a small machine).  The client's hub redraws every 0.2 s anyway."""

    def __init__(self, ctx: TrainContext, interval: float = 0.1) -> None:
        self.ctx, self.interval = ctx, interval
        self._buf: list[Event] = []
        self._last = 0.0
        self._worker: Any = None
        if ctx.sink is None:
            from distributed import get_worker

            self._worker = get_worker()

    def __call__(self, event: Event) -> None:
        self.ctx.events.append(event)
        if self._worker is None:
            assert self.ctx.sink is not None
            self.ctx.sink(event)
            return
        self._buf.append(event)
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.flush()

    def flush(self) -> None:
        if self._buf and self._worker is not None:
            self._worker.log_event(self.ctx.topic, self._buf)
            self._buf = []


class KerasStrategy(FunctionStrategy):
    """``train_fn(ctx)`` in a child process per rank, with TF_CONFIG for this attempt."""

    name = "tensorflow"
    rank_process = False  # body() starts the rank's own process itself (_rankproc)

    def prepare(self, client: Any, specs: list[Any], payload: Any) -> TFCluster:
        """Client side, once per attempt: a free port on each rank's own worker."""
        futures = [
            client.submit(
                free_port, s.host, workers=[s.address], allow_other_workers=False, pure=False
            )
            for s in specs
        ]
        ports = client.gather(futures)
        return TFCluster(tuple(_hostport(s.host, p) for s, p in zip(specs, ports, strict=True)))

    def body(self, ctx: TrainContext, payload: Any) -> Any:
        """Runs in the worker's task: start this rank's process and relay its events."""
        from lepton_nb.train._rankproc import run_in_child

        env = {
            "TF_USE_LEGACY_KERAS": "1",
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        }
        if isinstance(payload, TFCluster):  # None for the in-process rank (no cluster)
            env["TF_CONFIG"] = payload.tf_config(ctx.rank)
        fields = {
            "rank": ctx.rank,
            "world_size": ctx.world_size,
            "local_rank": ctx.local_rank,
            "device": str(ctx.device),
            "run_id": ctx.run_id,
            "attempt": ctx.attempt,
            "checkpoint_dir": ctx.checkpoint_dir,
            "worker_address": ctx.worker_address,
        }
        relay = _Relay(ctx)
        try:
            return run_in_child(partial(_call_checked, train_fn=self.train_fn), fields, env, relay)
        finally:
            relay.flush()

    def resume_step(self, checkpoint_dir: str | None) -> int:
        """The step at the end of the last finished epoch (where BackupAndRestore resumes)."""
        return resume_step(checkpoint_dir)


def _call_checked(ctx: TrainContext, train_fn: Callable[[TrainContext], Any]) -> Any:
    """In the rank process: ``train_fn(ctx)``, with TensorFlow's errors that mean a usage
    mistake turned into ConfigErrors that say what to change."""
    try:
        return train_fn(ctx)
    except ImportError as e:
        if (e.name or "").split(".")[0] in _MODULES:
            raise ConfigError(
                f"{e.name} is not installed on worker {ctx.worker_address}; "
                f"install the tf extra there: {INSTALL}"
            ) from None
        raise
    except (ValueError, RuntimeError) as e:
        text = str(e)
        if "must be configured at program startup" in text:
            raise ConfigError(
                "train_fn must create tf.distribute.MultiWorkerMirroredStrategy() first, before "
                "any TensorFlow op or Keras model, then build and compile the model inside "
                f"`with strategy.scope():`.  TensorFlow said: {text[:300]}"
            ) from None
        if any(m in text for m in _SCOPE_MARKS):
            raise ConfigError(
                "train_fn must build and compile its Keras model inside the strategy's scope: "
                "strategy = tf.distribute.MultiWorkerMirroredStrategy(); with strategy.scope(): "
                f"model = ...; model.compile(...).  TensorFlow said: {text[:400]}"
            ) from None
        raise


__all__ = [
    "INSTALL",
    "RESUME_FILE",
    "KerasStrategy",
    "TFCluster",
    "checkpoint_location",
    "require",
    "resume_step",
]
