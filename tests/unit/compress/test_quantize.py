from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lepton_nb import compress
from lepton_nb.datasets import Split
from lepton_nb.errors import CompressionError, ConfigError, LeptonError, NotFoundError


def test_dynamic_int8_mlp_meets_issue_thresholds(trained_mlp: nn.Module, split: Split) -> None:
    q = compress.quantize(trained_mlp, method="dynamic-int8")
    table = compress.report({"fp32": trained_mlp, "int8": q}, split.test, runs=10)
    assert table.loc["int8", "size_x"] >= 3.5
    assert table.loc["int8", "accuracy_delta"] >= -0.5
    assert table.loc["fp32", "accuracy"] > 0.9
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in q.modules())


def test_static_int8_lenet_meets_issue_thresholds(
    trained_lenet: nn.Module, split: Split, calib: torch.Tensor
) -> None:
    q = compress.quantize(trained_lenet, method="static-int8", calibration_data=calib)
    table = compress.report({"fp32": trained_lenet, "int8": q}, split.test, runs=10)
    assert table.loc["int8", "size_x"] >= 3.5
    assert table.loc["int8", "accuracy_delta"] >= -1.0
    assert table.loc["fp32", "accuracy"] > 0.95


def test_weight_only_int8_shrinks_linear_weights(trained_mlp: nn.Module, split: Split) -> None:
    q = compress.quantize(trained_mlp, method="weight-only-int8")
    table = compress.report({"fp32": trained_mlp, "w8": q}, split.test, runs=5)
    assert table.loc["w8", "size_x"] > 3.0
    assert table.loc["w8", "accuracy_delta"] >= -1.0


def test_quantize_leaves_the_original_untouched(trained_mlp: nn.Module) -> None:
    before = {k: v.clone() for k, v in trained_mlp.state_dict().items()}
    compress.quantize(trained_mlp, method="dynamic-int8")
    after = trained_mlp.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert isinstance(trained_mlp[1], nn.Linear)


def test_nothing_to_quantize_is_an_explicit_error() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    with pytest.raises(CompressionError, match="nothing to compress"):
        compress.quantize(model, method="dynamic-int8")
    with pytest.raises(CompressionError, match="nothing to compress"):
        compress.quantize(nn.Sequential(nn.ReLU()), "static-int8", calibration_data=torch.ones(2))


def test_static_without_calibration_data_says_how_to_fix(trained_lenet: nn.Module) -> None:
    with pytest.raises(ConfigError, match="calibration_data"):
        compress.quantize(trained_lenet, method="static-int8")


def test_calibration_data_of_wrong_shape(trained_lenet: nn.Module) -> None:
    with pytest.raises(ConfigError, match=r"shape \(4, 3, 5, 5\)"):
        compress.quantize(trained_lenet, "static-int8", calibration_data=torch.ones(4, 3, 5, 5))


def test_unknown_method_lists_the_known_ones(trained_mlp: nn.Module) -> None:
    with pytest.raises(NotFoundError, match=r"dynamic-int8.*static-int8.*weight-only-int8"):
        compress.quantize(trained_mlp, method="int3")
    assert issubclass(NotFoundError, LeptonError)


def test_config_round_trips() -> None:
    cfg = compress.QuantizeConfig(method="static-int8", per_channel=True)
    assert compress.QuantizeConfig.from_dict(cfg.to_dict()) == cfg


def test_deprecations_hidden_from_users_unless_asked(
    trained_mlp: nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEPTON_SHOW_DEPRECATIONS", raising=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        compress.quantize(trained_mlp, method="dynamic-int8")
    assert not [w for w in seen if issubclass(w.category, DeprecationWarning)]
    monkeypatch.setenv("LEPTON_SHOW_DEPRECATIONS", "1")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        compress.quantize(trained_mlp, method="dynamic-int8")
    assert any("deprecated" in str(w.message) for w in seen)


def test_weight_only_intx_trades_accuracy_for_bits(trained_mlp: nn.Module, split: Split) -> None:
    models = {f"int{b}": compress.quantize(trained_mlp, "weight-only-intx", bits=b)
              for b in (8, 2)}  # fmt: skip
    table = compress.report({"fp32": trained_mlp, **models}, split.test, runs=3)
    assert table.loc["int8", "accuracy_delta"] >= -0.5
    assert table.loc["int2", "accuracy"] < table.loc["int8", "accuracy"] - 0.02
    assert table.loc["int2", "size_x"] > 3.0  # stored unpacked in int8 containers on CPU
    with pytest.raises(ConfigError, match="bits must be between 1 and 8"):
        compress.quantize(trained_mlp, "weight-only-intx", bits=12)
