"""Atomic checkpoints that load only with ``torch.load(weights_only=True)``.

A checkpoint is serialized in memory, then written atomically to a local path or an fsspec
URL (:mod:`lepton_nb._storage`: temp file + fsync + rename locally, one all-or-nothing put on an
object store), so a crash mid-save leaves the previous checkpoint intact.  Loading refuses
anything that is not plain tensors/containers/numbers (a pickled object payload), and a
truncated file is reported by its path or URL.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

from lepton_nb._storage import Location, is_url, location
from lepton_nb.errors import CheckpointError

LATEST = "latest.pt"


def save_checkpoint(
    state: dict[str, Any],
    path: str | os.PathLike[str],
    storage_options: dict[str, Any] | None = None,
) -> Path | str:
    """Write ``state`` atomically to ``path``, a local path or an fsspec URL (see
    :mod:`lepton_nb._storage`): serialized in memory first, so a failure writes nothing."""
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    loc = location(path, storage_options)
    loc.write_bytes(buf.getvalue())
    return loc.local_path if loc.is_local and not is_url(loc.url) else loc.url


def load_checkpoint(
    path: str | os.PathLike[str] | Location, storage_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; errors name the file and the fix."""
    import torch

    loc = location(path, storage_options)
    p = loc.local_path if loc.is_local else loc.url
    if not loc.exists():
        raise CheckpointError(f"no checkpoint at {p}; train with checkpoint_dir= to create one")
    src: Any = p if loc.is_local else io.BytesIO(loc.read_bytes())
    if not zipfile.is_zipfile(src):  # torch.save writes a zip archive; garbage is not "pickled"
        raise CheckpointError(
            f"checkpoint {p} is truncated or corrupt (not an archive written by torch.save: "
            "empty, cut short or another format); delete it to fall back to an earlier one or "
            "restart training"
        )
    if not loc.is_local:
        src.seek(0)
    try:
        state = torch.load(src, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refusing to load {p}: it contains pickled objects beyond tensors and plain "
            f"containers ({str(e).splitlines()[0][:200]}); only load checkpoints you trust, "
            "and save state_dicts rather than whole objects"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(
            f"checkpoint {p} is truncated or corrupt ({type(e).__name__}: {str(e)[:200]}); "
            "delete it to fall back to an earlier one or restart training"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {p} holds a {type(state).__name__}, expected a dict")
    return state


def latest_path(checkpoint_dir: str | os.PathLike[str]) -> Path | str:
    loc = location(checkpoint_dir).join(LATEST)
    return loc.local_path if loc.is_local and not is_url(loc.url) else loc.url


def latest_state(
    checkpoint_dir: str | os.PathLike[str] | None, storage_options: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The latest checkpoint under ``checkpoint_dir``, or None when there is none."""
    if checkpoint_dir is None:
        return None
    loc = location(checkpoint_dir, storage_options).join(LATEST)
    if not loc.exists():
        return None
    return load_checkpoint(loc)


def rng_state(device: Any = None) -> dict[str, Any]:
    """CPU, numpy and Python generator states, plus the CUDA generator of ``device`` when it is
    a GPU (dropout on the GPU draws from it; only the rank's own device, so no context is
    created on the other GPUs a dask-cuda worker can see)."""
    import random

    import numpy as np
    import torch

    np_state: Any = np.random.get_state()
    out = {
        "torch": torch.get_rng_state(),
        "numpy": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": torch.tensor(list(random.getstate()[1]), dtype=torch.int64),
    }
    if getattr(device, "type", "cpu") == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def set_rng_state(state: dict[str, Any], device: Any = None) -> None:
    """Restore :func:`rng_state`; the CUDA state goes to ``device`` (which may be another index
    than the one that saved it, e.g. after a restart on another worker)."""
    import random

    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    np.random.set_state(
        ("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0)
    )
    py = tuple(int(v) for v in state["python"].tolist())
    random.setstate((3, py, None))
    if "cuda" in state and getattr(device, "type", "cpu") == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


__all__ = [
    "LATEST",
    "latest_path",
    "latest_state",
    "load_checkpoint",
    "rng_state",
    "save_checkpoint",
]
