"""Turning the data forms users pass (Dataset, DataLoader, (x, y) tensors) into batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from lepton_nb.errors import CompressionError, ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

Batch = tuple["torch.Tensor", "torch.Tensor"]


def iter_batches(data: Any, batch_size: int = 256, what: str = "data") -> Iterator[Batch]:
    """Yield ``(x, y)`` batches from a Dataset, DataLoader, ``(x, y)`` pair or batch iterable."""
    import torch
    from torch.utils.data import DataLoader, Dataset

    if data is None:
        raise ConfigError(f"{what} is None; pass a Dataset, a DataLoader or an (x, y) pair")
    pair = isinstance(data, tuple) and len(data) == 2
    if pair and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
        for i in range(0, len(x), batch_size):
            yield x[i : i + batch_size], y[i : i + batch_size]
        return
    if isinstance(data, torch.Tensor):  # inputs only (calibration): no labels
        for i in range(0, len(data), batch_size):
            yield data[i : i + batch_size], torch.empty(0)
        return
    if isinstance(data, Dataset) and not isinstance(data, DataLoader):
        loader: Iterable[Any] = DataLoader(data, batch_size=batch_size, shuffle=False)
    elif isinstance(data, Iterable):
        loader = data
    else:
        raise ConfigError(
            f"{what} of type {type(data).__name__} is not supported; pass a Dataset, a "
            "DataLoader, an (x, y) pair of tensors or an iterable of (x, y) batches"
        )
    for batch in loader:
        if isinstance(batch, torch.Tensor):
            yield batch, torch.empty(0)
        elif isinstance(batch, list | tuple) and len(batch) >= 1:
            yield batch[0], batch[1] if len(batch) > 1 else torch.empty(0)
        else:
            raise ConfigError(f"{what} yielded {type(batch).__name__}; expected (x, y) batches")


def first_input(data: Any, batch_size: int = 256, what: str = "data") -> torch.Tensor:
    for x, _ in iter_batches(data, batch_size, what):
        return x
    raise ConfigError(f"{what} is empty; pass at least one batch")


def model_device(model: nn.Module) -> torch.device:
    """Where the model's first parameter (or buffer) lives; CPU for a model without any."""
    import torch

    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def forward_checked(model: nn.Module, x: torch.Tensor, what: str = "eval data") -> torch.Tensor:
    """Run ``model(x)``; a device mismatch or a shape mismatch becomes an error naming it."""
    import torch

    dev = model_device(model)
    if x.device != dev:
        raise ConfigError(
            f"{what} is on {x.device} but the model is on {dev}; move one to the other "
            f"(e.g. model.to('{x.device}') or the data's tensors .to('{dev}'))"
        )
    try:
        with torch.no_grad():
            return model(x)
    except (RuntimeError, ValueError, AssertionError) as e:
        if "same device" in str(e) or "device type" in str(e):  # parts of the model elsewhere
            raise ConfigError(
                f"the model's layers are on different devices ({e}); move the whole model "
                "with model.to(device)"
            ) from e
        raise ConfigError(
            f"{what} has inputs of shape {tuple(x.shape)} that the model cannot take ({e}); "
            "pass data shaped like the model's training inputs, e.g. (N, 1, 28, 28) for MNIST"
        ) from e


def accuracy(model: nn.Module, data: Any, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on labelled ``data`` (in eval mode, no grad)."""
    import torch

    was_training = model.training
    model.eval()
    correct = total = 0
    dev = model_device(model)  # eval data follows the model (a CUDA model, CPU batches)
    try:
        for x, y in iter_batches(data, batch_size, "eval data"):
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            out = forward_checked(model, x)
            if y.numel() == 0:
                raise ConfigError("eval data has no labels; pass (x, y) pairs to measure accuracy")
            if out.dim() != 2 or out.shape[0] != y.shape[0]:
                raise ConfigError(
                    f"the model returned outputs of shape {tuple(out.shape)} for labels of "
                    f"shape {tuple(y.shape)}; expected (N, num_classes) logits"
                )
            correct += int((out.argmax(dim=1) == y).sum())
            total += int(y.shape[0])
    finally:
        model.train(was_training)
    if total == 0:
        raise ConfigError("eval data is empty; pass at least one labelled batch")
    del torch
    return correct / total


def require_module_types(model: nn.Module, types: tuple[type, ...], action: str) -> list[str]:
    """Names of submodules of the given types; 'nothing to compress' error when none."""
    names = [n for n, m in model.named_modules() if isinstance(m, types)]
    if not names:
        kinds = ", ".join(t.__name__ for t in types)
        raise CompressionError(
            f"nothing to compress: {type(model).__name__} has no {kinds} layers to {action}; "
            "choose a method that fits the model's layers"
        )
    return names


__all__ = [
    "Batch",
    "accuracy",
    "first_input",
    "forward_checked",
    "iter_batches",
    "model_device",
    "require_module_types",
]
