"""The classic parameter server on a Dask Actor (``ps-sync`` and ``ps-async``).

Each rank computes gradients on its shard of the data and pushes them to the server, which
owns the global parameters and the optimizer, and gets the fresh parameters back in the same
call.  Sync: the server waits for one gradient from every rank, averages them and steps once
(equivalent to data-parallel SGD).  Async: each gradient is applied on arrival; its staleness
(server updates since the rank last pulled) is recorded per update, and a gradient staler than
``max_staleness`` is dropped rather than applied, which bounds the staleness.

Checkpoints hold the server's parameters, optimizer state and version (the step), plus rank 0's
place in the data; rank 0 writes one every ``checkpoint_every`` server versions and at each
epoch's end, and a new server (after a lost worker, or a second ``fit`` on the same
``checkpoint_dir``) starts from the latest one.  In async mode all ranks resume at rank 0's place.

Elastic runs re-form the world at the next step, not at a checkpoint boundary: the driver
asks the server to stop (:meth:`ParameterServer.request_stop`); from then on the server applies
no gradient and answers every push with "stop", so every rank leaves having had the same
updates applied (in sync mode, at the same version), rank 0 checkpoints the server's state
with its own place in the data, and the next world's server starts from that checkpoint.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from lepton_nb.train._common import Payload, autocast, build_model, evaluate
from lepton_nb.train.checkpoint import latest_state
from lepton_nb.train.config import make_optimizer
from lepton_nb.train.context import TrainContext, WorldChange
from lepton_nb.train.skeleton import RankLoop
from lepton_nb.train.strategy import Strategy

SYNC_WAIT_S = 120.0


class ParameterServer:
    """Holds the global parameters and optimizer; lives on one worker as a Dask Actor."""

    def __init__(
        self,
        payload: Payload,
        world_size: int,
        mode: str,
        checkpoint_dir: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
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
        self._stop = False  # an elastic run re-forms its world: apply nothing more

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

        return {
            "model": copy.deepcopy(self.model.state_dict()),
            "optimizer": copy.deepcopy(self.opt.state_dict()),
            "step": self.version,
        }

    async def push_sync(self, rank: int, grads: list[Any]) -> tuple[int, list[Any] | None, bool]:
        """(version, parameters, stop): with ``stop`` the gradient was not applied and the
        rank leaves (the parameters are then None)."""
        if self._aborted:
            raise RuntimeError(f"parameter server aborted: {self._aborted}")
        if self._stop:
            return self.version, None, True
        if self._done is None:
            self._done = asyncio.Event()
        done, before = self._done, self.version
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
            if self.version == before:  # woken by request_stop: this step was not applied
                return self.version, None, True
        return self.version, self._snapshot(), False

    def push_async(
        self, rank: int, grads: list[Any], version: int
    ) -> tuple[int, list[Any] | None, int, bool]:
        if self._stop:
            return self.version, None, 0, True
        stale = self.version - version
        self.staleness.append(stale)
        if stale <= self.max_staleness:
            self._apply([grads])
        else:
            self.dropped += 1
        return self.version, self._snapshot(), stale, False

    async def request_stop(self) -> bool:
        """An elastic run re-forms its world: apply no more gradients and answer every push
        (and a sync step in progress) with "stop".  False when a rank has already finished
        (the run is ending; nothing to re-form)."""
        if self._finished_ranks:
            return False
        self._stop = True
        self._pending.clear()
        if self._done is not None:
            self._done.set()
        return True

    def stats(self) -> dict[str, Any]:
        s = self.staleness
        return {
            "updates": self.version,
            "dropped": self.dropped,
            "max_staleness": max(s) if s else 0,
            "mean_staleness": sum(s) / len(s) if s else 0.0,
        }

    async def finish(self, rank: int) -> tuple[int, list[Any] | None]:
        """A barrier at the end: returns the final parameters once every rank has finished
        (None when the world is being re-formed: the others have left)."""
        if self._stop:
            return self.version, None
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


class ParameterServerLoop(RankLoop):
    """A rank of ``ps-sync``/``ps-async``: gradients out, fresh parameters back, every step."""

    def setup(self) -> None:
        self.server = self.payload.extra["server"]
        self.sync = self.payload.extra["mode"] == "sync"
        self.version, values, (self.start_epoch, self.skip_samples) = self.server.pull().result()
        _load(self.params, values)
        self.stale_max = 0
        self.saved = self.version

    def train_step(self, x: Any, y: Any) -> Any:
        with autocast(self.cfg, self.device):
            loss = self.loss_fn(self.model(x), y)
        for p in self.params:
            p.grad = None
        loss.backward()
        grads = [None if p.grad is None else p.grad.detach().cpu() for p in self.params]
        if self.sync:
            self.version, values, stop = self.server.push_sync(self.ctx.rank, grads).result()
        else:
            self.version, values, stale, stop = self.server.push_async(
                self.ctx.rank, grads, self.version
            ).result()
            self.stale_max = max(self.stale_max, stale)
        if stop:
            self._leave(*self.place)
        _load(self.params, values)
        return loss

    def _leave(self, epoch: int, samples: int) -> None:
        """The world is re-formed: rank 0 checkpoints the server as it stands (no gradient is
        applied any more) with its place in the data, then every rank leaves."""
        self.checkpoint(epoch, samples)
        raise WorldChange(int(self.version))

    def world_stop(self) -> bool:
        return False  # the server answers it with each push

    def report_step(self) -> int:
        return int(self.version)

    def checkpoint(self, epoch: int, samples: int) -> None:
        # rank 0 saves the server's state; in sync mode it matches this rank's place in the
        # data (the server cannot step again before rank 0 pushes)
        if self.ctx.checkpoint_dir is None or self.ctx.rank != 0:
            return
        self.ctx.save_checkpoint(
            {
                **self.server.state().result(),
                "epoch": epoch,
                "samples": samples,
                "config": self.cfg.to_dict(),
            }
        )

    def after_step(self, epoch: int, samples: int) -> None:
        every = self.cfg.checkpoint_every
        if self.version // every > self.saved // every:
            self.checkpoint(epoch, samples)
            self.saved = self.version

    def end_epoch(self, epoch: int) -> None:
        self.checkpoint(epoch + 1, 0)

    def step_metrics(self) -> dict[str, Any]:
        out = {"staleness": self.stale_max}
        self.stale_max = 0
        return out

    def finish(self, out: dict[str, Any]) -> dict[str, Any]:
        _, values = self.server.finish(self.ctx.rank).result()  # async: others push after us
        if values is None:  # the world is re-formed while we finished: resume at the end
            self._leave(self.cfg.epochs, 0)
        out["server"] = self.server.stats().result()
        if self.ctx.rank == 0:
            _load(self.params, values)
            if not self.sync and self.val_ds is not None:  # metrics of the model fit returns
                out["metrics"] = evaluate(
                    self.model, self.val_ds, self.loss_fn, self.cfg, self.device
                )
            out["state_dict"] = self.state_dict()
        return out


def ps_loop(ctx: TrainContext, payload: Payload) -> dict[str, Any]:
    return ParameterServerLoop(ctx, payload).run()


class ParameterServerStrategy(Strategy):
    """``ps-sync`` / ``ps-async``: the server is a Dask Actor on the rank-0 worker."""

    init_group = False
    elastic = True  # re-formed at the next step (see the module docstring)
    # In a rank process every push/pull would be relayed through the worker (child -> worker
    # -> Actor and back): measured 2,200-2,800 samples/s vs 4,100-7,300 with the rank in the
    # worker's thread (LeNet5, 2 workers, same run; ddp 4,900-5,200), so PS ranks stay there.
    rank_process = False
    # fp16 needs loss scaling, and the server would average raw, possibly underflowed or inf,
    # gradients into its weights; bf16 has fp32's range and needs none.
    precisions = ("fp32", "bf16")
    precision_note = (
        ": the parameter server has no loss scaling, so underflowed or inf fp16 "
        "gradients would be averaged into its weights; use 'bf16' (fp32's range, "
        "no scaling needed) or strategy='ddp'"
    )

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.name = f"ps-{mode}"

    def prepare(self, client: Any, specs: list[Any], payload: Payload) -> Payload:
        data = client.scatter(payload, workers=[specs[0].address], hash=False)
        server = client.submit(
            ParameterServer,
            data,
            len(specs),
            self.mode,
            specs[0].checkpoint_dir,
            specs[0].storage_options,
            actor=True,
            workers=[specs[0].address],
            allow_other_workers=False,
            pure=False,
        ).result(timeout=120)
        return replace(payload, extra={**payload.extra, "server": server, "mode": self.mode})

    def body(self, ctx: TrainContext, payload: Payload) -> dict[str, Any]:
        return ps_loop(ctx, payload)

    def relay(self, payload: Payload) -> list[Any]:
        return [payload.extra["server"]]  # an Actor handle works only inside a Dask worker

    def request_stop(self, payload: Payload) -> bool:
        return bool(payload.extra["server"].request_stop().result(timeout=30))

    def abort(self, payload: Payload, reason: str) -> None:
        server = payload.extra.get("server")
        if server is None:
            return
        try:
            server.abort(reason).result(timeout=10)
        except RuntimeError as e:  # the server's worker is the one that was lost: nobody to tell
            if "Actor was lost" not in str(e):
                raise


__all__ = ["ParameterServer", "ParameterServerLoop", "ParameterServerStrategy", "ps_loop"]
