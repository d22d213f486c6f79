from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from lepton_nb import compress
from lepton_nb.compress.report import count_weights, serialized_bytes
from lepton_nb.datasets import Split
from lepton_nb.errors import ConfigError


def test_report_columns_and_ratios(trained_mlp: nn.Module, split: Split) -> None:
    q = compress.quantize(trained_mlp)
    table = compress.report({"fp32": trained_mlp, "int8": q}, split.test, runs=7, warmup=2)
    cols = {"params", "nonzero_params", "bytes", "latency_ms", "accuracy", "size_x",
            "params_x", "speedup", "accuracy_delta"}  # fmt: skip
    assert cols <= set(table.columns)
    assert list(table.index) == ["fp32", "int8"]
    ref = table.loc["fp32"]
    assert ref["size_x"] == 1.0 and ref["speedup"] == 1.0 and ref["accuracy_delta"] == 0.0
    row = table.loc["int8"]
    assert row["size_x"] == pytest.approx(ref["bytes"] / row["bytes"])
    assert row["speedup"] == pytest.approx(ref["latency_ms"] / row["latency_ms"])
    assert table.attrs["settings"]["runs"] == 7
    assert (table["latency_ms"] > 0).all()


def test_bytes_are_the_real_serialized_length(trained_lenet: nn.Module) -> None:
    buf = io.BytesIO()
    torch.save(trained_lenet.state_dict(), buf)
    assert serialized_bytes(trained_lenet) == len(buf.getvalue())


def test_counts_quantized_and_sparse_weights(trained_mlp: nn.Module) -> None:
    n = sum(p.numel() for p in trained_mlp.parameters())
    assert count_weights(compress.quantize(trained_mlp))[0] == n
    total, nonzero = count_weights(compress.prune(trained_mlp, amount=0.5, scope="global"))
    assert total == n and nonzero < 0.6 * n


def test_accepts_pairs_and_loaders(trained_mlp: nn.Module, split: Split) -> None:
    x, y = split.test.tensors
    a = compress.report({"m": trained_mlp}, (x, y), runs=3).loc["m", "accuracy"]
    loader = torch.utils.data.DataLoader(split.test, batch_size=100)
    b = compress.report({"m": trained_mlp}, loader, runs=3).loc["m", "accuracy"]
    assert a == b


def test_eval_data_of_wrong_shape(trained_lenet: nn.Module) -> None:
    bad = (torch.ones(8, 3, 10, 10), torch.zeros(8, dtype=torch.int64))
    with pytest.raises(ConfigError, match=r"shape \(8, 3, 10, 10\)"):
        compress.report({"m": trained_lenet}, bad)


def test_empty_models_and_unlabelled_data(trained_mlp: nn.Module) -> None:
    with pytest.raises(ConfigError, match="at least one model"):
        compress.report({}, (torch.ones(2, 784), torch.zeros(2, dtype=torch.int64)))
    with pytest.raises(ConfigError, match="no labels"):
        compress.report({"m": trained_mlp}, torch.ones(4, 784))


def test_html_has_formatted_ratios_and_settings(trained_mlp: nn.Module, split: Split) -> None:
    table = compress.report({"a": trained_mlp, "b": compress.quantize(trained_mlp)}, split.test,
                            runs=3)  # fmt: skip
    html = compress.to_html(table)
    assert "<table" in html and "x</td>" in html and "median of 3 runs" in html
