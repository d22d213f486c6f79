"""Every tutorial notebook, executed through lepton_nb.jobs.run with its CI parameters.

The notebooks run once per session (through ``run_tutorials``, which calls ``jobs.run`` for each
and writes the HTML index); each test then asserts one notebook's recorded results against the
thresholds of its issue.  Set ``LEPTON_TUTORIALS`` (e.g. ``00,05``) to run a subset.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from lepton_nb.tutorials import TUTORIALS, run_tutorials

pytestmark = pytest.mark.integration

_SELECTED = [n.strip() for n in os.environ.get("LEPTON_TUTORIALS", "").split(",") if n.strip()]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """{"index": Path, "results": {name: row of index.json}}."""
    base = tmp_path_factory.mktemp("tutorials")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEPTON_HOME", str(base / "home"))  # notebook 04's own jobs land here too
        index = run_tutorials(base / "out", names=_SELECTED or None, quick=True, timeout=600)
    rows = json.loads(index.with_name("index.json").read_text(encoding="utf-8"))
    yield {"index": index, "results": {r["name"]: r for r in rows}}


def _result(ran: dict[str, Any], name: str) -> dict[str, Any]:
    if _SELECTED and name not in _SELECTED:
        pytest.skip(f"LEPTON_TUTORIALS={','.join(_SELECTED)} leaves out tutorial {name}")
    row = ran["results"][name]
    assert row["status"] == "succeeded", f"{name}: {row['status']}: {row['error']}"
    nb = nbformat.read(row["output"], as_version=4)  # the executed notebook is valid
    assert nb.cells and Path(row["html"]).is_file()
    print(f"tutorial {name}: {row['duration_s']:.1f} s, records {row['records']}")
    return dict(row["records"])


def test_00_mlp_reaches_90_percent(ran: dict[str, Any]) -> None:
    r = _result(ran, "00")
    assert r["test_accuracy"] >= 0.90
    assert r["world_size"] == 2 and r["parameters"] == 784 * 128 + 128 + 128 * 10 + 10


def test_01_quickstart_whole_path(ran: dict[str, Any]) -> None:
    r = _result(ran, "01")
    assert r["workers"] == 2
    assert r["lenet_accuracy"] >= 0.95
    assert r["int8_size_x"] >= 3.5 and r["int8_accuracy_delta"] >= -1.0
    assert r["pruned_params_x"] >= 1.8


def test_02_strategies_and_recovery(ran: dict[str, Any]) -> None:
    r = _result(ran, "02")
    for key in ("ddp_accuracy", "ps_sync_accuracy", "ps_async_accuracy"):
        assert r[key] >= 0.85, key
    assert r["restarts"] >= 1  # the killed worker really forced a restart
    assert r["recovered_accuracy"] >= 0.85
    # elastic: the second worker joined mid-run, the world grew without a restart
    assert r["world_changes"] >= 1 and r["elastic_restarts"] == 0
    assert r["elastic_world_size"] == 2 and r["elastic_accuracy"] >= 0.85
    assert r["precision"] in ("fp32", "bf16", "fp16")


def test_03_compression_ratios(ran: dict[str, Any]) -> None:
    r = _result(ran, "03")
    assert r["mlp_int8_size_x"] >= 3.5 and r["mlp_int8_accuracy_delta"] >= -0.5
    assert r["lenet_static_int8_size_x"] >= 3.5 and r["lenet_static_int8_accuracy_delta"] >= -1.0
    assert r["unstructured_size_x"] < 1.1  # zeros are still stored: no smaller file
    assert r["structured_params_x"] >= 1.8 and r["structured_accuracy_delta"] >= -1.0
    assert r["distill_params_x"] >= 5
    assert r["student_distilled_accuracy"] >= r["student_scratch_accuracy"]
    assert r["distill_gap_points"] <= 2.0  # within 2 points of the teacher
    assert r["explorer_variants"] == 5 and r["save_load_identical"] is True
    assert r["search_met_budget"] is True and r["search_drop_points"] <= 1.0
    assert r["search_candidates"] >= 3


def test_04_jobs_sweep_compare_rerun(ran: dict[str, Any]) -> None:
    r = _result(ran, "04")
    assert r["job_status"] == "succeeded" and r["job_accuracy"] >= 0.8
    assert r["sweep_jobs"] == r["sweep_succeeded"] == 2  # quick grid: 2 learning rates
    assert r["rerun_identical"] is True


def test_05_gpt_validation_loss_falls_30_percent(ran: dict[str, Any]) -> None:
    r = _result(ran, "05")
    assert r["val_loss_after"] <= 0.7 * r["val_loss_before"]
    assert r["val_loss_drop"] >= 0.30


def test_06_keras_mlp_on_two_workers(ran: dict[str, Any]) -> None:
    if importlib.util.find_spec("tf_keras") is None:  # find, not import: TF takes seconds
        pytest.skip("needs the tf extra: pip install 'lepton-nb[tf]'")
    r = _result(ran, "06")
    assert r["test_accuracy"] >= 0.90
    assert r["ranks_reporting"] == r["world_size"] == 2
    assert r["parameters"] == 784 * 128 + 128 + 128 * 10 + 10


def test_index_lists_every_tutorial_with_links(ran: dict[str, Any]) -> None:
    page = ran["index"].read_text(encoding="utf-8")
    for name, row in ran["results"].items():
        tut = TUTORIALS.get(name)
        assert tut.title in page
        assert f"href='{Path(row['output']).name}'" in page
        assert row["ok"], (name, row["checks"], row["error"])
