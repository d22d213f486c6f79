"""Where ``fit`` keeps its checkpoints, and resuming from them.

The location is checked before anything starts (an unreachable endpoint or a missing bucket is a
:class:`~lepton_nb.errors.StorageError` within seconds, not a failure at the first checkpoint).
A ``fit`` that finds a checkpoint at its ``checkpoint_dir`` resumes from it and says so: one log
line and a ``resume`` row in the history.
"""

from __future__ import annotations

import logging
import socket
import time
import warnings
from typing import Any

from lepton_nb._storage import check_writable, default_checkpoints, location
from lepton_nb.train.checkpoint import latest_state

log = logging.getLogger("lepton_nb.train")
_warned: set[str] = set()


def checkpoint_location(
    checkpoint_dir: str | None,
    storage_options: dict[str, Any] | None,
    workers: dict[str, dict[str, Any]] | None,
) -> str | None:
    """The checked checkpoint URL/path (``checkpoint_dir``, else dask config
    ``lepton.storage.checkpoints``), or None when neither is set."""
    url = checkpoint_dir if checkpoint_dir is not None else default_checkpoints()
    if url is None:
        if workers is not None:
            _warn_local(None, workers)
        return None
    loc = check_writable(url, storage_options, what="checkpoint_dir")
    if loc.is_local and workers is not None:
        _warn_local(str(loc.local_path), workers)
    return loc.url


def _local_addresses() -> set[str]:
    import psutil

    out = {"127.0.0.1", "localhost", socket.gethostname()}
    for addrs in psutil.net_if_addrs().values():
        out.update(a.address for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6))
    return out


def _warn_local(path: str | None, workers: dict[str, dict[str, Any]]) -> None:
    hosts = {w.get("host") or "" for w in workers.values()}
    if len(hosts) <= 1 and hosts <= _local_addresses():
        return
    key = path or "<temporary>"
    if key in _warned:
        return
    _warned.add(key)
    where = f"checkpoint_dir={path!r} is a local path" if path else "no checkpoint_dir is set"
    warnings.warn(
        f"the cluster's workers are on other hosts ({', '.join(sorted(hosts))}) and {where}: "
        "if rank 0's host is lost, training restarts from step 0. Give a URL every host can "
        "reach, e.g. checkpoint_dir='s3://bucket/run' (with storage_options= or AWS_* variables)"
        ", or set it once in dask config `lepton.storage.checkpoints`",
        UserWarning,
        stacklevel=3,
    )


def announce_resume(
    hub: Any, checkpoint_dir: str | None, storage_options: dict[str, Any] | None
) -> int | None:
    """If a checkpoint is waiting at ``checkpoint_dir``: log it, add a ``resume`` row to the
    history and return its step."""
    state = latest_state(checkpoint_dir, storage_options)
    if state is None:
        return None
    step, epoch = int(state.get("step", 0)), state.get("epoch")
    url = str(location(checkpoint_dir or ""))
    log.warning(
        "resuming from the checkpoint at %s (step %d, epoch %s); use another "
        "checkpoint_dir to start from scratch",
        url,
        step,
        epoch,
    )
    hub.push(
        {
            "kind": "resume",
            "rank": -1,
            "step": step,
            "epoch": epoch,
            "time": time.time(),
            "attempt": 0,
            "checkpoint": url,
        }
    )
    return step


__all__ = ["announce_resume", "checkpoint_location"]
