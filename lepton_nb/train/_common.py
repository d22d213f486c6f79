"""Pieces shared by every strategy's rank loop: building the model and data on the rank,
the sharded loader, autocast, and validation."""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lepton_nb.train.config import FitConfig, LossFn, resolve_loss


@dataclass
class Payload:
    """Everything a rank needs, scattered to the workers once per attempt (not a list, so
    ``client.scatter`` keeps it whole)."""

    model: Any
    train_data: Any
    val_data: Any
    loss: Any
    optimizer: Any
    config: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cfg(self) -> FitConfig:
        return FitConfig.from_dict(self.config)


def is_module(obj: Any) -> bool:
    from torch import nn

    return isinstance(obj, nn.Module)


def build_model(spec: Any, seed: int) -> Any:
    """An nn.Module (copied, so the caller's object is never trained in place) or a factory."""
    import torch

    if is_module(spec):
        return copy.deepcopy(spec)
    torch.manual_seed(seed)  # every rank builds identical initial weights
    return spec()


def build_data(spec: Any) -> Any:
    if spec is None:
        return None
    if hasattr(spec, "__getitem__") and hasattr(spec, "__len__"):
        return spec
    return spec()


def loader(dataset: Any, cfg: FitConfig, rank: int, world: int, device: Any) -> Any:
    """A DataLoader over this rank's shard; ``batch_size`` is the global batch, so the ranks
    together see exactly the batches a single process would (DistributedSampler interleaves
    a shared permutation)."""
    from torch.utils.data import DataLoader, DistributedSampler

    sampler: Any = DistributedSampler(
        dataset, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed, drop_last=False
    )
    per_rank = max(1, cfg.batch_size // world)
    return DataLoader(
        dataset,
        batch_size=per_rank,
        sampler=sampler,
        pin_memory=getattr(device, "type", "cpu") == "cuda",
    )


def autocast(cfg: FitConfig, device: Any) -> Any:
    import torch

    if cfg.precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_device(batch: Any, device: Any) -> Any:
    if hasattr(batch, "to"):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    return batch


def split_batch(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        return batch[0], batch[1]
    raise TypeError(
        "each dataset item must be an (input, target) pair; wrap your data in a "
        "torch.utils.data.TensorDataset(x, y)"
    )


def skip_batches(it: Any, n: int) -> Iterator[Any]:
    for i, b in enumerate(it):
        if i >= n:
            yield b


def accuracy_count(outputs: Any, targets: Any) -> int | None:
    """Correct predictions when ``outputs`` are class logits for integer targets, else None."""
    import torch

    if not isinstance(outputs, torch.Tensor) or targets.dtype not in (torch.int64, torch.int32):
        return None
    if outputs.dim() == targets.dim() + 1 and outputs.shape[:-1] == targets.shape:
        return int((outputs.argmax(-1) == targets).sum().item())
    return None


def evaluate(
    model: Any, data: Any, loss_fn: LossFn, cfg: FitConfig, device: Any
) -> dict[str, float]:
    """Validation metrics.  Inside a process group every rank evaluates its own slice
    (``rank::world``) and the sums are all-reduced: no rank waits in a collective while
    another validates alone (on NCCL that wait counts against the collective timeout)."""
    import torch
    import torch.distributed as dist
    from torch.utils.data import DataLoader, Subset

    group = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    if group:
        data = Subset(data, range(dist.get_rank(), len(data), dist.get_world_size()))
    was_training = model.training
    model.eval()
    total, n, correct, n_tok, has_acc = 0.0, 0, 0, 0, True
    with torch.no_grad(), autocast(cfg, device):
        for batch in DataLoader(data, batch_size=max(256, cfg.batch_size)):
            x, y = (to_device(b, device) for b in split_batch(batch))
            out = model(x)
            total += float(loss_fn(out, y).item()) * len(y)
            n += len(y)
            c = accuracy_count(out, y)
            if c is None:
                has_acc = False
            else:
                correct += c
                n_tok += int(y.numel())
    model.train(was_training)
    if group:  # float64 sums: exact for counts, and the same loss sum a single rank gets
        sums = torch.tensor(
            [total, n, correct, n_tok, 0 if has_acc or n == 0 else 1],
            dtype=torch.float64,
            device=device,
        )
        dist.all_reduce(sums)
        total, n, correct, n_tok = float(sums[0]), int(sums[1]), int(sums[2]), int(sums[3])
        has_acc = int(sums[4]) == 0
    metrics = {"val_loss": total / max(n, 1)}
    if has_acc and n_tok:
        metrics["val_accuracy"] = correct / n_tok
    return metrics


class Meter:
    """Accumulates detached losses between reports so ``.item()`` runs only at the interval.

    On a GPU the clock is read only after the device has finished the queued steps
    (``torch.cuda.synchronize``), so ``samples_per_s`` is work done, not work launched."""

    def __init__(self, device: Any = None) -> None:
        from lepton_nb.train._gpu import synchronizer

        self.sync = synchronizer(device)
        self.reset()

    def reset(self) -> None:
        self.sum: Any = 0.0
        self.n = 0
        self.samples = 0
        self.t0 = time.perf_counter()

    def add(self, loss: Any, samples: int) -> None:
        self.sum = self.sum + loss.detach()
        self.n += 1
        self.samples += samples

    def flush(self, lr: float) -> dict[str, Any]:
        self.sync()
        dt = max(time.perf_counter() - self.t0, 1e-9)
        out = {
            "loss": float(self.sum) / max(self.n, 1),
            "samples_per_s": self.samples / dt,
            "lr": lr,
        }
        self.reset()
        return out


def loss_fn_of(payload: Payload) -> LossFn:
    return resolve_loss(payload.loss)


def current_lr(opt: Any) -> float:
    return float(opt.param_groups[0]["lr"])


__all__ = ["Meter", "Payload", "build_data", "build_model", "evaluate", "loader"]
