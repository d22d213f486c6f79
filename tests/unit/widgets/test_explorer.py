"""CompressionExplorer without a cluster: variants run in-process."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from lepton_nb import compress
from lepton_nb.compress import Variant
from lepton_nb.datasets import Split, mnist
from lepton_nb.errors import ConfigError, NotFoundError
from lepton_nb.models import MLP
from lepton_nb.widgets._explorer_plot import pareto_front
from lepton_nb.widgets.explorer import CompressionExplorer


@pytest.fixture(scope="module")
def split() -> Split:
    return mnist()


@pytest.fixture(scope="module")
def model(split: Split) -> nn.Module:
    torch.manual_seed(0)
    net = MLP()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(2):
        for x, y in DataLoader(split.train, batch_size=32, shuffle=True):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    return net.eval()


def test_pareto_front_keeps_only_undominated_points() -> None:
    t = pd.DataFrame(
        {"bytes": [100, 50, 60, 20], "accuracy": [0.9, 0.89, 0.5, 0.7]}, index=list("abcd")
    )
    assert pareto_front(t, "bytes") == ["d", "b", "a"]  # c is bigger and worse than b


def test_runs_variants_plots_and_exports(model: nn.Module, split: Split, tmp_path: Path) -> None:
    ex = CompressionExplorer(model, split.test, settings={"runs": 3, "warmup": 1})
    table = ex.run([Variant("dynamic-int8"), Variant("prune-l1", 0.5), Variant("prune-l1", 0.9)])
    assert list(table.index) == ["baseline", "dynamic-int8", "prune-l1@0.5", "prune-l1@0.9"]
    assert table.loc["dynamic-int8", "size_x"] > 3.5
    assert table.loc["prune-l1@0.9", "accuracy"] < table.loc["prune-l1@0.5", "accuracy"]
    sizes, front = ex.figure.data[0], ex.figure.data[1]
    assert len(sizes.x) == 4 and "dynamic-int8" in sizes.text
    assert min(front.x) == table["bytes"].min()  # the smallest model is always on the front
    assert "dynamic-int8" in ex.table.value and list(ex.choice.options) == list(table.index)
    path = ex.export("dynamic-int8", tmp_path / "q.pt")
    x = split.test.tensors[0][:16]
    with torch.no_grad():
        assert torch.equal(compress.load(path)(x), ex.models["dynamic-int8"](x))
    ex.run([Variant("dynamic-int8")])  # already measured: not run again
    assert len(ex.results) == 4


def test_controls_drive_the_same_path(model: nn.Module, split: Split) -> None:
    ex = CompressionExplorer(model, split.test, settings={"runs": 2, "warmup": 1})
    ex.method.value = "prune-structured"
    assert not ex.strengths.disabled and ex.strengths.description == "sparsity"
    ex.strengths.value = "0.25, 0.5"
    assert ex.variants_from_controls() == [
        Variant("prune-structured", 0.25),
        Variant("prune-structured", 0.5),
    ]
    ex.run_button.click()
    ex.wait()
    assert {"prune-structured@0.25", "prune-structured@0.5"} <= set(ex.results.index)
    assert ex.results.loc["prune-structured@0.5", "params"] < 60_000
    ex.method.value = "weight-only-intx"
    assert ex.strengths.description == "bits" and ex.strengths.value == "4"
    ex.method.value = "dynamic-int8"
    assert ex.strengths.disabled
    assert "distill" not in ex.method.options  # no student given


def test_bad_input_is_shown_not_raised(model: nn.Module, split: Split) -> None:
    ex = CompressionExplorer(model, split.test, settings={"runs": 2, "warmup": 1})
    ex.method.value = "prune-l1"
    ex.strengths.value = "half"
    with pytest.raises(ConfigError, match="not numbers"):
        ex.variants_from_controls()
    ex.run_button.click()
    assert "not numbers" in ex.status.value
    with pytest.raises(NotFoundError):
        ex.run([Variant("zip")])
    ex.run([Variant("static-int8")])  # no calibration data: reported, others unaffected
    assert "calibration_data" in ex.status.value and "static-int8" not in ex.results.index
    assert "calibration_data" in ex.errors["static-int8"]
    with pytest.raises(ConfigError, match="no variant"):
        ex.export("nope", "x.pt")


def test_search_draws_live_and_shows_a_recipe_on_click(model: nn.Module, split: Split) -> None:
    ex = CompressionExplorer(model, split.test)
    drawn: list[int] = []  # points on the plot each time the status reports a new candidate
    ex.status.observe(lambda _: drawn.append(len(ex.figure.data[0].x or ())), names="value")
    cfg = compress.SearchConfig(subset_size=128, prune_amounts=(0.25, 0.5), max_skip=1,
                                settings={"runs": 3, "warmup": 1})  # fmt: skip
    result = ex.search(max_drop=1.0, methods=["dynamic-int8", "prune-structured"], config=cfg)
    assert result is not None and ex.search_result is result
    table, built = ex.results, result.table
    if "error" in built:
        built = built[built["error"].isna()]
    assert set(table.index) == set(built.index)
    assert drawn[:3] == [1, 2, 3]  # points appeared one by one, as candidates finished
    budget, star = ex.figure.data[4], ex.figure.data[5]
    threshold = result.table.loc["baseline", "accuracy"] - 0.01
    assert list(budget.y) == pytest.approx([threshold, threshold])
    chosen = result.recipe.label
    assert list(star.x) == [table.loc[chosen, "bytes"]] and ex.choice.value == chosen
    assert chosen in ex.models
    # a click in the browser reaches the kernel as this message; the recipe appears
    i = list(ex.figure.data[0].text).index(chosen)
    ex.figure._js2py_pointsCallback = {
        "event_type": "plotly_click", "device_state": None, "selector": None,
        "points": {"trace_indexes": [0], "point_indexes": [i], "xs": [0], "ys": [0]},
    }  # fmt: skip
    assert html.escape(chosen) in ex.recipe_view.value and "quantize" in ex.recipe_view.value
