"""A quantization method is registered once (register_quantizer) and every user of the method
registry sees it: quantize(), the explorer's menu (METHODS, make_variant) and compress.load."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from lepton_nb import compress
from lepton_nb.compress.methods import METHODS
from lepton_nb.errors import NotFoundError


def test_one_registration_reaches_quantize_variants_and_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setattr(METHODS, "_items", dict(METHODS._items))  # undone after the test
    calls: list[tuple[str, Any]] = []

    def apply(model: nn.Module, cfg: compress.QuantizeConfig, data: Any) -> nn.Module:
        calls.append(("apply", cfg.bits))
        return model  # weights unchanged: the test is about who finds the method

    def replay(net: nn.Module, step: dict[str, Any]) -> nn.Module:
        calls.append(("replay", step["bits"]))
        return net

    compress.register_quantizer("plain-intx", apply, replay, "bits", 2, 8, 6)
    assert "plain-intx" in compress.quantization_methods()
    assert METHODS.get("plain-intx").strength == "bits"

    model = nn.Sequential(nn.Linear(3, 2))
    q = compress.quantize(model, "plain-intx", bits=5)
    v = compress.make_variant(model, compress.Variant("plain-intx", 3))
    default = compress.make_variant(model, compress.Variant("plain-intx"))
    compress.save(q, tmp_path / "q.pt")
    back = compress.load(tmp_path / "q.pt", model=nn.Sequential(nn.Linear(3, 2)))
    assert calls == [("apply", 5), ("apply", 3), ("apply", 6), ("replay", 5)]
    x = torch.randn(4, 3)
    torch.testing.assert_close(back(x), model(x))
    assert v is not model and default is not model


def test_a_method_that_is_not_a_quantizer_is_refused() -> None:
    with pytest.raises(NotFoundError, match=r"quantization method 'prune-l1'.*'static-int8'"):
        compress.quantize(nn.Linear(2, 2), "prune-l1")
