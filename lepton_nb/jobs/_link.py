"""Watching and cancelling a job that runs on a Dask worker, through Dask instead of files.

The worker may share no file system with the client (another host, a container), so it never
touches the job store.  On the worker, :class:`WorkerLink` stands in for the store that
``execute`` writes to: status changes and heartbeats (with progress: the cell running) go out as
Dask events on the sweep's topic, and a cancel is a Dask :class:`distributed.Event` per job.  On
the client, :class:`ClientRelay` applies the events to the store and turns a cancel requested in
the store (``jobs.cancel`` from any process) into that Event.
"""

from __future__ import annotations

import collections
import time
from functools import partial
from typing import Any

from lepton_nb.jobs.models import JobRecord
from lepton_nb.jobs.store import JobStore

# cell progress of the jobs running in this process, set by the papermill engine hook
PROGRESS: dict[str, dict[str, int]] = {}


def cancel_event_name(job_id: str) -> str:
    return f"lepton-job-cancel-{job_id}"


class WorkerLink:
    """The store ``execute`` sees on a worker: events out, cancel flag in."""

    def __init__(self, topic: str) -> None:
        from distributed import get_client, get_worker

        self.topic = topic
        self.worker = get_worker()
        self.client = get_client()

    def _send(self, msg: dict[str, Any]) -> None:
        self.worker.log_event(self.topic, msg)

    def put(self, rec: JobRecord) -> JobRecord:
        self._send(
            {
                "job": rec.id,
                "kind": "status",
                "status": rec.status,
                "started": rec.started,
                "host": rec.host,
                "pid": rec.pid,
                "time": time.time(),
            }
        )
        return rec

    def beat(self, job_id: str) -> bool:
        self._send(
            {
                "job": job_id,
                "kind": "beat",
                "time": time.time(),
                "progress": dict(PROGRESS.get(job_id, {})),
            }
        )
        return self.cancel_requested(job_id)

    def cancel_requested(self, job_id: str) -> bool:
        from distributed import Event

        return bool(Event(cancel_event_name(job_id), client=self.client).is_set())


class ClientRelay:
    """Client side: queue the workers' job events, apply them to the store, forward cancels."""

    def __init__(self, client: Any, topic: str, store: JobStore, job_ids: list[str]) -> None:
        self.client, self.topic, self.store = client, topic, store
        self.pending = set(job_ids)
        self.started: set[str] = set()  # jobs a worker said it started
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._cancelled: set[str] = set()
        client.subscribe_topic(topic, self._on_event)

    def _on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        self._queue.append(event[1])  # on the client's event loop: no store I/O here

    def pump(self) -> None:
        """Apply queued events and forward cancel requests (call from the sweep's thread)."""
        latest: dict[str, dict[str, Any]] = {}
        while self._queue:
            msg = self._queue.popleft()
            if msg.get("job") in self.pending:
                latest.setdefault(msg["job"], {}).update(msg)
        for job_id, msg in latest.items():
            if msg.get("status") == "running":
                self.started.add(job_id)
            self.store.update(job_id, partial(_apply, msg=msg))
        from distributed import Event

        for job_id in self.pending - self._cancelled:
            if self.store.cancel_requested(job_id):
                Event(cancel_event_name(job_id), client=self.client).set()
                self._cancelled.add(job_id)

    def done(self, job_id: str) -> None:
        self.pending.discard(job_id)

    def close(self) -> None:
        from distributed import Event

        self.client.unsubscribe_topic(self.topic)
        for job_id in self._cancelled:  # events live on the scheduler until cleared
            Event(cancel_event_name(job_id), client=self.client).clear()


def _apply(rec: JobRecord, *, msg: dict[str, Any]) -> None:
    if rec.status not in ("queued", "running"):
        return  # the final record already came back
    if msg.get("status") == "running":
        rec.status = "running"
        rec.started = msg.get("started") or rec.started
        rec.host, rec.pid = msg.get("host") or rec.host, msg.get("pid") or rec.pid
    rec.heartbeat = float(msg.get("time") or time.time())
    if msg.get("progress"):
        rec.progress = dict(msg["progress"])


__all__ = ["PROGRESS", "ClientRelay", "WorkerLink", "cancel_event_name"]
