"""Knowledge distillation through :func:`lepton_nb.train.fit` (so it runs distributed).

The student and the frozen teacher are wrapped in one module whose training forward returns
``(student_logits, teacher_logits)``; the KD loss mixes the softened teacher distribution with the
labels (Hinton et al., 2015).  In eval mode the wrapper is just the student, so ``fit``'s
validation measures the student.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lepton_nb._config import DictConfig
from lepton_nb.compress._data import first_input, forward_checked
from lepton_nb.compress._recipe import copy_for_compression, stamp
from lepton_nb.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class DistillConfig(DictConfig):
    """Distillation settings; round-trips through :meth:`to_dict` / :meth:`from_dict`."""

    temperature: float = 4.0
    alpha: float = 0.7  # weight of the soft (teacher) term; 1 - alpha goes to the labels

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1], got {self.alpha}")


@dataclass
class KDLoss:
    """``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels)``.

    A plain class (not a closure) so it pickles to Dask workers.
    """

    temperature: float = 4.0
    alpha: float = 0.7

    def __call__(self, outputs: Any, targets: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        if not isinstance(outputs, tuple):  # eval mode: the student alone
            return F.cross_entropy(outputs, targets)
        student, teacher = outputs
        t = self.temperature
        soft = F.kl_div(
            F.log_softmax(student / t, dim=-1),
            F.log_softmax(teacher / t, dim=-1),
            reduction="batchmean",
            log_target=True,
        ) * (t * t)
        hard = F.cross_entropy(student, targets)
        return self.alpha * soft + (1.0 - self.alpha) * hard


def kd_loss(temperature: float = 4.0, alpha: float = 0.7) -> KDLoss:
    cfg = DistillConfig(temperature, alpha)
    return KDLoss(cfg.temperature, cfg.alpha)


def distill(
    teacher: nn.Module,
    student: nn.Module,
    train_data: Any,
    cluster: Any = None,
    temperature: float = 4.0,
    alpha: float = 0.7,
    epochs: int = 3,
    **fit_kwargs: Any,
) -> nn.Module:
    """Train a copy of ``student`` on ``teacher``'s soft targets plus the labels; return it.

    ``fit_kwargs`` go to :func:`lepton_nb.train.fit` (``batch_size``, ``lr``, ``optimizer``,
    ``seed``, ``strategy``, ``val_data``, ``callbacks``...).  The run's history is kept on the
    returned model as ``model.distill_history`` and ``model.distill_metrics``.
    """
    from lepton_nb.train import fit

    loss = kd_loss(temperature, alpha)
    if "loss" in fit_kwargs:
        raise ConfigError("distill sets the loss itself; pass temperature and alpha instead")
    x = first_input(train_data, 8, "train_data")
    t_out = forward_checked(teacher.eval(), x, "train_data (teacher)")
    s_out = forward_checked(copy_for_compression(student), x, "train_data (student)")
    if t_out.shape != s_out.shape:
        raise ConfigError(
            f"teacher outputs {tuple(t_out.shape)} but student outputs {tuple(s_out.shape)}; "
            "both must produce logits over the same classes"
        )
    from lepton_nb.compress._distiller import Distiller

    wrapper = Distiller(copy_for_compression(student).train(), copy_for_compression(teacher))
    result = fit(wrapper, train_data, cluster=cluster, epochs=epochs, loss=loss, **fit_kwargs)
    trained = result.model.student.eval()
    out = stamp(trained, student, {"kind": "distill", **loss.__dict__})
    object.__setattr__(out, "distill_history", result.history)
    object.__setattr__(out, "distill_metrics", dict(result.metrics))
    return out


__all__ = ["DistillConfig", "KDLoss", "distill", "kd_loss"]
