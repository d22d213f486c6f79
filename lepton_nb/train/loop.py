"""The data-parallel rank loop used by the ``single`` and ``ddp`` strategies.

Checkpoints hold model, optimizer, scaler, epoch/step, samples consumed in the epoch, RNG
states and the config; a resumed run skips the batches already seen in that epoch (re-deriving
the skip from samples so a smaller world after a lost worker resumes at the same data point).
"""

from __future__ import annotations

import math
from typing import Any

from lepton_nb.train._common import (
    Meter,
    Payload,
    autocast,
    build_data,
    build_model,
    current_lr,
    evaluate,
    loader,
    loss_fn_of,
    skip_batches,
    split_batch,
    to_device,
)
from lepton_nb.train.checkpoint import rng_state, set_rng_state
from lepton_nb.train.config import make_optimizer
from lepton_nb.train.context import TrainContext


def train_loop(ctx: TrainContext, payload: Payload, distributed: bool) -> dict[str, Any]:
    import torch

    cfg = payload.cfg
    device = torch.device(ctx.device) if isinstance(ctx.device, str) else ctx.device
    model = build_model(payload.model, cfg.seed).to(device)
    train_ds = build_data(payload.train_data)
    val_ds = build_data(payload.val_data) if ctx.rank == 0 else None
    loss_fn = loss_fn_of(payload)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(payload.optimizer, trainable, cfg.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")

    start_epoch, skip_samples, step = 0, 0, 0
    state = ctx.load_checkpoint()
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        start_epoch, skip_samples, step = state["epoch"], state["samples"], state["step"]

    net: Any = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        net = DDP(model, device_ids=ids)
    if cfg.compile:
        net = torch.compile(net)

    dl = loader(train_ds, cfg, ctx.rank, ctx.world_size, device)
    global_batch = dl.batch_size * ctx.world_size
    steps_per_epoch = math.ceil(len(dl.sampler) / dl.batch_size)

    def checkpoint(epoch: int, samples: int) -> None:
        if ctx.checkpoint_dir is None or ctx.rank != 0:
            return
        ctx.save_checkpoint({
            "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scaler": scaler.state_dict(), "rng": rng_state(), "epoch": epoch,
            "samples": samples, "step": step, "config": cfg.to_dict(),
        })

    meter = Meter()
    last_val: dict[str, float] = {}
    net.train()
    for epoch in range(start_epoch, cfg.epochs):
        dl.sampler.set_epoch(epoch)  # type: ignore[attr-defined]
        skip = skip_samples // global_batch if epoch == start_epoch else 0
        samples = skip * global_batch
        for batch in skip_batches(dl, skip):
            x, y = (to_device(b, device) for b in split_batch(batch))
            with autocast(cfg, device):
                loss = loss_fn(net(x), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip is not None:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            step += 1
            samples += len(y) * ctx.world_size
            meter.add(loss, len(y))
            if step % cfg.log_every == 0:
                ctx.report(step=step, epoch=epoch, **meter.flush(current_lr(opt)))
            if step % cfg.checkpoint_every == 0:
                checkpoint(epoch, samples)
        if meter.n:
            ctx.report(step=step, epoch=epoch, **meter.flush(current_lr(opt)))
        if val_ds is not None:
            last_val = evaluate(model, val_ds, loss_fn, cfg, device)
            ctx.emit("epoch", step, epoch, **last_val)
        checkpoint(epoch + 1, 0)
    out: dict[str, Any] = {"step": step, "metrics": last_val, "steps_per_epoch": steps_per_epoch}
    if ctx.rank == 0:
        out["state_dict"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return out


__all__ = ["train_loop"]
