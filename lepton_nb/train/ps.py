"""The classic parameter server on a Dask Actor (``ps-sync`` and ``ps-async``).

Each rank computes gradients on its shard of the data and pushes them to the server, which
owns the global parameters and the optimizer, and gets the fresh parameters back in the same
call.  Sync: the server waits for one gradient from every rank, averages them and steps once
(equivalent to data-parallel SGD).  Async: each gradient is applied on arrival; its staleness
(server updates since the rank last pulled) is recorded per update, and a gradient staler than
``max_staleness`` is dropped rather than applied, which bounds the staleness.

Checkpoints hold the server's parameters and optimizer state and its version (the step), plus
rank 0's place in the data; rank 0 writes one every ``checkpoint_every`` server versions and at
each epoch's end, and a new server (after a lost worker, or a second ``fit`` on the same
``checkpoint_dir``) starts from the latest one.  In async mode the ranks resume at rank 0's place.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from lepton_nb.train._common import (
    Meter,
    Payload,
    autocast,
    build_data,
    build_model,
    evaluate,
    loader,
    loss_fn_of,
    skip_batches,
    split_batch,
    to_device,
)
from lepton_nb.train.checkpoint import latest_state
from lepton_nb.train.config import make_optimizer
from lepton_nb.train.context import TrainContext

SYNC_WAIT_S = 120.0


class ParameterServer:
    """Holds the global parameters and optimizer; lives on one worker as a Dask Actor."""

    def __init__(self, payload: Payload, world_size: int, mode: str,
                 checkpoint_dir: str | None = None,
                 storage_options: dict[str, Any] | None = None) -> None:
        import torch

        torch.set_num_threads(1)
        cfg = payload.cfg
        self.model = build_model(payload.model, cfg.seed)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = make_optimizer(payload.optimizer, self.params, cfg.lr)
        self.world_size = world_size
        self.mode = mode
        self.max_staleness = cfg.max_staleness
        self.version = 0
        self.resume_point = (0, 0)  # (epoch, samples into it) the ranks start from
        state = latest_state(checkpoint_dir, storage_options)
        if state is not None:  # the server's parameters and optimizer, as last checkpointed
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
            self.version = int(state["step"])
            self.resume_point = (int(state["epoch"]), int(state["samples"]))
        self.staleness: list[int] = []
        self.dropped = 0
        self._pending: dict[int, list[Any]] = {}
        self._done: asyncio.Event | None = None
        self._aborted: str | None = None
        self._finished: asyncio.Event | None = None
        self._finished_ranks: set[int] = set()

    def _apply(self, grads: list[list[Any]]) -> None:
        for i, p in enumerate(self.params):
            gs = [g[i] for g in grads if g[i] is not None]
            p.grad = (sum(gs) / len(gs)) if gs else None
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.version += 1

    def _snapshot(self) -> list[Any]:
        return [p.detach().clone() for p in self.params]

    def pull(self) -> tuple[int, list[Any], tuple[int, int]]:
        return self.version, self._snapshot(), self.resume_point

    def state(self) -> dict[str, Any]:
        """What a checkpoint holds of the server: parameters, optimizer state, version."""
        import copy

        return {"model": copy.deepcopy(self.model.state_dict()),
                "optimizer": copy.deepcopy(self.opt.state_dict()), "step": self.version}

    async def push_sync(self, rank: int, grads: list[Any]) -> tuple[int, list[Any]]:
        if self._aborted:
            raise RuntimeError(f"parameter server aborted: {self._aborted}")
        if self._done is None:
            self._done = asyncio.Event()
        done = self._done
        self._pending[rank] = grads
        if len(self._pending) == self.world_size:
            self._apply(list(self._pending.values()))
            self._pending.clear()
            self._done = asyncio.Event()
            done.set()
        else:
            await asyncio.wait_for(done.wait(), SYNC_WAIT_S)
            if self._aborted:
                raise RuntimeError(f"parameter server aborted: {self._aborted}")
        return self.version, self._snapshot()

    def push_async(self, rank: int, grads: list[Any], version: int) -> tuple[int, list[Any], int]:
        stale = self.version - version
        self.staleness.append(stale)
        if stale <= self.max_staleness:
            self._apply([grads])
        else:
            self.dropped += 1
        return self.version, self._snapshot(), stale

    def stats(self) -> dict[str, Any]:
        s = self.staleness
        return {"updates": self.version, "dropped": self.dropped,
                "max_staleness": max(s) if s else 0,
                "mean_staleness": sum(s) / len(s) if s else 0.0}

    async def finish(self, rank: int) -> tuple[int, list[Any]]:
        """A barrier at the end: returns the final parameters once every rank has finished."""
        if self._finished is None:
            self._finished = asyncio.Event()
        self._finished_ranks.add(rank)
        if len(self._finished_ranks) == self.world_size:
            self._finished.set()
        else:
            await asyncio.wait_for(self._finished.wait(), SYNC_WAIT_S)
        if self._aborted:
            raise RuntimeError(f"parameter server aborted: {self._aborted}")
        return self.version, self._snapshot()

    async def abort(self, reason: str) -> None:
        self._aborted = reason
        for ev in (self._done, self._finished):
            if ev is not None:
                ev.set()


def _load(params: list[Any], values: list[Any]) -> None:
    import torch

    with torch.no_grad():
        for p, v in zip(params, values, strict=True):
            p.copy_(v)


def ps_loop(ctx: TrainContext, payload: Payload) -> dict[str, Any]:
    import torch

    cfg = payload.cfg
    server = payload.extra["server"]
    sync = payload.extra["mode"] == "sync"
    device = ctx.device
    model = build_model(payload.model, cfg.seed).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    train_ds = build_data(payload.train_data)
    val_ds = build_data(payload.val_data) if ctx.rank == 0 else None
    loss_fn = loss_fn_of(payload)
    version, values, (start_epoch, skip_samples) = server.pull().result()
    _load(params, values)
    dl = loader(train_ds, cfg, ctx.rank, ctx.world_size, device)
    global_batch = dl.batch_size * ctx.world_size
    steps_per_epoch = math.ceil(len(dl.sampler) / dl.batch_size)
    meter = Meter()
    last_val: dict[str, float] = {}
    stale_max = 0
    saved = version

    def checkpoint(epoch: int, samples: int) -> None:
        # rank 0 saves the server's state; in sync mode it is consistent with this rank's
        # progress (the server cannot step again before rank 0 pushes)
        if ctx.checkpoint_dir is None or ctx.rank != 0:
            return
        ctx.save_checkpoint({**server.state().result(), "epoch": epoch, "samples": samples,
                             "config": cfg.to_dict()})

    model.train()
    for epoch in range(start_epoch, cfg.epochs):
        dl.sampler.set_epoch(epoch)  # type: ignore[attr-defined]
        skip = skip_samples // global_batch if epoch == start_epoch else 0
        samples = skip * global_batch
        for batch in skip_batches(dl, skip):
            x, y = (to_device(b, device) for b in split_batch(batch))
            with autocast(cfg, device):
                loss = loss_fn(model(x), y)
            for p in params:
                p.grad = None
            loss.backward()
            grads = [None if p.grad is None else p.grad.detach().cpu() for p in params]
            if sync:
                version, values = server.push_sync(ctx.rank, grads).result()
            else:
                version, values, stale = server.push_async(ctx.rank, grads, version).result()
                stale_max = max(stale_max, stale)
            _load(params, values)
            samples += len(y) * ctx.world_size
            meter.add(loss, len(y))
            if meter.n == cfg.log_every:
                m = meter.flush(cfg.lr)
                ctx.report(step=version, epoch=epoch, staleness=stale_max, **m)
                stale_max = 0
            if version // cfg.checkpoint_every > saved // cfg.checkpoint_every:
                checkpoint(epoch, samples)
                saved = version
        if meter.n:
            ctx.report(step=version, epoch=epoch, staleness=stale_max, **meter.flush(cfg.lr))
        if val_ds is not None:
            last_val = evaluate(model, val_ds, loss_fn, cfg, device)
            ctx.emit("epoch", version, epoch, **last_val)
        checkpoint(epoch + 1, 0)
    out: dict[str, Any] = {"step": version, "metrics": last_val,
                           "steps_per_epoch": steps_per_epoch}
    _, values = server.finish(ctx.rank).result()  # async: others may push after our pull
    out["server"] = server.stats().result()
    if ctx.rank == 0:
        _load(params, values)
        if not sync and val_ds is not None:  # metrics describe the model fit returns
            out["metrics"] = evaluate(model, val_ds, loss_fn, cfg, device)
        with torch.no_grad():
            out["state_dict"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return out


__all__ = ["ParameterServer", "ps_loop"]
