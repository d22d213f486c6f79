"""The processes of :mod:`lepton_nb.train._procs`.

``python -m lepton_nb.train._child FD [module ...]`` is a worker's fork server (zygote): it
imports the warm modules once and forks a child per request.  A child waits for one call on its
own socket, runs it in its main thread, sends the result and exits.  A reader thread owns the
socket's receiving side: it hands replies to relayed calls to the main thread and ends the
process the moment the socket closes (the worker died), so an orphaned rank never trains on.
"""

from __future__ import annotations

import importlib
import os
import pickle
import queue
import signal
import socket
import struct
import sys
import threading
import traceback
from multiprocessing.connection import Connection
from typing import Any

from lepton_nb.train import _procs


class Channel:
    def __init__(self, fd: int) -> None:
        self.conn = Connection(fd)
        self._send_lock = threading.Lock()
        self._req_lock = threading.Lock()
        self.calls: queue.Queue[Any] = queue.Queue()
        self.replies: queue.Queue[Any] = queue.Queue()

    def send(self, msg: Any) -> None:
        data = _procs._dumps(msg, {})
        with self._send_lock:
            self.conn.send_bytes(data)

    def request(self, msg: Any) -> tuple[bool, Any]:
        with self._req_lock:  # one relayed call at a time: replies come back in order
            self.send(msg)
            _, ok, value = self.replies.get()
            return ok, value

    def read_forever(self) -> None:
        try:
            while True:
                msg = pickle.loads(self.conn.recv_bytes())
                if msg[0] == "call":  # (call, sys.path); the pickled call follows, raw:
                    self.calls.put((msg[1], self.conn.recv_bytes()))  # main thread unpickles
                else:
                    self.replies.put(msg)
        except (EOFError, OSError):
            os._exit(0 if self.calls.empty() and _idle.is_set() else 1)


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes) -> None:
        import io

        super().__init__(io.BytesIO(data))

    def persistent_load(self, pid: Any) -> Any:
        return _procs.Relayed(int(pid))


_idle = threading.Event()


def child_main(fd: int) -> None:
    """A forked child: wait for one call on ``fd``, run it in this (main) thread, send the
    result, exit without interpreter teardown (torch/gloo threads; the result is sent)."""
    channel = Channel(fd)
    _idle.set()
    threading.Thread(target=channel.read_forever, name="lepton-parent-watch", daemon=True).start()
    path, raw = channel.calls.get()
    _idle.clear()
    sys.path[:] = path  # the worker's, now: modules uploaded to it import here too
    _procs._channel = channel
    try:
        fn, args = _Unpickler(raw).load()
        result: tuple[bool, Any] = (True, fn(*args))
    except BaseException as e:  # noqa: BLE001 - sent to the worker, which raises it
        traceback.print_exc()
        traceback.clear_frames(e.__traceback__)
        result = (False, e)
    try:
        channel.send(("done", *result))
    except Exception:  # noqa: BLE001 - an unpicklable result or exception: send its text
        exc = result[1]
        channel.send(("done", False, RuntimeError(f"{type(exc).__name__}: {exc}")))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def zygote_main() -> None:
    """The fork server: import the warm modules once, then fork a child per request (the
    request carries the child's socket).  Single-threaded, so forking is safe; ends when the
    worker closes the control socket."""
    ctl = socket.socket(fileno=int(sys.argv[1]))
    os.dup2(2, 1)  # print() in user code goes to the worker's log, not into a channel
    sys.stdout = sys.stderr
    for name in sys.argv[2:]:
        importlib.import_module(name)
    # A process that initialised CUDA cannot fork a child that uses it: then each child
    # re-executes a fresh interpreter (cold, but correct)
    torch = sys.modules.get("torch")
    fork_only = torch is None or not torch.cuda.is_initialized()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(ctl, 16, 1)
        except OSError:
            msg, fds = b"", []
        if not msg or not fds:
            os._exit(0)  # the worker is gone
        pid = os.fork()
        if pid == 0:
            ctl.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            if not fork_only:
                os.set_inheritable(fds[0], True)
                os.execv(
                    sys.executable,
                    [
                        sys.executable,
                        "-m",
                        "lepton_nb.train._child",
                        "--child",
                        str(fds[0]),
                        *sys.argv[2:],
                    ],
                )
            child_main(fds[0])
        os.close(fds[0])
        ctl.sendall(struct.pack("i", pid))


if __name__ == "__main__":
    if sys.argv[1] == "--child":  # re-executed child of a zygote that initialised CUDA
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        for _name in sys.argv[3:]:
            importlib.import_module(_name)
        child_main(int(sys.argv[2]))
    zygote_main()


__all__ = ["Channel", "child_main", "zygote_main"]
