"""A notebook that trains with a LossCurve, executed by papermill in a real python3 kernel: the
saved notebook must hold a static plotly figure (no kernel needed to view it) whose mean-loss
trace has every step's mean loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest

pytestmark = pytest.mark.integration

PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

PARAMS = 'csv_path = "history.csv"\nsteps = 25\nclose = True\n'
TRAIN = """\
import torch
from IPython.display import display
import lepton_nb as ln
from lepton_nb.datasets import digits
from lepton_nb.models import MLP

train, _ = digits()
curve = ln.LossCurve(redraw_interval=0.05)
display(curve)
"""
LOOP = """\
# two "ranks" with their own seeds, as a data-parallel run would report them
models = [MLP(in_features=64, hidden=32) for _ in range(2)]
opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in models]
loader = torch.utils.data.DataLoader(train, batch_size=32, shuffle=True,
                                     generator=torch.Generator().manual_seed(0))
batches = iter(loader)
for step in range(steps):
    x, y = next(batches)
    for rank, (model, opt) in enumerate(zip(models, opts)):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
        curve.update(step=step, loss=loss.item(), rank=rank, lr=0.1, epoch=0)
curve.update(step=steps - 1, kind="epoch", epoch=0, val_loss=0.5)
curve.to_csv(csv_path)
if close:
    curve.close()
"""


def outputs(nb: Any) -> list[dict[str, Any]]:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


@pytest.mark.parametrize("close", [True, False], ids=["close", "no-close"])
def test_executed_notebook_keeps_static_curves(tmp_path: Path, make_nb: Any, close: bool) -> None:
    import papermill

    src = make_nb("train.ipynb", TRAIN, LOOP, "print(curve.stats)", params=PARAMS)
    out = tmp_path / "train.out.ipynb"
    csv = tmp_path / "history.csv"
    papermill.execute_notebook(
        str(src),
        str(out),
        parameters={"csv_path": str(csv), "steps": 25, "close": close},
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
        execution_timeout=300,
    )
    nb = nbformat.read(out, as_version=4)
    figures = [o for o in outputs(nb) if PLOTLY_MIME in o.get("data", {})]
    # one figure, written in place of the live widget (updated by display id, not duplicated)
    assert len(figures) == 1
    assert not any(WIDGET_MIME in o.get("data", {}) for o in outputs(nb))
    data = figures[0]["data"]
    assert "text/html" in data and "plotly" in data["text/html"]
    traces = {t["name"]: t for t in data[PLOTLY_MIME]["data"]}
    history = pd.read_csv(csv)
    steps = history[history["kind"] == "step"]
    assert len(steps) == 50 and set(steps["rank"]) == {0, 1}
    expected = steps.groupby("step")["loss"].mean()
    mean = traces["mean loss"]
    assert mean["x"] == expected.index.tolist()
    assert mean["y"] == pytest.approx(expected.tolist(), rel=1e-9)
    for rank in (0, 1):
        rank_loss = steps[steps["rank"] == rank]["loss"].tolist()
        assert len(traces[f"rank {rank}"]["y"]) == len(rank_loss)
    assert traces["val_loss (epoch)"]["y"] == [0.5]


FIT = """\
from IPython.display import display
import lepton_nb as ln
from lepton_nb.datasets import digits
from lepton_nb.models import MLP

train, test = digits()
curve = ln.LossCurve()
display(curve)
cluster = ln.launch_cluster(n_workers=2, threads_per_worker=1, gpu=False,
                            dashboard_address="127.0.0.1:0")
try:
    result = ln.fit(MLP(in_features=64, hidden=32), train, val_data=test, cluster=cluster,
                    epochs=2, batch_size=64, strategy="ddp", log_every=2, callbacks=[curve])
finally:
    cluster.close()
result.history.to_csv(csv_path, index=False)
"""


def test_fit_on_a_cluster_in_papermill_leaves_every_steps_mean_loss(
    tmp_path: Path, make_nb: Any
) -> None:
    import papermill

    src = make_nb("fit.ipynb", FIT, params='csv_path = "history.csv"')
    out, csv = tmp_path / "fit.out.ipynb", tmp_path / "h.csv"
    papermill.execute_notebook(
        str(src),
        str(out),
        parameters={"csv_path": str(csv)},
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
        execution_timeout=600,
    )
    done = nbformat.read(out, as_version=4)
    figures = [o for o in outputs(done) if PLOTLY_MIME in o.get("data", {})]
    assert len(figures) == 1
    assert not any(WIDGET_MIME in o.get("data", {}) for o in outputs(done))
    traces = {t["name"]: t for t in figures[0]["data"][PLOTLY_MIME]["data"]}
    history = pd.read_csv(csv)
    steps = history[history["kind"] == "step"]
    assert set(steps["rank"]) == {0, 1}  # both DDP ranks streamed their losses
    expected = steps.groupby("step")["loss"].mean()
    assert len(expected) >= 10
    assert traces["mean loss"]["x"] == expected.index.tolist()
    assert traces["mean loss"]["y"] == pytest.approx(expected.tolist(), rel=1e-9)
    assert {"rank 0", "rank 1", "val_loss (epoch)"} <= set(traces)
    epochs = history[history["kind"] == "epoch"]
    assert traces["val_loss (epoch)"]["x"] == sorted(set(epochs["step"]))
