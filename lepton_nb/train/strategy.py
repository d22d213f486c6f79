"""The :class:`Strategy` base class: how ranks are placed and how they share what they learn.

A strategy is one object that ``fit`` (and ``run``) hands around whole, in the shape of Lightning
Fabric's strategies: the driver calls :meth:`Strategy.prepare` on the client once per attempt,
each rank calls :meth:`Strategy.body` (the rank loop), and the driver calls
:meth:`Strategy.abort` on the client when an attempt fails.  Instances travel to the workers by
pickle, so a strategy keeps only plain, picklable attributes.  This module imports nothing heavy
and nothing else of ``lepton_nb.train``, so every strategy module can import it without cycles.
See ``docs/contributing.md`` ("Adding a strategy").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lepton_nb.train._rendezvous import RankSpec
    from lepton_nb.train.context import TrainContext


class Strategy:
    """Base class of every training strategy (see :data:`lepton_nb.train.STRATEGIES`).

    Class attributes a subclass sets:

    - ``name``: the registry name (``fit(strategy=name)``).
    - ``in_process``: the one rank runs in the calling process (no cluster).
    - ``init_group``: the rank set-up creates a ``torch.distributed`` process group (gloo on
      CPU, nccl on GPU) before :meth:`body` runs, and destroys it after.
    - ``rank_process``: on a cluster, each rank runs in its own child process of its worker
      (:mod:`lepton_nb.train._procs`), as under torchrun; False runs it in the worker's task
      thread, sharing the worker's interpreter.
    - ``precisions``: the ``fit(precision=...)`` values it supports (``precision_note`` says
      why one is missing).
    - ``elastic``: it may run with ``min_workers``/``max_workers`` (docs/elastic.md): its
      ranks call ``ctx.world_boundary()`` at the same checkpoint boundaries and resume from
      the checkpoint in a world of another size.
    """

    name: str = ""
    in_process: bool = False
    init_group: bool = False
    rank_process: bool = True
    precisions: tuple[str, ...] = ("fp32", "bf16", "fp16")  # what fit(precision=) may be
    precision_note: str = ""  # why a precision is missing, for the error message
    elastic: bool = False

    def prepare(self, client: Any, specs: list[RankSpec], payload: Any) -> Any:
        """Client side, once per attempt, before the ranks start: return the payload the
        ranks get (e.g. with a parameter-server actor added).  Default: unchanged."""
        return payload

    def body(self, ctx: TrainContext, payload: Any) -> Any:
        """Rank side: train and return a picklable result (``fit`` strategies return a dict
        with ``step``, ``metrics``, ``steps_per_epoch`` and, on rank 0, ``state_dict``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement body(ctx, payload)")

    def relay(self, payload: Any) -> list[Any]:
        """Worker side: objects in ``payload`` that must stay in the worker process (e.g. a
        Dask Actor handle); a rank process gets proxies whose method calls run in the worker
        and return an object with ``.result()``.  Default: none."""
        return []

    def abort(self, payload: Any, reason: str) -> None:
        """Client side, when an attempt fails, before its ranks are torn down: release what
        :meth:`prepare` set up so blocked ranks return.  Default: nothing to release."""

    def request_stop(self, payload: Any) -> bool:
        """Client side, in an elastic run, when the driver re-forms the world: tell ranks that
        do not read the stop flag at their boundaries (see :meth:`TrainContext.world_boundary`)
        to leave.  False: too late, the run is ending.  Default: nothing to tell."""
        return True

    def resume_step(self, checkpoint_dir: str | None) -> int | None:
        """Client side, after a failure: the step the next attempt resumes from (where the
        restart marker goes).  Default None: the step of ``latest.pt`` in ``checkpoint_dir``."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class FunctionStrategy(Strategy):
    """What :func:`lepton_nb.train.run` uses: each rank calls ``train_fn(ctx)``."""

    name = "run"
    elastic = True  # every ctx.save_checkpoint is a boundary (see TrainContext)

    def __init__(self, train_fn: Any) -> None:
        self.train_fn = train_fn

    def body(self, ctx: TrainContext, payload: Any) -> Any:
        return self.train_fn(ctx)


__all__ = ["FunctionStrategy", "Strategy"]
