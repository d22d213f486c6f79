"""Building and measuring compression variants: one Dask task each on a cluster, in-process
without one.  The CompressionExplorer widget draws what :func:`run_variants` yields; nothing here
knows about the widget."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lepton_nb.cluster._client import client_of
from lepton_nb.compress._candidates import BASELINE
from lepton_nb.compress._recipe import class_of
from lepton_nb.compress._wire import pack, unpack
from lepton_nb.compress.io import from_bytes, to_bytes
from lepton_nb.compress.methods import Variant, build_and_measure
from lepton_nb.errors import LeptonError

Outcome = tuple[str, Any, Any]  # (label, row dict or the error, model or None)


def _measure_baseline(model: Any, eval_data: Any, settings: dict[str, Any]) -> tuple[Any, Any]:
    from lepton_nb.compress.report import ReportConfig, measure

    row: dict[str, Any] = {"label": "baseline", "method": "baseline", "strength": None}
    row.update(measure(model, eval_data, ReportConfig(**settings)))
    return row, model


def _task(model: Any, variant: dict[str, Any] | None, ctx: Any, data: Any, settings: Any) -> Any:
    model, ctx = unpack(model), unpack(ctx)
    if variant is None:
        row, out = _measure_baseline(model, data, settings)
    else:
        try:
            row, out = build_and_measure(model, Variant.from_dict(variant), ctx, data, settings)
        except LeptonError as e:  # one bad variant must not sink the others
            return e, None
    return row, to_bytes(out)  # FX-quantized modules do not pickle; our format does


def _rebuild(model: Any, data: bytes | None) -> Any:
    import copy

    if data is None:
        return None
    # the user's own instance is the skeleton, so non-default constructor arguments survive
    plain = not getattr(model, "_lepton_recipe", None)
    # the user's class is allowed by object, not by the name the bytes carry
    allow = [class_of(model)]
    return from_bytes(data, model=copy.deepcopy(model) if plain else None, allow=allow)


def run_variants(
    model: Any,
    todo: list[Variant | None],
    *,
    context: Any,
    eval_data: Any,
    settings: dict[str, Any],
    cluster: Any = None,
) -> Iterator[Outcome]:
    """Yield each variant's outcome (``None``: the baseline) as soon as it is measured."""
    labels = [BASELINE if v is None else v.label for v in todo]
    specs = [None if v is None else v.to_dict() for v in todo]
    if cluster is None:
        for label, spec in zip(labels, specs, strict=True):
            row, data = _task(model, spec, context, eval_data, settings)
            yield label, row, _rebuild(model, data)
        return
    from distributed import as_completed

    client = client_of(cluster)
    model_f, data_f, ctx_f = client.scatter([pack(model), eval_data, pack(context)], broadcast=True)
    futures = {
        client.submit(_task, model_f, spec, ctx_f, data_f, settings, pure=False): label
        for label, spec in zip(labels, specs, strict=True)
    }
    for fut in as_completed(futures):
        try:
            row, data = fut.result()
            built = _rebuild(model, data)
        except Exception as e:  # noqa: BLE001 - a worker-side crash is reported, not fatal
            row, built = e, None
        yield futures[fut], row, built


__all__ = ["Outcome", "run_variants"]
