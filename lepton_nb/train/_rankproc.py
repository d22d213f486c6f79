"""One rank in a child process of its Dask worker (the worker's task plays torchrun's agent).

Used where a rank cannot live in the long-lived worker interpreter: TensorFlow starts its
distributed runtime once per process (``TF_CONFIG`` is read once, ``TF_USE_LEGACY_KERAS`` must be
set before TensorFlow is imported).  The child is ``python -m lepton_nb.train._rankproc``; the
parent writes it two length-prefixed cloudpickle frames on stdin (its ``sys.path``, then the
function and the rank's context fields) and keeps stdin open: the child exits when stdin
closes, so a killed worker never leaves an orphan rank behind.  The child sends frames back on a
pipe: ``("event", dict)`` for every ``ctx.report``, then ``("result", value)`` or
``("error", (type name, message, traceback))``.  The parent forwards each event as it arrives
(``sink``), so the client's curve is live.  Nothing here imports torch, dask or TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import IO, Any

from lepton_nb.errors import LeptonError, TrainingError
from lepton_nb.train.callbacks import Event
from lepton_nb.train.context import TrainContext

_HEADER = struct.Struct("!I")
_current: TrainContext | None = None  # the rank's context, in the child


def current_context() -> TrainContext | None:
    """The context of the rank running in this process (None outside a rank process)."""
    return _current


def _write(f: IO[bytes], obj: Any, lock: threading.Lock | None = None, plain: bool = False) -> None:
    import pickle

    import cloudpickle

    data = pickle.dumps(obj) if plain else cloudpickle.dumps(obj)
    with lock or contextlib.nullcontext():
        f.write(_HEADER.pack(len(data)) + data)
        f.flush()


def _read(f: IO[bytes]) -> Any:
    import pickle

    head = f.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    size = _HEADER.unpack(head)[0]
    data = f.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


class RankProcessError(TrainingError):
    """A rank's child process raised (the message keeps its type and text) or died."""

    child_traceback: str = ""


def run_in_child(
    fn: Callable[[TrainContext], Any],
    ctx_fields: Mapping[str, Any],
    env: Mapping[str, str],
    sink: Callable[[Event], None],
) -> Any:
    """Run ``fn(ctx)`` in a fresh interpreter with ``env`` added to this process's environment;
    ``sink`` receives each reported event; returns what ``fn`` returned, or raises
    :class:`RankProcessError` (a :class:`LeptonError` raised in the child keeps its class)."""
    r, w = os.pipe()
    child_env = {**os.environ, **env}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lepton_nb.train._rankproc", str(w)],
            stdin=subprocess.PIPE,
            env=child_env,
            pass_fds=(w,),
        )
    finally:
        os.close(w)
    outcome: tuple[str, Any] | None = None
    assert proc.stdin is not None
    try:
        # the parent's sys.path first, so modules the worker can import (uploaded files, the
        # user's package) unpickle in the child too
        _write(proc.stdin, list(sys.path))
        _write(proc.stdin, (fn, dict(ctx_fields)))
        with os.fdopen(r, "rb") as events:
            r = -1
            while (frame := _read(events)) is not None:
                kind, value = frame
                if kind == "event":
                    sink(value)
                else:
                    outcome = (kind, value)
        proc.wait()
    finally:
        if r != -1:
            os.close(r)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with contextlib.suppress(OSError):
            proc.stdin.close()
    if outcome is None:
        raise RankProcessError(
            f"the rank process (pid {proc.pid}) exited with code "
            f"{proc.returncode} before returning; see the worker's log"
        )
    kind, value = outcome
    if kind == "result":
        return value
    name, message, tb, where, lepton_cls = value
    if lepton_cls is not None:
        raise lepton_cls(message)
    err = RankProcessError(f"{name}: {message} ({where}; full traceback in the worker's log)")
    err.child_traceback = tb
    raise err


def _watch_parent(stdin: IO[bytes]) -> None:
    """Exit when the parent (the worker) goes away: its end of our stdin closes."""
    while stdin.read(65536):
        pass
    os._exit(70)


def _main(fd: int) -> None:
    global _current

    out = os.fdopen(fd, "wb")
    lock = threading.Lock()
    stdin = sys.stdin.buffer
    for p in reversed(_read(stdin)):
        if p not in sys.path:
            sys.path.insert(0, p)
    fn, fields = _read(stdin)
    threading.Thread(target=_watch_parent, args=(stdin,), daemon=True).start()

    def send(event: Event) -> None:
        _write(out, ("event", event), lock, plain=True)  # plain dicts: pickle is quicker

    _current = TrainContext(**fields, sink=send)
    try:
        result = fn(_current)
    except BaseException as e:  # noqa: BLE001 - every failure is reported to the parent
        lepton_cls = type(e) if isinstance(e, LeptonError) else None
        tb = traceback.format_exc()
        print(f"lepton_nb rank {_current.rank} failed:\n{tb}", file=sys.stderr, flush=True)
        last = traceback.extract_tb(e.__traceback__)[-1]
        where = f"in {last.name} at {os.path.basename(last.filename)}:{last.lineno}"
        _write(out, ("error", (type(e).__name__, str(e), tb, where, lepton_cls)), lock)
        out.close()
        os._exit(1)  # skip TF's slow (and sometimes hanging) interpreter teardown
    try:
        _write(out, ("result", result), lock)
    except Exception as e:  # noqa: BLE001 - an unpicklable return value
        why = (
            f"train_fn's return value could not be sent back ({e}); return plain values "
            "(numbers, lists, dicts, numpy arrays), not models or tensors"
        )
        _write(out, ("error", (type(e).__name__, why, "", "returning from train_fn", None)), lock)
    out.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    # run as the importable module, not as __main__, so current_context() sees the context
    from lepton_nb.train._rankproc import _main as main

    main(int(sys.argv[1]))


__all__ = ["RankProcessError", "current_context", "run_in_child"]
