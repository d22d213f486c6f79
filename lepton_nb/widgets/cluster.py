"""ClusterWidget: a live worker table with scale and adapt controls."""

from __future__ import annotations

import html
import threading
from typing import TYPE_CHECKING

import ipywidgets as W

from lepton_nb.errors import LeptonError
from lepton_nb.widgets._cluster_table import fmt_bytes, workers_table_html

if TYPE_CHECKING:
    from lepton_nb.cluster import Cluster


class ClusterWidget(W.VBox):
    """Shows a cluster's workers (with GPU columns when present, and a "rank" column while a
    training run holds ranks on them) and lets you scale it.

    The table refreshes every ``refresh_s`` seconds from a daemon thread until the cluster or
    the widget is closed; ``display(cluster)`` shows one of these.
    """

    def __init__(self, cluster: Cluster, refresh_s: float = 2.0) -> None:
        self.cluster = cluster
        self._stop = threading.Event()
        self.header = W.HTML()
        self.table = W.HTML()
        self.status = W.HTML()
        self.n_workers = W.BoundedIntText(
            min=0, max=1024, description="workers", layout={"width": "160px"}
        )
        self.scale_button = W.Button(description="Scale", icon="arrows-v")
        self.minimum = W.BoundedIntText(
            value=1, min=0, max=1024, description="min", layout={"width": "130px"}
        )
        self.maximum = W.BoundedIntText(
            value=4, min=0, max=1024, description="max", layout={"width": "130px"}
        )
        self.adapt_button = W.Button(description="Adapt", icon="magic")
        self.scale_button.on_click(lambda _: self._act(lambda: cluster.scale(self.n_workers.value)))
        self.adapt_button.on_click(
            lambda _: self._act(lambda: cluster.adapt(self.minimum.value, self.maximum.value))
        )
        controls = [
            self.n_workers,
            self.scale_button,
            self.minimum,
            self.maximum,
            self.adapt_button,
        ]
        for c in controls:
            c.disabled = not cluster.owned
        super().__init__(
            [self.header, self.table, W.HBox(controls), self.status],
            layout={"border": "1px solid var(--jp-border-color2, #ddd)", "padding": "4px"},
        )
        self.add_class("lepton-cluster-widget")
        self.refresh()
        if self.workers_count is not None:
            self.n_workers.value = self.workers_count
        self._thread = threading.Thread(target=self._loop, args=(refresh_s,), daemon=True)
        self._thread.start()

    workers_count: int | None = None

    def _act(self, fn: object) -> None:
        try:
            fn()  # type: ignore[operator]
            self.status.value = ""
        except LeptonError as e:  # show the user's mistake, keep the widget alive
            self.status.value = f'<span style="color:#c00">{html.escape(str(e))}</span>'
        self.refresh()

    def refresh(self) -> None:
        if self.cluster.closed:
            self.header.value = "<b>lepton_nb cluster</b> (closed)"
            self.table.value = ""
            self._stop.set()
            return
        workers = self.cluster.workers
        self.workers_count = len(workers)
        threads = sum(int(w.get("nthreads") or 0) for w in workers)
        memory = sum(int(w.get("memory_limit") or 0) for w in workers)
        link = self.cluster.dashboard_link
        dash = (
            f' &middot; <a href="{html.escape(link)}" target="_blank">dashboard</a>' if link else ""
        )
        self.header.value = (
            f"<b>{html.escape(self.cluster.kind)} cluster</b> &middot; "
            f"<code>{html.escape(self.cluster.scheduler_address)}</code> &middot; "
            f"{len(workers)} workers, {threads} threads, {fmt_bytes(memory)}{dash}"
        )
        # which workers hold ranks of a running fit (any kernel's, published by its driver)
        from lepton_nb.train._placement import ranks_by_worker

        ranks = ranks_by_worker(self.cluster.client, [str(w["address"]) for w in workers])
        self.table.value = workers_table_html(workers, ranks)

    def _loop(self, refresh_s: float) -> None:
        while not self._stop.wait(refresh_s):
            try:
                self.refresh()
            except (OSError, LeptonError):  # cluster went away between checks
                self._stop.set()

    def close(self) -> None:
        self._stop.set()
        super().close()


__all__ = ["ClusterWidget"]
