"""The data-parallel strategies, ``single`` and ``ddp``, and their rank loop.

Checkpoints hold model, optimizer, scaler, epoch/step, samples consumed in the epoch, RNG
states and the config; a resumed run skips the batches already seen in that epoch (re-deriving
the skip from samples so a smaller world after a lost worker resumes at the same data point).
"""

from __future__ import annotations

from typing import Any

from lepton_nb.train._common import Payload, autocast, current_lr
from lepton_nb.train.checkpoint import rng_state, set_rng_state
from lepton_nb.train.config import make_optimizer
from lepton_nb.train.context import TrainContext
from lepton_nb.train.skeleton import RankLoop
from lepton_nb.train.strategy import Strategy


class DataParallelLoop(RankLoop):
    """Every rank holds the whole model; DDP all-reduces gradients (``distributed=True``)."""

    def __init__(self, ctx: TrainContext, payload: Payload, distributed: bool) -> None:
        super().__init__(ctx, payload)
        self.distributed = distributed

    def setup(self) -> None:
        import torch

        cfg, device = self.cfg, self.device
        self.opt = make_optimizer(self.payload.optimizer, self.params, cfg.lr)
        self.scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
        state = self.ctx.load_checkpoint()
        if state is not None:
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
            self.scaler.load_state_dict(state["scaler"])
            set_rng_state(state["rng"], self.device)
            self.start_epoch, self.skip_samples = state["epoch"], state["samples"]
            self.step = state["step"]
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [device.index] if device.type == "cuda" else None
            self.net = DDP(self.model, device_ids=ids)
        if cfg.compile:
            self.net = torch.compile(self.net)

    def train_step(self, x: Any, y: Any) -> Any:
        import torch

        cfg, opt, scaler = self.cfg, self.opt, self.scaler
        with autocast(cfg, self.device):
            loss = self.loss_fn(self.net(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.grad_clip is not None:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        return loss

    def lr(self) -> float:
        return current_lr(self.opt)

    def checkpoint(self, epoch: int, samples: int) -> None:
        if self.ctx.checkpoint_dir is None or self.ctx.rank != 0:
            return
        self.ctx.save_checkpoint(
            {
                "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": rng_state(self.device),
                "epoch": epoch,
                "samples": samples,
                "step": self.step,
                "config": self.cfg.to_dict(),
            }
        )

    def after_step(self, epoch: int, samples: int) -> None:
        if self.step % self.cfg.checkpoint_every == 0:
            self.checkpoint(epoch, samples)

    def end_epoch(self, epoch: int) -> None:
        self.checkpoint(epoch + 1, 0)


def train_loop(ctx: TrainContext, payload: Payload, distributed: bool) -> dict[str, Any]:
    return DataParallelLoop(ctx, payload, distributed).run()


class SingleStrategy(Strategy):
    """One rank in the calling process (what ``fit`` uses without a cluster)."""

    name = "single"
    in_process = True

    def body(self, ctx: TrainContext, payload: Payload) -> dict[str, Any]:
        return train_loop(ctx, payload, distributed=False)


class DDPStrategy(Strategy):
    """One rank per worker, a gloo/nccl process group, DistributedDataParallel."""

    name = "ddp"
    init_group = True
    elastic = True

    def body(self, ctx: TrainContext, payload: Payload) -> dict[str, Any]:
        return train_loop(ctx, payload, distributed=True)


__all__ = ["DDPStrategy", "DataParallelLoop", "SingleStrategy", "train_loop"]
