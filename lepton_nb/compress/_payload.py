"""Checking a model file's contents before anything is built from them.

Everything in a ``lepton-compressed`` file came from whoever wrote it. :func:`check_payload`
checks its shape (keys, types, sizes) so that a bad or hostile file fails with a
:class:`CheckpointError` that names the file and the problem, instead of a ``KeyError``, a
``RuntimeError`` deep in torch, or an allocation of an absurd tensor.
"""

from __future__ import annotations

import math
from typing import Any

from lepton_nb.compress.quantize import quantization_methods
from lepton_nb.errors import CheckpointError

# Replaying static quantization runs one calibration batch of this shape: keep it small.
MAX_EXAMPLE_NUMEL = 10_000_000
MAX_DIM = 2**31 - 1


def _bad(where: str, what: str) -> CheckpointError:
    return CheckpointError(f"{where} is not a valid lepton_nb model file: {what}")


def _ints(value: Any, *, low: int = 0) -> bool:
    items = value if isinstance(value, list | tuple) else [value]
    return all(
        isinstance(v, int) and not isinstance(v, bool) and low <= v <= MAX_DIM for v in items
    )


def check_payload(payload: dict[str, Any], where: str, kinds: Any) -> None:
    """Raise a CheckpointError unless ``payload`` has the layout :func:`compress.save` writes."""
    for key, kind in (("arch", dict), ("recipe", list), ("state_dict", dict)):
        if key not in payload:
            raise _bad(where, f"it has no {key!r} entry; write it with compress.save()")
        if not isinstance(payload[key], kind):
            raise _bad(where, f"its {key!r} entry is a {type(payload[key]).__name__}")
    kwargs = payload["arch"].get("kwargs", {})
    if not isinstance(kwargs, dict) or not all(
        isinstance(k, str) and k.isidentifier() for k in kwargs
    ):
        raise _bad(where, "its constructor kwargs are not a dict of keyword arguments")
    state = payload["state_dict"]
    # values are tensors, or packed-parameter tuples and dtypes for quantized layers
    if not all(isinstance(k, str) for k in state):
        raise _bad(where, "its state_dict is not keyed by parameter names")
    for i, step in enumerate(payload["recipe"]):
        if not isinstance(step, dict) or not isinstance(step.get("kind"), str):
            raise _bad(where, f"recipe step {i} has no 'kind'")
        if step["kind"] not in kinds:
            raise _bad(
                where, f"recipe step {i} is {step['kind'][:40]!r}; known: {', '.join(kinds)}"
            )
        check = _STEP_CHECKS.get(step["kind"])
        if check is not None:
            check(step, state, f"{where}: recipe step {i} ({step['kind']})")


def _check_prune(step: dict[str, Any], state: dict[str, Any], where: str) -> None:
    import torch

    if not step.get("structured"):
        return
    attributions, shapes = step.get("attributions", {}), step.get("shapes", {})
    if not isinstance(attributions, dict) or not isinstance(shapes, dict):
        raise _bad(where, "'attributions' and 'shapes' must be mappings")
    from lepton_nb.compress.prune import _SHAPE_ATTRS

    for name, attrs in attributions.items():
        if not isinstance(name, str) or not isinstance(attrs, dict):
            raise _bad(where, f"attributions of {str(name)[:60]!r} are not a mapping")
        for attr, value in attrs.items():
            # only the size attributes pruning changes: never a method, a dunder, anything else
            if attr not in _SHAPE_ATTRS:
                raise _bad(where, f"attribute {str(attr)[:60]!r} of {name[:60]!r} may not be set")
            if not _ints(value):
                raise _bad(where, f"{name}.{attr} = {str(value)[:40]} is not a size")
    # A later step (quantization) may store a tensor under another name; then the replayed
    # shapes are bounded by the size of the whole file instead of matched one by one.
    budget = sum(t.numel() for t in state.values() if isinstance(t, torch.Tensor)) + 1_000_000
    for key, shape in shapes.items():
        if not isinstance(key, str) or not isinstance(shape, list | tuple) or not _ints(shape):
            raise _bad(where, f"shape of {str(key)[:60]!r} is not a list of sizes")
        stored = state.get(key)
        if stored is not None and list(stored.shape) != list(shape):
            raise _bad(where, f"shape {list(shape)[:8]} of {key!r} differs from its stored tensor")
        if len(shape) > 8 or math.prod(shape) > budget:
            raise _bad(where, f"shape {list(shape)[:8]} of {key!r} is larger than the whole file")


def _check_quantize(step: dict[str, Any], state: dict[str, Any], where: str) -> None:
    method = step.get("method")
    if method not in quantization_methods():
        raise _bad(where, f"unknown quantization method {str(method)[:40]!r}")
    if method == "static-int8":
        shape = step.get("example_shape")
        if (
            not isinstance(shape, list | tuple)
            or not 1 <= len(shape) <= 8
            or not _ints(shape, low=1)
            or math.prod(shape) > MAX_EXAMPLE_NUMEL
        ):
            raise _bad(
                where,
                f"example_shape {str(shape)[:60]} is not a plausible input shape (at most 8 "
                f"positive sizes and {MAX_EXAMPLE_NUMEL:,} elements)",
            )
        if not isinstance(step.get("per_channel", False), bool):
            raise _bad(where, "per_channel must be true or false")
    if method == "weight-only-intx" and not (_ints(step.get("bits")) and 1 <= step["bits"] <= 8):
        raise _bad(where, f"bits={str(step.get('bits'))[:20]} must be an integer from 1 to 8")


_STEP_CHECKS = {"prune": _check_prune, "quantize": _check_quantize}

__all__ = ["MAX_EXAMPLE_NUMEL", "check_payload"]
