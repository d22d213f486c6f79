"""One process per rank: run a function in a child process of the Dask worker, as torchrun does.

The worker keeps its scheduler link (heartbeats, events, task state) while the rank gets a
whole interpreter: no GIL shared with the worker's event loop, glibc's default malloc settings
instead of the nanny's ``MALLOC_TRIM_THRESHOLD_``, and its data unpickled fresh in its own
address space.  Measured on the reference machine: see ``benchmarks/README.md`` (issue 14).

- **Warm start**: each worker keeps one fork server (zygote) per set of warm imports (torch and
  the train modules for ranks), started on first use; it has imported them once and forks a
  child per call (milliseconds, copy-on-write), so only the first rank on a fresh worker waits
  for the imports.  The zygote never runs torch ops or starts threads, so forking it is safe.
- **Channel**: a socketpair; the child sends events (``emit``) and its result or exception,
  pickled with cloudpickle.  Objects listed in ``relay`` (e.g. a Dask Actor handle, which only
  works inside the worker) are replaced in the arguments by proxies whose method calls run in
  the worker and return an object with ``.result()``, like an ``ActorFuture``.
- **Lifetime**: a child exits after its call.  If the worker dies (even by ``SIGKILL``) the
  socket closes and the child's watchdog thread ends it at once, so a lost worker still takes
  its rank down (and its peers' collectives fail immediately, as with torchrun).  The child's
  stdout goes to the worker's stderr (the channel is not stdout).

Usage (in a Dask task)::

    from lepton_nb.train._procs import run_in_process
    result = run_in_process(my_rank_fn, arg1, arg2, on_event=print)
    # in the child: my_rank_fn(arg1, arg2); lepton_nb.train._procs.emit(obj) -> on_event(obj)
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

#: what a worker's rank fork server imports before it forks ranks (see that module)
RANK_WARM = ("lepton_nb.train._warm",)


def _dumps(obj: Any, relay: dict[int, Any]) -> bytes:
    import cloudpickle

    buf = io.BytesIO()
    pickler = cloudpickle.CloudPickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    if relay:
        ids = {id(o): k for k, o in relay.items()}
        pickler.persistent_id = lambda o: ids.get(id(o))  # type: ignore[method-assign]
    pickler.dump(obj)
    return buf.getvalue()


class RankProcessError(RuntimeError):
    """The child process died without sending a result (killed, out of memory, crashed)."""


class Zygote:
    """Worker side of the fork server: a process that imported ``warm`` and forks children."""

    def __init__(self, warm: tuple[str, ...]) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        # the nanny's setting that makes every step's buffers fresh mmaps (see rendezvous)
        env.pop("MALLOC_TRIM_THRESHOLD_", None)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lepton_nb.train._child", str(theirs.fileno()), *warm],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env=env,
        )
        theirs.close()
        self.ctl = ours
        self.lock = threading.Lock()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def fork(self) -> Child:
        """A new child (waits for the zygote's imports on its first use)."""
        ours, theirs = socket.socketpair()
        try:
            with self.lock:
                socket.send_fds(self.ctl, [b"f"], [theirs.fileno()])
                data = b""
                while len(data) < 4:
                    chunk = self.ctl.recv(4 - len(data))
                    if not chunk:
                        raise ConnectionError("the fork server ended")
                    data += chunk
        finally:
            theirs.close()
        return Child(struct.unpack("i", data)[0], Connection(ours.detach()))

    def close(self) -> None:
        self.ctl.close()  # the zygote sees EOF and exits
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Child:
    """Worker side of one forked child: run one call in it (see the module docstring)."""

    def __init__(self, pid: int, conn: Connection) -> None:
        self.pid, self.conn = pid, conn

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone (reaped by the zygote)
            os.kill(self.pid, signal.SIGKILL)
        self.conn.close()

    def call(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        on_event: Callable[[Any], None] | None = None,
        relay: Sequence[Any] = (),
    ) -> Any:
        """Run ``fn(*args)`` in the child; relay its events; return its result or raise."""
        objs = dict(enumerate(relay))
        try:
            self.conn.send_bytes(pickle.dumps(("call", list(sys.path))))
            self.conn.send_bytes(_dumps((fn, args), objs))
            while True:
                kind, *rest = pickle.loads(self.conn.recv_bytes())
                if kind == "event":
                    if on_event is not None:
                        on_event(rest[0])
                elif kind == "relay":
                    self._relay(objs, *rest)
                elif kind == "done":
                    ok, value = rest
                    if not ok:
                        raise value
                    return value
        except (EOFError, ConnectionError):
            raise RankProcessError(
                f"the rank's process (pid {self.pid}) ended before returning a result "
                "(killed, out of memory or crashed; see the worker's log)"
            ) from None
        finally:
            self.kill()

    def _relay(self, objs: dict[int, Any], key: int, method: str, args: tuple[Any, ...]) -> None:
        try:
            out = getattr(objs[key], method)(*args)
            reply: tuple[Any, ...] = (
                "reply",
                True,
                out.result() if hasattr(out, "result") else out,
            )
        except Exception as e:  # noqa: BLE001 - handed to the child, which raises it
            reply = ("reply", False, e)
        self.conn.send_bytes(_dumps(reply, {}))


_zygotes: dict[tuple[str, ...], Zygote] = {}
_zygotes_lock = threading.Lock()


@atexit.register
def _close_zygotes() -> None:
    with _zygotes_lock:
        for z in _zygotes.values():
            z.close()
        _zygotes.clear()


def prewarm(warm: Sequence[str] = RANK_WARM) -> Zygote:
    """This worker's fork server for ``warm``, started if there is none (idempotent)."""
    key = tuple(warm)
    with _zygotes_lock:
        z = _zygotes.get(key)
        if z is None or not z.alive():
            z = _zygotes[key] = Zygote(key)
        return z


def run_in_process(
    fn: Callable[..., Any],
    *args: Any,
    on_event: Callable[[Any], None] | None = None,
    relay: Sequence[Any] = (),
    warm: Sequence[str] = RANK_WARM,
) -> Any:
    """Run ``fn(*args)`` in a new child process forked from this worker's fork server (which
    imported ``warm`` once), forwarding what the child :func:`emit`-s to ``on_event``; returns
    ``fn``'s result or raises its exception.  Objects in ``relay`` reach the child as proxies
    that call back into this process."""
    try:
        child = prewarm(warm).fork()
    except (ConnectionError, OSError):  # the fork server died (e.g. killed): start a new one
        with _zygotes_lock:
            _zygotes.pop(tuple(warm), None)
        child = prewarm(warm).fork()
    return child.call(fn, args, on_event, relay)


# --- child side --------------------------------------------------------------------------------
_channel: Any = None  # set in the child by lepton_nb.train._child


def in_child() -> bool:
    """True inside a child started by :func:`run_in_process`."""
    return _channel is not None


def emit(obj: Any) -> None:
    """In the child: send ``obj`` (picklable) to the parent's ``on_event``."""
    if _channel is None:
        raise RuntimeError("emit() works only inside run_in_process")
    _channel.send(("event", obj))


class Relayed:
    """In the child: stands for an object that stays in the worker; ``proxy.method(*args)``
    runs there and returns a :class:`Done` (``.result()``), like a Dask ``ActorFuture``."""

    def __init__(self, key: int) -> None:
        self._key = key

    def __getattr__(self, method: str) -> Callable[..., Done]:
        if method.startswith("_"):
            raise AttributeError(method)

        def call(*args: Any) -> Done:
            return Done(*_channel.request(("relay", self._key, method, args)))

        return call


class Done:
    def __init__(self, ok: bool, value: Any) -> None:
        self.ok, self.value = ok, value

    def result(self, timeout: float | None = None) -> Any:
        if not self.ok:
            raise self.value
        return self.value


__all__ = [
    "RANK_WARM",
    "Child",
    "RankProcessError",
    "Zygote",
    "emit",
    "in_child",
    "prewarm",
    "run_in_process",
]
