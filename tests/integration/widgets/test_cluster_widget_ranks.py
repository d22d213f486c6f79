"""ClusterWidget's "rank" column, read from the placement record of a real cluster."""

from __future__ import annotations

import uuid
from typing import Any

from lepton_nb.train import _placement
from lepton_nb.widgets import ClusterWidget


def test_rank_column_shows_which_workers_hold_ranks(cluster2: Any) -> None:
    a, b = sorted(w["address"] for w in cluster2.workers)
    run = uuid.uuid4().hex[:12]
    widget = ClusterWidget(cluster2, refresh_s=3600)
    try:
        assert f"(run {run[:6]})" not in widget.table.value
        _placement.publish(cluster2.client, run, {a: 0})
        widget.refresh()
        table = widget.table.value
        assert "<th>rank</th>" in table and f"r0 (run {run[:6]})" in table
        row_a = next(r for r in table.split("<tr>") if a in r)
        row_b = next(r for r in table.split("<tr>") if b in r)
        assert f"r0 (run {run[:6]})" in row_a and run[:6] not in row_b
        # the run grew onto the second worker, then ended
        _placement.publish(cluster2.client, run, {a: 0, b: 1})
        widget.refresh()
        row_b = next(r for r in widget.table.value.split("<tr>") if b in r)
        assert f"r1 (run {run[:6]})" in row_b
        _placement.clear(cluster2.client, run)
        widget.refresh()
        assert run[:6] not in widget.table.value
    finally:
        _placement.clear(cluster2.client, run)
        widget.close()
