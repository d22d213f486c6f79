"""Compression of models that live on a GPU, checked on CPU where the logic allows: device
mismatches named as such, torch.ao int8 moved to the CPU, synchronized latency clocks.  The
same paths on a real GPU are in tests/gpu/test_gpu_paths.py."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch
from torch import nn

from lepton_nb.compress import _data, quantize
from lepton_nb.errors import ConfigError

quantize_mod = importlib.import_module("lepton_nb.compress.quantize")  # the names are functions
report_mod = importlib.import_module("lepton_nb.compress.report")


def test_device_mismatch_is_not_called_a_shape_error() -> None:
    model = nn.Linear(4, 2, device="meta")
    with pytest.raises(ConfigError, match="eval data is on cpu but the model is on meta"):
        _data.forward_checked(model, torch.zeros(3, 4))
    with pytest.raises(ConfigError, match="inputs of shape \\(3, 5\\)"):
        _data.forward_checked(nn.Linear(4, 2), torch.zeros(3, 5))  # a real shape error still is


def test_ao_int8_moves_a_gpu_model_to_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    moved: list[str] = []
    real_cpu = nn.Module.cpu

    def spy_cpu(self: nn.Module) -> nn.Module:
        moved.append(type(self).__name__)
        return real_cpu(self)

    # pretend the (copied) model sits on cuda:0; torch.ao must then get a CPU model
    monkeypatch.setattr(quantize_mod, "model_device", lambda m: torch.device("cuda", 0))
    monkeypatch.setattr(nn.Module, "cpu", spy_cpu)
    model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    q = quantize(model, "dynamic-int8")
    assert moved == ["Sequential"]
    assert q(torch.zeros(1, 8)).shape == (1, 2)


def test_latency_is_timed_between_synchronizations(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    report_mod._synchronizer(torch.device("cuda", 1))()
    assert calls == [torch.device("cuda", 1)]
    report_mod._synchronizer(torch.device("cpu"))()
    assert len(calls) == 1  # nothing to wait for on CPU

    ticks: list[int] = []
    monkeypatch.setattr(report_mod, "_synchronizer", lambda device: lambda: ticks.append(1))
    cfg = report_mod.ReportConfig(warmup=2, runs=5)
    report_mod.latency_ms(nn.Linear(4, 2), torch.zeros(3, 4), cfg)
    assert len(ticks) == 2 * cfg.runs  # before and after every timed run
