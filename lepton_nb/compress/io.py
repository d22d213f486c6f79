"""Save and load compressed models (architecture + weights) without unpickling code.

The file holds the original class's import path, its constructor kwargs, the recipe of
structural steps and the state dict.  :func:`load` rebuilds the skeleton by replaying the recipe
on a fresh instance and reads every tensor with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from lepton_nb._registry import Registry
from lepton_nb._storage import is_url, location
from lepton_nb.compress._allow import register_model, resolve_class
from lepton_nb.compress._payload import check_payload
from lepton_nb.compress._recipe import arch_of, recipe_of
from lepton_nb.errors import CheckpointError, LeptonError

if TYPE_CHECKING:
    from torch import nn

FORMAT = "lepton-compressed/1"

Replay = Any  # Callable[[nn.Module, dict], nn.Module]
REPLAYS: Registry[Replay] = Registry("recipe step")


def save(
    model: nn.Module,
    path: str | Path | BinaryIO,
    init_kwargs: dict[str, Any] | None = None,
    *,
    storage_options: dict[str, Any] | None = None,
) -> Path | BinaryIO | str:
    """Write ``model`` (compressed or not) to ``path`` (a local path, an fsspec URL such as
    ``s3://bucket/model.pt`` with ``storage_options=``, or a binary file); ``init_kwargs``
    rebuild its class.  Paths and URLs are written atomically (nothing half-written)."""
    import torch

    if isinstance(path, str | Path):
        loc = location(path, storage_options)
        loc.write_bytes(to_bytes(model, init_kwargs))
        return loc.url if is_url(loc.url) else Path(loc.url)

    arch = arch_of(model)
    if init_kwargs is not None:
        arch["kwargs"] = dict(init_kwargs)
    payload = {
        "format": FORMAT,
        "arch": arch,
        "recipe": recipe_of(model),
        "state_dict": model.state_dict(),
    }
    torch.save(payload, path)
    return path


def to_bytes(model: nn.Module, init_kwargs: dict[str, Any] | None = None) -> bytes:
    buf = io.BytesIO()
    save(model, buf, init_kwargs)
    return buf.getvalue()


def from_bytes(
    data: bytes, model: nn.Module | None = None, *, allow: Iterable[type] | None = None
) -> nn.Module:
    return load(io.BytesIO(data), model=model, allow=allow)


def _skeleton(arch: dict[str, Any], allow: Iterable[type] | None, where: str) -> nn.Module:
    cls = resolve_class(arch, allow, where)  # raises before any import of a name not allowed
    try:
        return cls(**arch.get("kwargs", {}))  # type: ignore[no-any-return]
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"cannot build {cls.__qualname__} from {where} ({e}); save with init_kwargs={{...}} "
            "or pass model=<a fresh instance> to load()"
        ) from e


def _where(path: Path | BinaryIO) -> str:
    if isinstance(path, _Named):
        return path.url
    return str(path) if isinstance(path, Path) else "the model file given"


class _Named(io.BytesIO):
    """Bytes read from a URL that still name that URL in error messages."""

    def __init__(self, data: bytes, url: str) -> None:
        super().__init__(data)
        self.url = url


def _read(path: Path | BinaryIO) -> Any:
    """The file's payload, loaded with ``weights_only=True``; errors say what the file is."""
    import pickle

    import torch

    where = _where(path)
    if isinstance(path, Path):
        is_zip = zipfile.is_zipfile(path)
    else:
        start = path.tell()
        is_zip = zipfile.is_zipfile(path)
        path.seek(start)
    if not is_zip:  # torch.save writes a zip archive; anything else is not ours
        raise CheckpointError(
            f"{where} is not a lepton_nb model file (not an archive written by torch.save: "
            "empty, truncated or another format); write it with compress.save()"
        )
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refusing to load {where}: it holds pickled Python objects beyond tensors and "
            f"plain containers ({str(e).splitlines()[-1][:200]}); it was not written by "
            "compress.save()"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(
            f"{where} is truncated or corrupt ({type(e).__name__}: {str(e)[:200]})"
        ) from None


def load(
    path: str | Path | BinaryIO,
    model: nn.Module | None = None,
    *,
    allow: Iterable[type] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> nn.Module:
    """Rebuild a model written by :func:`save` (safe: tensors only, no pickled code).

    ``path`` is a local path, an fsspec URL (with ``storage_options=``) or a binary file.

    ``model`` is a fresh, uncompressed instance of the original architecture. Without it the
    skeleton is built from the class the file names, which must be allowed: lepton_nb's own
    models, a class passed in ``allow``, or one registered with :func:`register_model`. The
    file never makes this function import or call anything else.
    """
    if is_url(path):
        loc = location(str(path), storage_options)
        if not loc.exists():
            raise CheckpointError(f"no compressed model at {loc.url}; check the URL")
        return load(_Named(loc.read_bytes(), loc.url), model=model, allow=allow)
    if isinstance(path, str | Path):
        path = Path(path)
    if isinstance(path, Path) and not path.is_file():
        raise CheckpointError(f"no compressed model at {path}; check the path")
    where = _where(path)
    payload = _read(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not a {FORMAT} file; write it with compress.save()")
    check_payload(payload, where, REPLAYS.names())
    net = model if model is not None else _skeleton(payload["arch"], allow, where)
    skeleton_cls = type(net)
    net.eval()
    for i, step in enumerate(payload["recipe"]):
        try:
            net = REPLAYS.get(step["kind"])(net, step)
        except LeptonError:
            raise
        except (RuntimeError, ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
            raise CheckpointError(
                f"{where}: recipe step {i} ({step['kind']}) does not fit the model "
                f"({type(e).__name__}: {str(e)[:200]}); pass model=<a fresh instance of the "
                "original class>, or save with init_kwargs={...}"
            ) from None
    object.__setattr__(net, "_lepton_arch", payload["arch"])
    object.__setattr__(net, "_lepton_recipe", list(payload["recipe"]))
    object.__setattr__(net, "_lepton_cls", skeleton_cls)
    fix = "save with init_kwargs={...} or pass model=<a fresh instance of the original class>"
    try:
        missing, unexpected = net.load_state_dict(payload["state_dict"], strict=False, assign=True)
    except RuntimeError as e:  # size mismatches: the skeleton was built with other arguments
        raise CheckpointError(f"{where} does not match the rebuilt model ({e}); {fix}") from e
    if missing or unexpected:
        raise CheckpointError(
            f"{where} does not match the rebuilt model (missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}); {fix}"
        )
    return net.eval()


@REPLAYS.register("prune")
def _replay_prune(net: nn.Module, step: dict[str, Any]) -> nn.Module:
    import torch
    from torch import nn

    if not step.get("structured"):
        return net  # same shapes; the zeros come with the state dict
    modules = dict(net.named_modules())
    for name, attrs in step["attributions"].items():
        for attr, value in attrs.items():
            setattr(modules[name], attr, tuple(value) if isinstance(value, list) else value)
    for key, shape in step["shapes"].items():
        owner, _, leaf = key.rpartition(".")
        mod = modules[owner]
        if leaf in mod._parameters and mod._parameters[leaf] is not None:
            # small random values, not empty(): a static-int8 replay runs observers over them
            mod._parameters[leaf] = nn.Parameter(torch.randn(shape) * 0.01)
        elif leaf in mod._buffers and mod._buffers[leaf] is not None:
            mod._buffers[leaf] = torch.zeros(shape, dtype=mod._buffers[leaf].dtype)
    return net


@REPLAYS.register("distill")
def _replay_distill(net: nn.Module, step: dict[str, Any]) -> nn.Module:
    return net  # distillation changes weights only


@REPLAYS.register("quantize")
def _replay_quantize(net: nn.Module, step: dict[str, Any]) -> nn.Module:
    from lepton_nb.compress.quantize import quantizer_of

    skip = step.get("skip", [])  # layers compress.search left in float
    if not (isinstance(skip, list) and all(isinstance(s, str) for s in skip)):
        raise CheckpointError(f"quantize step skip={str(skip)[:40]} must be a list of layer names")
    return quantizer_of(step["method"]).replay(net, step)


__all__ = ["FORMAT", "REPLAYS", "from_bytes", "load", "register_model", "save", "to_bytes"]
