"""compress.search in-process on LeNet5 and the MLP (shipped MNIST subset), and its bad input."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lepton_nb import compress
from lepton_nb.compress import Recipe, SearchConfig
from lepton_nb.compress._data import accuracy
from lepton_nb.compress.methods import VariantContext
from lepton_nb.datasets import Split
from lepton_nb.errors import ConfigError, LeptonError, NotFoundError

# small and quick: few latency runs, two pruning amounts, one skipped layer at most
QUICK = SearchConfig(subset_size=256, prune_amounts=(0.25, 0.5), max_skip=1,
                     settings={"runs": 8, "warmup": 2})  # fmt: skip


def _check_choice(result: Any, model: nn.Module, split: Split, max_drop: float) -> None:
    t = result.table
    assert result.met_budget
    # the drop of the returned model, measured here again on the full eval set
    drop = (accuracy(model, split.test) - accuracy(result.best, split.test)) * 100
    assert drop <= max_drop
    assert t.loc[result.recipe.label, "evaluated_on"] == "full"
    assert t.loc[result.recipe.label, "drop"] == pytest.approx(drop)
    singles = t[t["single_method"] & t["within_budget"]]
    assert len(singles) >= 1
    assert t.loc[result.recipe.label, "latency_ms"] <= singles["latency_ms"].min()
    assert result.candidates_evaluated < result.grid_size  # guided, not the full grid
    assert {"recipe", "params", "bytes", "latency_ms", "accuracy", "drop", "within_budget",
            "pareto"} <= set(t.columns)  # fmt: skip
    assert t.loc["baseline", "pareto"] or t["pareto"].any()
    assert "chosen: " + result.recipe.label in result.report()


@pytest.fixture(scope="module")
def lenet_search(trained_lenet: nn.Module, split: Split, calib: torch.Tensor) -> Any:
    seen: list[dict[str, Any]] = []
    result = compress.search(trained_lenet, eval_data=split.test, calibration_data=calib,
                             max_drop=1.0, config=QUICK, on_result=seen.append)  # fmt: skip
    return result, seen


def test_lenet_search_picks_the_fastest_within_budget(
    lenet_search: Any, trained_lenet: nn.Module, split: Split
) -> None:
    result, seen = lenet_search
    _check_choice(result, trained_lenet, split, 1.0)
    t = result.table
    assert set(t["family"]) >= {"quantize", "prune"}
    assert any(Recipe.from_dict(d).guided for d in [result.recipe.to_dict()]) or any(
        "/guided" in label for label in t.index
    )  # sensitivity-guided amounts were tried
    assert (t["evaluated_on"] == "subset").any()  # not everything was evaluated in full
    assert seen[0]["recipe"] == "baseline" and len(seen) >= len(t)  # every row as it landed
    assert t.loc["baseline", "worker"] == "local"


def test_recipe_round_trips_through_save_load(
    lenet_search: Any, trained_lenet: nn.Module, split: Split, calib: torch.Tensor,
    tmp_path: Path,
) -> None:  # fmt: skip
    result, _ = lenet_search
    x = split.test.tensors[0][:64]
    path = compress.save(result.best, tmp_path / "best.pt")
    loaded = compress.load(path)
    with torch.no_grad():
        assert torch.equal(loaded(x), result.best(x))
    assert Recipe.from_dict(result.recipe.to_dict()) == result.recipe
    # the recipe alone rebuilds the chosen model from the original
    again = result.recipe.apply(trained_lenet, VariantContext(calib, x[:1]))
    with torch.no_grad():
        assert torch.equal(again(x), result.best(x))


def test_mlp_search_with_fine_tuning_and_size_objective(
    trained_mlp: nn.Module, split: Split
) -> None:
    xs, ys = split.train.tensors
    small_train = TensorDataset(xs[:1000], ys[:1000])
    result = compress.search(trained_mlp, train_data=small_train, eval_data=split.test,
                             max_drop=1.0, objective="size", config=QUICK)  # fmt: skip
    _check_choice_size(result, trained_mlp, split)
    t = result.table
    assert all("+ft1" in label for label in t[t["family"] == "prune"].index)  # tuned with fit
    assert "prune+quantize" in set(t["family"]) and t["round"].max() == 3  # stacks were tried


def _check_choice_size(result: Any, model: nn.Module, split: Split) -> None:
    t = result.table
    assert result.met_budget and result.objective == "size"
    drop = (accuracy(model, split.test) - accuracy(result.best, split.test)) * 100
    assert drop <= 1.0
    singles = t[t["single_method"] & t["within_budget"]]
    assert t.loc[result.recipe.label, "bytes"] <= singles["bytes"].min()


def test_nothing_within_budget_returns_the_most_accurate_with_a_warning(
    trained_mlp: nn.Module, split: Split
) -> None:
    # a near-zero budget, prune only at amounts that must cost accuracy
    cfg = SearchConfig(subset_size=128, prune_amounts=(0.75,), max_skip=0,
                       settings={"runs": 3, "warmup": 1})  # fmt: skip
    with pytest.warns(UserWarning, match="no candidate kept the accuracy drop"):
        result = compress.search(trained_mlp, eval_data=split.test, max_drop=0.0,
                                 methods=["prune-structured"], config=cfg)  # fmt: skip
    assert not result.met_budget and "NOTHING met the budget" in result.report()
    assert not result.table.loc[result.recipe.label, "within_budget"]


class _Scaled(nn.Module):
    """A layer Torch-Pruning cannot follow (its own parameter, not a known layer type)."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain


def test_unprunable_model_falls_back_and_says_which(trained_mlp: nn.Module, split: Split) -> None:
    model = nn.Sequential(trained_mlp, _Scaled()).eval()
    cfg = SearchConfig(subset_size=128, max_skip=0, settings={"runs": 3, "warmup": 1})
    with pytest.warns(UserWarning, match="prune-structured does not apply.*searching dynamic"):
        result = compress.search(model, eval_data=split.test, config=cfg,
                                 methods=["dynamic-int8", "prune-structured"])  # fmt: skip
    assert set(result.table["family"]) == {"baseline", "quantize"}
    assert any("prune-structured does not apply" in n for n in result.notes)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_drop": -0.5}, ConfigError, "max_drop must be >= 0"),
        ({"eval_data": None}, ConfigError, "search needs eval_data"),
        ({"objective": "speed"}, NotFoundError, "unknown search objective 'speed'"),
        ({"methods": ["distill"]}, ConfigError, "unknown methods"),
        ({"budget_s": 0}, ConfigError, "budget_s must be a positive"),
        ({"methods": ["static-int8"]}, ConfigError, "no compression method applies"),
        ({"eval_data": (torch.randn(8, 3), torch.zeros(8).long())}, ConfigError, "inputs of shape"),
    ],
)
def test_bad_input_is_a_clear_error(
    trained_mlp: nn.Module, split: Split, kwargs: dict[str, Any], error: type, match: str
) -> None:
    args = {"eval_data": split.test, **kwargs}
    with warnings.catch_warnings(), pytest.raises(error, match=match):
        warnings.simplefilter("ignore")  # static-int8 without calibration data also warns
        compress.search(trained_mlp, **args)
    assert issubclass(error, LeptonError)


def test_budget_too_small_for_one_candidate(trained_lenet: nn.Module, split: Split) -> None:
    with pytest.raises(ConfigError, match="too small for even one candidate"):
        compress.search(trained_lenet, eval_data=split.test, budget_s=1e-3,
                        methods=["dynamic-int8"], config=QUICK)  # fmt: skip


def test_quantize_skip_and_per_layer_prune_amounts_survive_save_load(
    trained_lenet: nn.Module, calib: torch.Tensor, tmp_path: Path
) -> None:
    x = calib[:8]
    pruned = compress.prune(trained_lenet, 0.5, structured=True, example_input=x[:1],
                            layer_amounts={"features.0": 0.2, "classifier.1": 0.8})  # fmt: skip
    # the named layers get their own amounts (the uniform 0.5 would leave 3 and 60)
    assert pruned.features[0].out_channels >= 4 and pruned.classifier[1].out_features <= 30
    for method in ("dynamic-int8", "static-int8", "weight-only-int8"):
        q = compress.quantize(pruned, method, calibration_data=calib, skip=["classifier.3"])
        kept = dict(q.named_modules())["classifier.3"]  # left in float, weights and all
        assert "quantized" not in type(kept).__module__, method
        assert all(type(p) is nn.Parameter for p in kept.parameters()), method
        path = compress.save(q, tmp_path / f"{method}.pt")
        with torch.no_grad():
            assert torch.equal(compress.load(path)(x), q(x)), method
    with pytest.raises(ConfigError, match="layer_amounts names unknown layers"):
        compress.prune(trained_lenet, 0.5, structured=True, example_input=x[:1],
                       layer_amounts={"nope": 0.5})  # fmt: skip
