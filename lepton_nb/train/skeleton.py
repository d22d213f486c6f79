"""The rank loop every ``fit`` strategy shares: build, (resume), epochs of steps, report,
validate.  A strategy's loop subclasses :class:`RankLoop` and fills in how one step updates the
model (:meth:`RankLoop.train_step`) plus the hooks it needs; the skeleton owns the data order,
the metric cadence and the result, so every strategy reports the same way.

Metrics stay off the step path: the loss is accumulated as a detached tensor and turned into a
number (one ``.item()``) and an event only every ``log_every`` steps.
"""

from __future__ import annotations

import math
from typing import Any

from lepton_nb.train._common import (
    Meter,
    Payload,
    build_data,
    build_model,
    evaluate,
    loader,
    loss_fn_of,
    skip_batches,
    split_batch,
    to_device,
)
from lepton_nb.train.context import TrainContext, WorldChange


def _in_group() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class RankLoop:
    """One rank's training run; subclasses implement :meth:`train_step`."""

    def __init__(self, ctx: TrainContext, payload: Payload) -> None:
        import torch

        self.ctx = ctx
        self.payload = payload
        self.cfg = cfg = payload.cfg
        self.device = torch.device(ctx.device) if isinstance(ctx.device, str) else ctx.device
        self.model = build_model(payload.model, cfg.seed).to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.train_ds = build_data(payload.train_data)
        # validated on every rank of a process group (see evaluate), else on rank 0 only
        self.val_ds = build_data(payload.val_data) if ctx.rank == 0 or _in_group() else None
        self.loss_fn = loss_fn_of(payload)
        self.net: Any = self.model  # what forward runs through (DDP / compiled wrappers)
        self.step = 0  # this rank's optimizer steps (restored on resume)
        self.start_epoch = 0
        self.skip_samples = 0  # samples of start_epoch already trained before a resume
        self.last_val: dict[str, float] = {}
        self.steps_per_epoch = 0
        self.place = (0, 0)  # (epoch, samples of it consumed) before the current step

    # --- hooks -------------------------------------------------------------------------------
    def setup(self) -> None:
        """After model and data are built, before the loader: optimizer, resume, wrappers."""

    def train_step(self, x: Any, y: Any) -> Any:
        """Forward, backward and update for one batch; returns the (undetached) loss."""
        raise NotImplementedError

    def report_step(self) -> int:
        """The step number events carry (the parameter server reports its version)."""
        return self.step

    def lr(self) -> float:
        return float(self.cfg.lr)

    def step_metrics(self) -> dict[str, Any]:
        """Extra metrics for the next step report (called once per report)."""
        return {}

    def after_step(self, epoch: int, samples: int) -> None:
        """After each step (``samples``: samples of this epoch consumed by all ranks)."""

    def end_epoch(self, epoch: int) -> None:
        """After an epoch's last step and its validation."""

    def at_checkpoint(self) -> bool:
        """Whether the step just taken wrote a checkpoint (a boundary where an elastic run may
        re-form its world; it must be the same step on every rank of a group)."""
        return self.step % self.cfg.checkpoint_every == 0

    def world_stop(self) -> bool:
        """At a boundary of an elastic run: whether the driver re-forms the world here (all
        ranks of a group get the same answer).  Strategies that learn it another way (the
        parameter server answers it with each push) return False."""
        return self.ctx.world_boundary()

    def _world_boundary(self, meter: Meter, epoch: int) -> None:
        """At a boundary: leave with :class:`WorldChange` if the driver re-forms the world
        (after reporting the steps not reported yet, so none is missing from the history)."""
        if self.ctx.elastic is None or not self.world_stop():
            return
        if meter.n:
            self.report(meter, epoch)
        raise WorldChange(self.report_step())

    def finish(self, out: dict[str, Any]) -> dict[str, Any]:
        """Complete the rank's result; the default adds rank 0's trained weights."""
        if self.ctx.rank == 0:
            out["state_dict"] = self.state_dict()
        return out

    # --- skeleton ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        import torch

        with torch.no_grad():
            return {k: v.detach().cpu() for k, v in self.model.state_dict().items()}

    def report(self, meter: Meter, epoch: int) -> None:
        self.ctx.report(
            step=self.report_step(), epoch=epoch, **self.step_metrics(), **meter.flush(self.lr())
        )

    def run(self) -> dict[str, Any]:
        ctx, cfg, device = self.ctx, self.cfg, self.device
        self.setup()
        dl = loader(self.train_ds, cfg, ctx.rank, ctx.world_size, device)
        global_batch = dl.batch_size * ctx.world_size
        self.steps_per_epoch = math.ceil(len(dl.sampler) / dl.batch_size)
        meter = Meter(device)
        self.net.train()
        for epoch in range(self.start_epoch, cfg.epochs):
            dl.sampler.set_epoch(epoch)  # type: ignore[attr-defined]
            skip = self.skip_samples // global_batch if epoch == self.start_epoch else 0
            samples = skip * global_batch
            for batch in skip_batches(dl, skip):
                x, y = (to_device(b, device) for b in split_batch(batch))
                self.place = (epoch, samples)  # where this step starts in the data
                try:
                    loss = self.train_step(x, y)
                except WorldChange:  # a strategy that re-forms at a step (parameter server)
                    if meter.n:
                        self.report(meter, epoch)
                    raise
                self.step += 1
                samples += len(y) * ctx.world_size
                meter.add(loss, len(y))
                if self.step % cfg.log_every == 0:
                    self.report(meter, epoch)
                self.after_step(epoch, samples)
                if self.at_checkpoint():
                    self._world_boundary(meter, epoch)
            if meter.n:
                self.report(meter, epoch)
            if self.val_ds is not None:
                self.last_val = evaluate(self.model, self.val_ds, self.loss_fn, cfg, device)
                if ctx.rank == 0:
                    ctx.emit("epoch", self.report_step(), epoch, **self.last_val)
            self.end_epoch(epoch)
            if epoch + 1 < cfg.epochs:
                self._world_boundary(meter, epoch)
        out = {
            "step": self.report_step(),
            "metrics": self.last_val,
            "steps_per_epoch": self.steps_per_epoch,
        }
        return self.finish(out)


__all__ = ["RankLoop"]
