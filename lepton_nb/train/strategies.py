"""The strategy registry: how ranks are placed and how they share what they learn.

- ``single``: one in-process rank (no cluster needed; what fit uses without a cluster).
- ``ddp``: one pinned Dask task per worker, a gloo/nccl process group, DistributedDataParallel.
- ``ps-sync`` / ``ps-async``: a Dask Actor parameter server (see :mod:`lepton_nb.train.ps`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from lepton_nb._registry import Registry
from lepton_nb.train._common import Payload
from lepton_nb.train.context import TrainContext
from lepton_nb.train.loop import train_loop
from lepton_nb.train.ps import ParameterServer, ps_loop


@dataclass(frozen=True)
class Strategy:
    name: str
    body: Callable[[TrainContext, Any], Any]
    in_process: bool = False
    init_group: bool = False
    prepare: Callable[[Any, list[Any], Any], Any] | None = None
    abort: Callable[[Any, str], None] | None = None


STRATEGIES: Registry[Strategy] = Registry("strategy")


def _ddp_body(ctx: TrainContext, payload: Payload) -> dict[str, Any]:
    return train_loop(ctx, payload, distributed=True)


def _single_body(ctx: TrainContext, payload: Payload) -> dict[str, Any]:
    return train_loop(ctx, payload, distributed=False)


def _ps_prepare(mode: str, client: Any, specs: list[Any], payload: Payload) -> Payload:
    data = client.scatter(payload, workers=[specs[0].address], hash=False)
    server = client.submit(ParameterServer, data, len(specs), mode, specs[0].checkpoint_dir,
                           specs[0].storage_options, actor=True,
                           workers=[specs[0].address], allow_other_workers=False,
                           pure=False).result(timeout=120)
    return replace(payload, extra={**payload.extra, "server": server, "mode": mode})


def _ps_abort(payload: Payload, reason: str) -> None:
    server = payload.extra.get("server")
    if server is None:
        return
    try:
        server.abort(reason).result(timeout=10)
    except RuntimeError as e:  # the server's worker is the one that was lost: nobody to tell
        if "Actor was lost" not in str(e):
            raise


STRATEGIES.add("single", Strategy("single", _single_body, in_process=True))
STRATEGIES.add("ddp", Strategy("ddp", _ddp_body, init_group=True))
for _mode in ("sync", "async"):
    STRATEGIES.add(f"ps-{_mode}", Strategy(f"ps-{_mode}", ps_loop,
                                            prepare=partial(_ps_prepare, _mode), abort=_ps_abort))

__all__ = ["STRATEGIES", "Strategy"]
