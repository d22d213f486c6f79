"""The client-side callback interface for training runs.

Metric events travel from each rank as small msgpack-able dicts (worker ``log_event`` ->
``Client.subscribe_topic``); the client coalesces them and hands them to callbacks in batches.

An event is a flat dict.  Keys every event has:

- ``kind``: ``"step"`` (per reporting interval), ``"epoch"`` (end of an epoch, validation
  metrics), ``"restart"`` (recovery restarted the group), ``"world"`` (an elastic run
  re-formed its group with a different number of ranks), or ``"log"`` (free-form message)
- ``rank`` (int), ``step`` (int, global optimizer step of that rank), ``epoch`` (int),
  ``time`` (float, unix seconds on the worker)

and then any metrics as numbers, conventionally ``loss``, ``samples_per_s``, ``lr``,
``val_loss``, ``val_accuracy``.  Step and epoch events carry ``attempt`` (the generation of
the group: it grows at every restart and world change) and ``world_size`` (ranks in that
generation).  A ``"restart"`` event carries ``attempt`` and ``reason``; a ``"world"`` event
(rank -1, ``step`` = the step training continues from) carries ``attempt`` (the new
generation), ``old_size``, ``new_size``, ``reason`` ("worker joined: tcp://...", "worker
retired: ...", "worker lost: ...") and ``restart`` (always False: a world change does not
spend a restart).  Events relayed through Dask one at a time also carry ``worker`` (the
sending worker's address, added by the scheduler).
"""

from __future__ import annotations

from typing import Any

Event = dict[str, Any]


class Callback:
    """Base class for fit/run callbacks; override what you need (all methods are no-ops)."""

    def on_train_start(self, info: dict[str, Any]) -> None:
        """Called once on the client before ranks start; ``info`` has ``strategy``,
        ``world_size``, ``epochs``, ``run_id`` and the fit configuration as a dict."""

    def on_events(self, events: list[Event]) -> None:
        """Called on the client with a batch of coalesced metric events, in arrival order."""

    def on_train_end(self, info: dict[str, Any]) -> None:
        """Called once on the client when the run ends; ``info`` has ``status``
        (``"succeeded"`` or ``"failed"``), ``history`` (DataFrame) and ``metrics``."""


__all__ = ["Callback", "Event"]
