"""Every compress config round-trips through JSON with one shared to_dict/from_dict."""

from __future__ import annotations

import json

import pytest

from lepton_nb import compress
from lepton_nb.compress.distill import DistillConfig
from lepton_nb.compress.report import ReportConfig
from lepton_nb.errors import ConfigError

CONFIGS = [
    compress.QuantizeConfig(method="static-int8", skip=["fc1"], bits=3),
    compress.PruneConfig(),
    DistillConfig(),
    ReportConfig(runs=7),
    compress.SearchConfig(prune_amounts=(0.1, 0.2), max_skip=1),
    compress.Variant("prune-l1", 0.5),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: type(c).__name__)
def test_round_trip_through_json(cfg: object) -> None:
    d = json.loads(json.dumps(cfg.to_dict()))  # type: ignore[attr-defined]
    back = type(cfg).from_dict(d)  # type: ignore[attr-defined]
    assert back == cfg


def test_unknown_setting_is_named() -> None:
    with pytest.raises(ConfigError, match=r"unknown SearchConfig settings \['prune_amount'\]"):
        compress.SearchConfig.from_dict({"prune_amount": [0.5]})
