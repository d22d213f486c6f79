"""jobs.sweep on the shared 2-worker cluster: every job recorded, failures isolated."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from lepton_nb import jobs
from lepton_nb.errors import ConfigError

pytestmark = pytest.mark.integration
MakeNB = Callable[..., Path]


def test_sweep_of_four_jobs_with_one_failing(
    tmp_home: Path, tmp_path: Path, cluster2: Any, make_nb: MakeNB
) -> None:
    nb = make_nb(
        "sweep.ipynb",
        "import os, random, lepton_nb as ln\n"
        "if x == 3:\n    raise RuntimeError('x=3 is the broken point')\n"
        "ln.record('square', x * x)\nln.record('pid', os.getpid())\n"
        "ln.record('draw', random.random())",
        params="x = 0\nlabel = 'a'",
    )
    df = jobs.sweep(
        nb,
        {"x": [1, 2, 3, 4], "label": ["b"]},
        cluster=cluster2,
        output_dir=tmp_path / "outs",
        progress=False,
    )

    assert list(df["x"]) == [1, 2, 3, 4] and set(df["label"]) == {"b"}
    assert list(df["status"]) == ["succeeded", "succeeded", "failed", "succeeded"]
    ok = df[df["status"] == "succeeded"]
    assert list(ok["square"]) == [1, 4, 16]
    assert "x=3 is the broken point" in df.loc[2, "error"] and "cell 1" in df.loc[2, "error"]
    assert ok["draw"].nunique() == 1  # one seed shared by the sweep

    stored = {r.id: r for r in jobs.list()}
    assert set(df["id"]) == set(stored)
    sweep_ids = {r.sweep_id for r in stored.values()}
    assert len(sweep_ids) == 1 and None not in sweep_ids
    for r in stored.values():
        assert r.output and Path(r.output).parent == tmp_path / "outs"
        nbformat.validate(nbformat.read(r.output, as_version=4))
        assert r.html and Path(r.html).exists()
    # the jobs ran inside the Dask worker processes, not in this one
    import os

    assert all(r.pid != os.getpid() for r in stored.values())
    assert {r.pid for r in stored.values()} <= set(cluster2.client.run(os.getpid).values())


def test_sweep_with_a_list_of_points_and_bad_points_rejected_up_front(
    tmp_home: Path, cluster2: Any, make_nb: MakeNB
) -> None:
    code = "import lepton_nb as ln\nln.record('y', a + b)"
    nb = make_nb("pts.ipynb", code, params="a = 0\nb = 0")
    with pytest.raises(ConfigError, match="'c'"):
        jobs.sweep(nb, [{"a": 1}, {"c": 2}], cluster=cluster2, progress=False)
    assert jobs.list() == []  # nothing was submitted
    df = jobs.sweep(nb, [{"a": 1, "b": 2}, {"a": 10}], cluster=cluster2.client, progress=False)
    assert list(df["y"]) == [3, 10] and list(df["status"]) == ["succeeded", "succeeded"]
