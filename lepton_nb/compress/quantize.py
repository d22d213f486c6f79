"""Post-training quantization: dynamic int8, static int8 (calibrated) and weight-only int8.

Which API backs which method, and why:

- ``dynamic-int8`` and ``static-int8`` use ``torch.ao.quantization`` (eager dynamic / FX graph
  mode).  It is deprecated in favour of torchao's PT2E flow, but on CPU PT2E only emits
  quantize/dequantize reference ops that are *slower* than fp32 until ``torch.compile`` fuses
  them, while the FX path produces real fbgemm/x86 int8 kernels (measured: LeNet5 2.8x faster).
  Its deprecation warnings are silenced for users; tests still see them.
- ``weight-only-int8`` uses torchao's ``quantize_`` with ``Int8WeightOnlyConfig``, and
  ``weight-only-intx`` its ``IntxWeightOnlyConfig`` (``bits`` = 1..8).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lepton_nb._config import DictConfig
from lepton_nb.compress._data import (
    forward_checked,
    iter_batches,
    model_device,
    require_module_types,
)
from lepton_nb.compress._recipe import copy_for_compression, stamp
from lepton_nb.compress.methods import METHODS, MethodSpec, VariantContext
from lepton_nb.errors import CompressionError, ConfigError, NotFoundError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class QuantizeConfig(DictConfig):
    """How to quantize; round-trips through :meth:`to_dict` / :meth:`from_dict`."""

    method: str = "dynamic-int8"
    calibration_batches: int = 8
    batch_size: int = 128
    per_channel: bool = False  # per-tensor weights keep static int8 >= 3.5x smaller on LeNet5
    engine: str = "x86"
    bits: int = 4  # weight-only-intx only
    skip: list[str] = field(default_factory=list)  # module names left in float (sensitive ones)

    def __post_init__(self) -> None:
        self.skip = [str(s) for s in self.skip]
        if not 1 <= int(self.bits) <= 8:
            raise ConfigError(f"bits must be between 1 and 8, got {self.bits}")


@dataclass(frozen=True)
class Quantizer:
    """What a quantization method adds to its :class:`~lepton_nb.compress.methods.MethodSpec`."""

    # quantize(model, name) runs apply(copy of model, config, calibration_data)
    apply: Callable[[nn.Module, QuantizeConfig, Any], nn.Module]
    # compress.load rebuilds the quantized module structure from the saved step (its settings
    # and ``skip``) before loading the state dict; weights are filled in afterwards
    replay: Callable[[nn.Module, dict[str, Any]], nn.Module]


def register_quantizer(
    name: str,
    apply: Callable[[nn.Module, QuantizeConfig, Any], nn.Module],
    replay: Callable[[nn.Module, dict[str, Any]], nn.Module],
    strength: str | None = None,
    low: float = 0.0,
    high: float = 0.0,
    default: float | None = None,
) -> None:
    """Add a quantization method, once, to :data:`~lepton_nb.compress.METHODS`: then
    ``quantize(model, name)``, ``compress.load`` of its models and the explorer's menu all know
    it.  ``strength`` names the :class:`QuantizeConfig` field a variant's strength sets."""

    def build(model: nn.Module, value: float | None, ctx: VariantContext) -> nn.Module:
        options: dict[str, Any] = {}
        chosen = default if value is None else value
        if strength is not None and chosen is not None:
            # the field's type from its default: bits=4 stays an int
            options[strength] = chosen if default is None else type(default)(chosen)
        return quantize(model, name, calibration_data=ctx.calibration_data, **options)

    spec = MethodSpec(build, strength, low, high, default, quantizer=Quantizer(apply, replay))
    METHODS.add(name, spec)


def quantization_methods() -> list[str]:
    """The names of the registered quantization methods."""
    return [n for n in METHODS if METHODS.get(n).quantizer is not None]


def quantizer_of(method: str) -> Quantizer:
    """The quantizer registered as ``method``; NotFoundError listing them otherwise."""
    spec = METHODS.get(method) if method in METHODS else None
    if spec is None or spec.quantizer is None:
        known = ", ".join(repr(n) for n in quantization_methods())
        raise NotFoundError(f"unknown quantization method {method!r}; choose one of: {known}")
    quantizer: Quantizer = spec.quantizer
    return quantizer


@contextmanager
def quiet_deprecations() -> Iterator[None]:
    """Hide torch.ao's deprecation chatter from users; ``LEPTON_SHOW_DEPRECATIONS=1`` shows it."""
    import os

    if os.environ.get("LEPTON_SHOW_DEPRECATIONS") == "1":
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao\..*")
        yield


def to_cpu_for_ao(model: nn.Module) -> nn.Module:
    """torch.ao's int8 kernels (fbgemm/x86/qnnpack) exist only on CPU: a CUDA model is moved
    (its compression copy, never the caller's model), so the quantized model is a CPU model."""
    if model_device(model).type != "cpu":
        return model.cpu()
    return model


def _set_engine(engine: str) -> None:
    import torch

    if engine not in torch.backends.quantized.supported_engines:
        raise ConfigError(
            f"quantized engine {engine!r} is not available here; choose one of "
            f"{torch.backends.quantized.supported_engines}"
        )
    torch.backends.quantized.engine = engine


def _dynamic_int8(model: nn.Module, cfg: QuantizeConfig, calibration_data: Any) -> nn.Module:
    from torch import nn

    types = (nn.Linear, nn.LSTM, nn.GRU)
    require_module_types(model, types, "quantize dynamically (Linear, LSTM, GRU)")
    _set_engine(cfg.engine)
    model = to_cpu_for_ao(model)
    return apply_dynamic(model, cfg.skip)


def apply_dynamic(model: nn.Module, skip: list[str] | None = None) -> nn.Module:
    """torch.ao dynamic int8 of every Linear/LSTM/GRU except the modules named in ``skip``."""
    import torch
    from torch import nn

    types = (nn.Linear, nn.LSTM, nn.GRU)
    with quiet_deprecations():
        from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

        if not skip:
            return quantize_dynamic(model, set(types), dtype=torch.qint8)
        spec = {n: default_dynamic_qconfig for n, m in model.named_modules()
                if isinstance(m, types) and n not in set(skip)}  # fmt: skip
        return quantize_dynamic(model, spec, dtype=torch.qint8)


def static_qconfig_mapping(per_channel: bool, skip: list[str] | None = None) -> Any:
    from torch.ao.quantization import QConfig, get_default_qconfig_mapping
    from torch.ao.quantization.observer import HistogramObserver, default_weight_observer

    mapping = get_default_qconfig_mapping("x86")
    if not per_channel:
        qconfig = QConfig(
            activation=HistogramObserver.with_args(reduce_range=False),
            weight=default_weight_observer,
        )
        mapping = mapping.set_global(qconfig)
    for name in skip or ():
        mapping = mapping.set_module_name(name, None)
    return mapping


def prepare_static(
    model: nn.Module, example: torch.Tensor, per_channel: bool, skip: list[str] | None = None
) -> nn.Module:
    with quiet_deprecations():
        from torch.ao.quantization.quantize_fx import prepare_fx

        try:
            return prepare_fx(model, static_qconfig_mapping(per_channel, skip), (example,))
        except Exception as e:  # FX tracing raises many types; name the cause
            raise CompressionError(
                f"static-int8 could not trace {type(model).__name__} with torch.fx ({e}); "
                "make forward() traceable (no data-dependent control flow) or use dynamic-int8"
            ) from e


def convert_static(prepared: nn.Module) -> nn.Module:
    with quiet_deprecations():
        from torch.ao.quantization.quantize_fx import convert_fx

        return convert_fx(prepared)  # type: ignore[arg-type]


def _static_int8(model: nn.Module, cfg: QuantizeConfig, calibration_data: Any) -> nn.Module:
    import torch
    from torch import nn

    require_module_types(model, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear), "quantize")
    if calibration_data is None:
        raise ConfigError(
            "static-int8 needs calibration_data to measure activation ranges; pass ~1,000 "
            "training samples (a Dataset, DataLoader or tensor), or use method='dynamic-int8'"
        )
    _set_engine(cfg.engine)
    model = to_cpu_for_ao(model)
    batches = iter_batches(calibration_data, cfg.batch_size, "calibration_data")
    first = next(batches, None)
    if first is None:
        raise ConfigError("calibration_data is empty; pass at least one batch of inputs")
    example = first[0].cpu()  # calibration batches follow the model to the CPU
    forward_checked(model, example, "calibration_data")
    prepared = prepare_static(model, example, cfg.per_channel, cfg.skip)
    with torch.no_grad():
        prepared(example)
        for i, (x, _) in enumerate(batches, start=1):
            if i >= cfg.calibration_batches:
                break
            prepared(x.cpu())
    out = convert_static(prepared)
    out.__dict__["_lepton_example_shape"] = [1, *first[0].shape[1:]]
    return out


def _weight_only_int8(model: nn.Module, cfg: QuantizeConfig, calibration_data: Any) -> nn.Module:
    from torch import nn

    require_module_types(model, (nn.Linear,), "quantize weight-only (Linear)")
    apply_weight_only(model, skip=cfg.skip)
    return model


def apply_weight_only(
    model: nn.Module, bits: int | None = None, skip: list[str] | None = None
) -> None:
    """torchao weight-only quantization: int8 (``bits=None``) or 1-8 bit per-channel intx,
    of every Linear except the modules named in ``skip``."""
    import logging

    import torch
    from torch import nn

    logging.getLogger("torchao").setLevel(logging.ERROR)  # import chatter about CUDA kernels
    from torchao.quantization import Int8WeightOnlyConfig, IntxWeightOnlyConfig, quantize_
    from torchao.quantization.granularity import PerAxis

    left_out = set(skip or ())

    def wanted(m: nn.Module, fqn: str) -> bool:
        return isinstance(m, nn.Linear) and fqn not in left_out

    if bits is None:
        quantize_(model, Int8WeightOnlyConfig(), filter_fn=wanted)
    else:
        dtype = getattr(torch, f"int{bits}")
        cfg = IntxWeightOnlyConfig(weight_dtype=dtype, granularity=PerAxis(0))
        quantize_(model, cfg, filter_fn=wanted)


def _weight_only_intx(model: nn.Module, cfg: QuantizeConfig, calibration_data: Any) -> nn.Module:
    """Weights rounded to ``cfg.bits`` bits.  torchao stores them unpacked in int8 on CPU, so
    bytes equal int8's: this method trades accuracy for bits, not (yet) size."""
    from torch import nn

    require_module_types(model, (nn.Linear,), "quantize weight-only (Linear)")
    apply_weight_only(model, int(cfg.bits), cfg.skip)
    return model


def _skip(step: dict[str, Any]) -> list[str]:
    return list(step.get("skip", []))  # layers compress.search left in float


def _replay_static(net: nn.Module, step: dict[str, Any]) -> nn.Module:
    import torch

    x = torch.randn(step["example_shape"])
    prepared = prepare_static(net, x, step["per_channel"], _skip(step))
    with torch.no_grad():
        prepared(x)  # observers need one pass; the loaded state dict sets the real qparams
    return convert_static(prepared)


def _replay_weight_only(net: nn.Module, step: dict[str, Any]) -> nn.Module:
    bits = step.get("bits") if step["method"] == "weight-only-intx" else None
    apply_weight_only(net, None if bits is None else int(bits), _skip(step))
    return net


register_quantizer("dynamic-int8", _dynamic_int8, lambda net, step: apply_dynamic(net, _skip(step)))
register_quantizer("static-int8", _static_int8, _replay_static)
register_quantizer("weight-only-int8", _weight_only_int8, _replay_weight_only)
register_quantizer("weight-only-intx", _weight_only_intx, _replay_weight_only, "bits", 2, 8, 4)


def quantize(
    model: nn.Module,
    method: str = "dynamic-int8",
    calibration_data: Any = None,
    **options: Any,
) -> nn.Module:
    """Return a quantized copy of ``model`` (the original is left untouched).

    ``dynamic-int8`` and ``static-int8`` return a CPU model even for a CUDA model (torch.ao's
    int8 kernels are CPU-only); the weight-only methods keep the model's device.

    ``method`` is one of :func:`quantization_methods` (``"dynamic-int8"``, ``"static-int8"``,
    ``"weight-only-int8"``, ``"weight-only-intx"``); ``options`` are :class:`QuantizeConfig`
    fields.
    """
    cfg = QuantizeConfig(method=method, **options)
    apply = quantizer_of(cfg.method).apply
    work = copy_for_compression(model)
    out = apply(work, cfg, calibration_data)
    step: dict[str, Any] = {"kind": "quantize", **cfg.to_dict()}
    shape = out.__dict__.pop("_lepton_example_shape", None)
    if shape is not None:
        step["example_shape"] = shape
    return stamp(out, model, step)


__all__ = [
    "QuantizeConfig",
    "Quantizer",
    "quantization_methods",
    "quantize",
    "quantizer_of",
    "register_quantizer",
]
