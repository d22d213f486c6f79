"""ClusterWidget and a live LossCurve in a real JupyterLab notebook, watched from chromium."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser]


# MLP epochs take a fraction of a second here: 15 of them keep the fit running for seconds,
# long enough to watch the curve grow.
_FIT = """\
import torch
from lepton_nb import datasets, models
split = datasets.mnist()
train = split.train
result = ln.fit(models.MLP(), train, cluster=cluster, epochs=15, batch_size=64, callbacks=[curve])
print('fit done', len(result.history))
"""


def _points_js() -> str:
    # Points across all traces of the live plotly figures in the current notebook.
    return (
        "(sel) => [...document.querySelectorAll(sel + ' .js-plotly-plot')]"
        ".map(p => (p.data || []).reduce((n, t) => n + ((t.x && t.x.length) || 0), 0))"
        ".reduce((a, b) => Math.max(a, b), 0)"
    )


@pytest.mark.parametrize(
    "layout",
    [
        "display-and-fit-in-one-cell",
        "display-then-fit-in-next-cell",
    ],
)
def test_cluster_widget_and_loss_curve_render_live(
    page: Any, ui: Any, lab: Any, layout: str, notebook_writer: Any
) -> None:
    name = f"widgets-{layout}.ipynb"
    notebook_writer(
        lab.root / name,
        [
            (
                "code",
                "import lepton_nb as ln\ncluster = ln.launch_cluster(n_workers=2, "
                "threads_per_worker=1, gpu=False, dashboard_address='127.0.0.1:0')\n"
                "cluster.wait_for_workers(2)\nln.ClusterWidget(cluster)",
                [],
            ),
            *(
                [
                    (
                        "code",
                        "curve = ln.LossCurve(redraw_interval=0.2)\ndisplay(curve)\n" + _FIT,
                        [],
                    )
                ]
                if layout == "display-and-fit-in-one-cell"
                else [
                    ("code", "curve = ln.LossCurve(redraw_interval=0.2)\ncurve", []),
                    ("code", _FIT, []),
                ]
            ),
            ("code", "cluster.close()", []),
        ],
    )
    ui.open_notebook(name)
    ui.run_cell(0)
    widget = page.wait_for_selector(f"{ui.current_nb} .lepton-cluster-widget", timeout=120_000)
    page.wait_for_function(
        "(sel) => { const w = document.querySelector(sel + ' .lepton-cluster-widget');"
        " return w && w.textContent.includes('2 workers')"
        " && w.querySelectorAll('table tbody tr').length === 2; }",
        arg=ui.current_nb,
        timeout=60_000,
    )
    assert "127.0.0.1" in widget.inner_text()

    # Sample the live curve while the fit runs: its point count must rise in several steps.
    for index in range(1, 4 if layout == "display-then-fit-in-next-cell" else 3):
        ui.run_cell(index)
    page.wait_for_selector(f"{ui.current_nb} .js-plotly-plot", timeout=120_000)
    samples: list[int] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        samples.append(int(page.evaluate(_points_js(), ui.current_nb)))
        if samples[-1] > 0 and samples.count(samples[-1]) == 1 and len(set(samples)) == 2:
            ui.shot(f"notebook-widgets-live-{layout}")  # mid-fit: the first points arrived
        done = page.evaluate(
            "(sel) => [...document.querySelectorAll(sel + ' .jp-OutputArea-output')]"
            ".some(o => o.textContent.includes('fit done'))",
            ui.current_nb,
        )
        if done:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the fit did not finish; point counts seen: {samples}")
    ui.artifacts.mkdir(parents=True, exist_ok=True)
    (ui.artifacts / f"loss-curve-points-{layout}.json").write_text(json.dumps(samples))
    final = samples[-1]  # taken in the round that saw the fit end
    live = [n for n in samples[:-1] if n > 0]  # taken while the fit was still running
    assert live, f"no point reached the live curve while the fit ran: {samples}"
    assert live[0] < final and final >= 20, samples
    page.wait_for_timeout(1000)
    ui.shot(f"notebook-widgets-done-{layout}")
