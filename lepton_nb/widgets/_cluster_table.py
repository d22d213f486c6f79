"""HTML for a cluster's worker table (shared by the widget and the saved-notebook fallback)."""

from __future__ import annotations

import html
from typing import Any


def fmt_bytes(n: float | None) -> str:
    if not n:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def ranks_cell(held: list[tuple[str, int]]) -> str:
    """``r0 (run 3f2a9c)`` per rank a worker holds; the whole run id is in the tooltip."""
    if not held:
        return "-"
    return ", ".join(
        f'<span title="run {html.escape(run)}">r{rank} (run {html.escape(run[:6])})</span>'
        for run, rank in held
    )


def workers_table_html(
    workers: list[dict[str, Any]], ranks: dict[str, list[tuple[str, int]]] | None = None
) -> str:
    """``ranks`` (from ``lepton_nb.train._placement.ranks_by_worker``) adds a "rank" column
    while any worker holds a training rank."""
    gpu = any(w.get("gpu_name") for w in workers)
    ranks = ranks or {}
    placed = any(ranks.get(str(w.get("address", ""))) for w in workers)
    head = ["worker", "host", "threads", "memory"] + (["GPU", "GPU memory"] if gpu else [])
    head += ["rank"] if placed else []
    rows = []
    for w in workers:
        cells = [
            html.escape(str(w.get("address", ""))),
            html.escape(str(w.get("host", ""))),
            str(w.get("nthreads", "")),
            fmt_bytes(w.get("memory_limit")),
        ]
        if gpu:
            cells += [html.escape(str(w.get("gpu_name") or "-")), fmt_bytes(w.get("gpu_memory"))]
        if placed:
            cells.append(ranks_cell(ranks.get(str(w.get("address", ""))) or []))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    if not rows:
        rows.append(f'<tr><td colspan="{len(head)}"><i>no workers</i></td></tr>')
    th = "".join(f"<th>{h}</th>" for h in head)
    return (
        '<table class="lepton-workers"><thead><tr>'
        + th
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


__all__ = ["fmt_bytes", "ranks_cell", "workers_table_html"]
