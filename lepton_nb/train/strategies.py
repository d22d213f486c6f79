"""The strategy registry (:data:`STRATEGIES`); each entry is a :class:`~lepton_nb.train.strategy.
Strategy` instance.

- ``single``: one in-process rank (no cluster needed; what fit uses without a cluster).
- ``ddp``: one pinned Dask task per worker, a gloo/nccl process group, DistributedDataParallel.
- ``ps-sync`` / ``ps-async``: a Dask Actor parameter server (see :mod:`lepton_nb.train._ps`).

Add one with ``STRATEGIES.add(name, MyStrategy())`` (see ``docs/contributing.md``).
"""

from __future__ import annotations

from lepton_nb._registry import Registry
from lepton_nb.errors import ConfigError, NotFoundError
from lepton_nb.train._loop import DDPStrategy, SingleStrategy
from lepton_nb.train._ps import ParameterServerStrategy
from lepton_nb.train.strategy import Strategy

STRATEGIES: Registry[Strategy] = Registry("strategy")

for _s in (
    SingleStrategy(),
    DDPStrategy(),
    ParameterServerStrategy("sync"),
    ParameterServerStrategy("async"),
):
    STRATEGIES.add(_s.name, _s)


def resolve_strategy(strategy: str | Strategy) -> Strategy:
    """A registered name or a :class:`Strategy` instance; anything else is a ConfigError."""
    if isinstance(strategy, Strategy):
        if not strategy.name:
            raise ConfigError(
                f"{type(strategy).__name__} has no name; set the class attribute name = '...'"
            )
        return strategy
    if not isinstance(strategy, str):
        raise ConfigError(
            f"strategy must be a name ({', '.join(STRATEGIES.names())}) or a "
            f"lepton_nb.train.Strategy, got {type(strategy).__name__}"
        )
    try:
        return STRATEGIES.get(strategy)
    except NotFoundError as e:
        raise ConfigError(str(e)) from None


__all__ = ["STRATEGIES", "Strategy", "resolve_strategy"]
