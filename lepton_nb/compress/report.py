"""Measured comparison of models: parameters, serialized bytes, latency and accuracy.

Nothing here is estimated: bytes are the length of ``torch.save(state_dict)``, latency is the
median of many timed forward passes after warm-up with a fixed thread count and batch.
"""

from __future__ import annotations

import io
import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lepton_nb._config import DictConfig
from lepton_nb.compress._data import accuracy, first_input, forward_checked, model_device
from lepton_nb.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from torch import nn


@dataclass
class ReportConfig(DictConfig):
    """Measurement settings; kept in ``table.attrs["settings"]`` so a table says how it was made."""

    batch_size: int = 64  # the fixed batch latency is timed on
    threads: int = 1
    warmup: int = 10
    runs: int = 50


def serialized_bytes(model: nn.Module) -> int:
    import torch

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def _tensors(value: Any) -> list[torch.Tensor]:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    return []


def count_weights(model: nn.Module) -> tuple[int, int]:
    """(weights, non-zero weights) of every weight/bias, quantized or not."""
    total = nonzero = 0
    for key, value in model.state_dict().items():
        if not key.endswith(("weight", "bias", "_packed_params")):
            continue
        for t in _tensors(value):
            n = t.numel()
            total += n
            if t.is_quantized:
                nonzero += int((t.dequantize() != 0).sum())
            elif t.is_floating_point() and type(t).__name__ == "Tensor":
                nonzero += int((t != 0).sum())
            else:
                nonzero += n
    return total, nonzero


def _synchronizer(device: Any) -> Any:
    """What makes the clock wait for the device: CUDA kernels run asynchronously, so timing
    without ``torch.cuda.synchronize`` measures kernel launches, not the forward pass."""
    import torch

    if getattr(device, "type", "cpu") == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def latency_ms(model: nn.Module, x: torch.Tensor, cfg: ReportConfig) -> float:
    """Median forward time in milliseconds, with ``cfg.threads`` threads after warm-up
    (on a GPU, each run is timed from a synchronized start to a synchronized end)."""
    import torch

    sync = _synchronizer(x.device)
    before = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        with torch.inference_mode():
            for _ in range(cfg.warmup):
                model(x)
            times = []
            for _ in range(cfg.runs):
                sync()
                t0 = time.perf_counter()
                model(x)
                sync()
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return statistics.median(times) * 1e3


def measure(model: nn.Module, eval_data: Any, cfg: ReportConfig) -> dict[str, float]:
    model.eval()
    x = first_input(eval_data, cfg.batch_size, "eval data").to(model_device(model))
    forward_checked(model, x)
    params, nonzero = count_weights(model)
    return {
        "params": params,
        "nonzero_params": nonzero,
        "bytes": serialized_bytes(model),
        "latency_ms": latency_ms(model, x, cfg),
        "accuracy": accuracy(model, eval_data),
    }


def report(models: dict[str, nn.Module], eval_data: Any, **settings: Any) -> pd.DataFrame:
    """Measure each model and compare it with the first entry (the reference).

    Returns a DataFrame indexed by name with ``params``, ``nonzero_params``, ``bytes``,
    ``latency_ms``, ``accuracy`` and the ratios ``size_x`` (reference bytes / bytes),
    ``params_x``, ``speedup`` and ``accuracy_delta`` (points).  ``settings`` are
    :class:`ReportConfig` fields.
    """
    import pandas as pd

    if not models:
        raise ConfigError("report needs at least one model, e.g. {'fp32': model}")
    cfg = ReportConfig(**settings)
    rows = {name: measure(m, eval_data, cfg) for name, m in models.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    ref = table.iloc[0]
    table["size_x"] = ref["bytes"] / table["bytes"]
    table["params_x"] = ref["params"] / table["params"]
    table["speedup"] = ref["latency_ms"] / table["latency_ms"]
    table["accuracy_delta"] = (table["accuracy"] - ref["accuracy"]) * 100
    table.index.name = "model"
    table.attrs["settings"] = cfg.to_dict()
    return table


def pareto_front(table: pd.DataFrame, cost: str, value: str = "accuracy") -> list[Any]:
    """Index labels of rows no other row beats on both: lower ``cost`` and higher ``value``."""
    front = []
    best = float("-inf")
    for label, row in table.sort_values([cost, value], ascending=[True, False]).iterrows():
        if row[value] > best:
            front.append(label)
            best = row[value]
    return front


def to_html(table: pd.DataFrame) -> str:
    """The report as formatted HTML, with the measurement settings underneath."""
    fmt = {
        "params": "{:,.0f}", "nonzero_params": "{:,.0f}", "bytes": "{:,.0f}",
        "latency_ms": "{:.3f}", "accuracy": "{:.2%}", "size_x": "{:.2f}x",
        "params_x": "{:.2f}x", "speedup": "{:.2f}x", "accuracy_delta": "{:+.2f} pt",
    }  # fmt: skip
    styler = table.style.format({k: v for k, v in fmt.items() if k in table.columns})
    s = table.attrs.get("settings", {})
    note = (
        f"<p style='font-size:smaller'>bytes = len(torch.save(state_dict)); latency = median "
        f"of {s.get('runs')} runs after {s.get('warmup')} warm-up, batch {s.get('batch_size')}, "
        f"{s.get('threads')} thread(s); ratios against {table.index[0]!r}</p>"
    )
    return styler.to_html() + note


__all__ = [
    "ReportConfig",
    "count_weights",
    "latency_ms",
    "pareto_front",
    "report",
    "serialized_bytes",
    "to_html",
]
