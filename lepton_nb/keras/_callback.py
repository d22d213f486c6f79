"""LeptonCallback: Keras logs -> lepton_nb metric events (see :mod:`lepton_nb.keras`)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import tf_keras

from lepton_nb.errors import ConfigError
from lepton_nb.train._rankproc import current_context
from lepton_nb.train._tf import RESUME_FILE
from lepton_nb.train.context import TrainContext


def _numbers(logs: dict[str, Any] | None, *, val: bool) -> dict[str, float]:
    out = {}
    for key, value in (logs or {}).items():
        if key.startswith("val_") != val:
            continue
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


class LeptonCallback(tf_keras.callbacks.Callback):  # type: ignore[misc]
    """Report Keras' batch logs (``loss`` and compiled metrics, Keras' running means over the
    epoch) as ``step`` events every ``every`` batches, and the epoch's ``val_*`` metrics as an
    ``epoch`` event.  Steps count globally across epochs (``epoch * steps_per_epoch + batch +
    1``), so a run resumed by ``BackupAndRestore`` continues the curve where it left off.

    ``ctx`` defaults to the context of the rank running this process."""

    def __init__(self, ctx: TrainContext | None = None, every: int = 1) -> None:
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise ConfigError(f"every={every!r} must be a positive number of batches")
        ctx = ctx if ctx is not None else current_context()
        if ctx is None:
            raise ConfigError(
                "LeptonCallback() found no rank context: use it inside a train_fn "
                "run by ln.run(train_fn, cluster=..., framework='tensorflow'), or "
                "pass ctx="
            )
        self.ctx, self.every = ctx, every
        self._epoch, self._step, self._t, self._steps_at = 0, 0, 0.0, 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        import tensorflow as tf

        strategy = getattr(self.model, "distribute_strategy", None)
        if self.ctx.world_size > 1 and not isinstance(
            strategy, tf.distribute.MultiWorkerMirroredStrategy
        ):
            raise ConfigError(
                f"train_fn must build and compile its Keras model inside the strategy's scope "
                f"(the model's strategy is {type(strategy).__name__}, so the "
                f"{self.ctx.world_size} ranks would train separately): strategy = "
                "tf.distribute.MultiWorkerMirroredStrategy(); with strategy.scope(): "
                "model = ...; model.compile(...)"
            )

    def _steps_per_epoch(self) -> int | None:
        steps = (self.params or {}).get("steps")
        return int(steps) if steps else None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        spe = self._steps_per_epoch()
        if spe is not None:
            self._step = epoch * spe
        self._t, self._steps_at = time.perf_counter(), self._step

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._step += 1
        if self._step % self.every:
            return
        metrics: dict[str, Any] = _numbers(logs, val=False)
        elapsed = time.perf_counter() - self._t
        if elapsed > 0:
            metrics["steps_per_s"] = (self._step - self._steps_at) / elapsed
        self.ctx.report(step=self._step, epoch=self._epoch, **metrics)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        val = _numbers(logs, val=True)
        if val:
            self.ctx.emit("epoch", self._step, epoch, **val)
        if self.ctx.rank == 0 and self.ctx.checkpoint_dir is not None:
            self._note_epoch(epoch)

    def _note_epoch(self, epoch: int) -> None:
        """Where a BackupAndRestore restart resumes (the client's restart marker reads it)."""
        if "://" in self.ctx.checkpoint_dir:  # type: ignore[operator]
            return
        path = Path(self.ctx.checkpoint_dir) / RESUME_FILE  # type: ignore[arg-type]
        tmp = path.with_suffix(".tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"epoch": epoch + 1, "step": self._step}))
        os.replace(tmp, path)


__all__ = ["LeptonCallback"]
