"""Fit configuration, the loss/optimizer/precision registries, and up-front validation.

Everything a user can get wrong is checked here, on the client, before a task reaches the
cluster, so a typo costs a clear :class:`~lepton_nb.errors.ConfigError` instead of a stack trace
from a worker.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from lepton_nb._registry import Registry
from lepton_nb.errors import ConfigError, NotFoundError

LossFn = Callable[[Any, Any], Any]

LOSSES: Registry[Callable[[], LossFn]] = Registry("loss")
OPTIMIZERS: Registry[Callable[..., Any]] = Registry("optimizer")
PRECISIONS = ("fp32", "bf16", "fp16")


def _cross_entropy() -> LossFn:
    import torch.nn.functional as F

    def loss(outputs: Any, targets: Any) -> Any:
        if outputs.dim() == 3:  # (B, T, V) language-model logits: one prediction per token
            return F.cross_entropy(outputs.reshape(-1, outputs.size(-1)), targets.reshape(-1))
        return F.cross_entropy(outputs, targets)

    return loss


def _mse() -> LossFn:
    import torch.nn.functional as F

    def loss(outputs: Any, targets: Any) -> Any:
        return F.mse_loss(outputs, targets.to(outputs.dtype).reshape(outputs.shape))

    return loss


LOSSES.add("cross_entropy", _cross_entropy)
LOSSES.add("mse", _mse)


def _opt(name: str) -> Callable[..., Any]:
    def make(params: Any, lr: float) -> Any:
        import torch

        cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
        return cls(params, lr=lr)

    return make


for _name in ("sgd", "adam", "adamw"):
    OPTIMIZERS.add(_name, _opt(_name))


def resolve_loss(loss: str | LossFn) -> LossFn:
    if callable(loss):
        return loss
    return LOSSES.get(loss)()


def make_optimizer(optimizer: str | Callable[..., Any], params: Any, lr: float) -> Any:
    """``optimizer`` is a registered name or a callable ``(params, lr) -> Optimizer``."""
    if callable(optimizer):
        return optimizer(params, lr)
    return OPTIMIZERS.get(optimizer)(params, lr)


@dataclass
class FitConfig:
    """The plain (picklable, dict round-trippable) settings of one fit."""

    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    strategy: str = "ddp"
    precision: str = "fp32"
    checkpoint_dir: str | None = None
    checkpoint_every: int = 50
    max_restarts: int = 2
    seed: int = 0
    log_every: int = 10
    n_workers: int | None = None
    compile: bool = False
    max_staleness: int = 4
    grad_clip: float | None = None
    min_workers: int | None = None  # elastic when either bound is set (docs/elastic.md)
    max_workers: int | None = None
    wait_timeout_s: float = 300.0

    @property
    def elastic(self) -> bool:
        return self.min_workers is not None or self.max_workers is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FitConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown fit settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)

    def validate(self) -> None:
        """Check the plain settings; the strategy name is checked by ``fit`` against the
        registry (this module stays below the strategies in the import graph)."""
        for name in ("epochs", "batch_size", "log_every", "checkpoint_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be a whole number >= 1, got {v!r}")
        if not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise ConfigError(f"lr must be a positive number (e.g. 1e-3), got {self.lr!r}")
        if not isinstance(self.max_restarts, int) or self.max_restarts < 0:
            raise ConfigError(f"max_restarts must be >= 0, got {self.max_restarts!r}")
        if self.n_workers is not None and (
            not isinstance(self.n_workers, int) or self.n_workers < 1
        ):
            raise ConfigError(f"n_workers must be >= 1 or None (all), got {self.n_workers!r}")
        if self.max_staleness < 0:
            raise ConfigError(f"max_staleness must be >= 0, got {self.max_staleness}")
        check_elastic(self.min_workers, self.max_workers, self.wait_timeout_s)
        if self.elastic:
            if self.strategy == "single":
                raise ConfigError(
                    "min_workers/max_workers need a cluster strategy ('ddp', "
                    "'ps-sync', 'ps-async'); strategy='single' trains in this "
                    "process and cannot grow or shrink"
                )
            check_divides(self.batch_size, self.min_workers or 1, self.max_workers)
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"unknown precision {self.precision!r}; choose one of: "
                + ", ".join(repr(p) for p in PRECISIONS)
            )


def _whole(v: Any) -> bool:
    return v is None or (isinstance(v, int) and not isinstance(v, bool))


def check_elastic(min_workers: int | None, max_workers: int | None, wait_timeout_s: float) -> None:
    """The elastic bounds of ``fit``/``run``: each a :class:`ConfigError` before anything
    starts."""
    for name, v in (("min_workers", min_workers), ("max_workers", max_workers)):
        if not _whole(v) or (v is not None and v < 1):
            raise ConfigError(f"{name} must be a whole number >= 1 or None, got {v!r}")
    if min_workers is not None and max_workers is not None and max_workers < min_workers:
        raise ConfigError(
            f"max_workers={max_workers} is below min_workers={min_workers}; "
            "the world may grow up to max_workers, so it must be >= min_workers"
        )
    if (
        not isinstance(wait_timeout_s, (int, float))
        or isinstance(wait_timeout_s, bool)
        or not wait_timeout_s > 0
    ):
        raise ConfigError(
            f"wait_timeout_s must be a positive number of seconds, got {wait_timeout_s!r}"
        )


def check_divides(batch_size: int, low: int, high: int | None) -> None:
    """Elastic fits keep the global batch (per-rank batch = batch_size / world), so every
    world size the run may take must divide it (``high`` None: checked at each re-plan)."""
    if high is None:
        return
    bad = [n for n in range(low, high + 1) if batch_size % n]
    if bad:
        ok = [n for n in range(low, high + 1) if n > 1]
        lcm = math.lcm(*ok) if ok else 1
        raise ConfigError(
            f"batch_size={batch_size} is the global batch and an elastic fit keeps it, so "
            f"each rank takes batch_size / world samples; world sizes {bad} (between "
            f"min_workers and max_workers) do not divide it. Use a multiple of {lcm} "
            f"(e.g. batch_size={lcm * max(1, round(batch_size / lcm))}) or narrow the range"
        )


def validate_names(loss: Any, optimizer: Any) -> None:
    for reg, value in ((LOSSES, loss), (OPTIMIZERS, optimizer)):
        if callable(value):
            continue
        if not isinstance(value, str):
            raise ConfigError(f"expected a name or a callable, got {type(value).__name__}")
        try:
            reg.get(value)
        except NotFoundError as e:
            raise ConfigError(f"{e}, or pass a callable") from None


__all__ = [
    "LOSSES",
    "OPTIMIZERS",
    "PRECISIONS",
    "FitConfig",
    "check_divides",
    "check_elastic",
    "make_optimizer",
    "resolve_loss",
    "validate_names",
]
