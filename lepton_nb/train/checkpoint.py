"""Atomic checkpoints that load only with ``torch.load(weights_only=True)``.

A checkpoint is written to a temporary file in the same directory, fsynced, then renamed over
the target, so a crash mid-save leaves the previous checkpoint intact (rename is atomic on
POSIX).  Loading refuses anything that is not plain tensors/containers/numbers (a pickled
object payload), and a truncated file is reported by its path.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from lepton_nb.errors import CheckpointError

LATEST = "latest.pt"


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` atomically to ``path`` (temp file + fsync + rename)."""
    import torch

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:  # make the rename itself durable
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return target


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; errors name the file and the fix."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no checkpoint at {p}; train with checkpoint_dir= to create one")
    if not zipfile.is_zipfile(p):  # torch.save writes a zip archive; garbage is not "pickled"
        raise CheckpointError(
            f"checkpoint {p} is truncated or corrupt (not an archive written by torch.save: "
            "empty, cut short or another format); delete it to fall back to an earlier one or "
            "restart training"
        )
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
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


def latest_path(checkpoint_dir: str | os.PathLike[str]) -> Path:
    return Path(checkpoint_dir) / LATEST


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


__all__ = ["LATEST", "latest_path", "load_checkpoint", "rng_state", "save_checkpoint"]
