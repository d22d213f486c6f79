"""Issue 15: a cluster launched from the sidebar is listed again after a restart and can be stopped.

Real ``jupyter server`` processes on one LEPTON_HOME and runtime dir: clusters launched through
the REST API, the server SIGKILLed, a new server started -> one cluster re-attached (connect
code works, it scales, DELETE stops it: its processes end, its ledger entry and credentials go)
and one orphaned (its process SIGSTOPped: alive, the scheduler silent), stoppable too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

pytestmark = pytest.mark.integration


def _kill_leftovers(home: Path) -> None:
    from lepton_nb.cluster._ledger import LedgerEntry

    for path in (home / "clusters").glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            for ref in LedgerEntry.model_validate_json(path.read_text()).processes:
                if ref.alive():
                    os.kill(ref.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("cluster-restart")
    try:
        yield base
    finally:  # whatever failed: no cluster process outlives the test
        _kill_leftovers(base / "home")


def _launch(server: Any) -> dict[str, Any]:
    r = server.request(
        "POST", "clusters", json={"n_workers": 1, "threads_per_worker": 1, "gpu": "off"}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _gone(pids: list[int]) -> bool:
    return not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)


def test_sidebar_clusters_survive_a_server_sigkill(base: Path, server_starter: Any) -> None:
    first = server_starter(base)
    try:
        with ThreadPoolExecutor(2) as pool:  # two launches at once: the server's pool has 4
            kept, frozen = pool.map(_launch, [first, first])
        assert kept["state"] == "running" and kept["origin"] == "server"
        assert len(kept["pids"]) == 2  # its process (scheduler, nanny) and the worker
    finally:
        first.proc.kill()  # SIGKILL: no chance to clean anything up
        first.proc.wait(30)
    assert all(psutil.pid_exists(p) for p in kept["pids"] + frozen["pids"])
    os.kill(frozen["pids"][0], signal.SIGSTOP)  # alive, but its scheduler answers no one

    second = server_starter(base)
    try:
        listed = {c["id"]: c for c in second.request("GET", "clusters").json()}
        assert set(listed) == {kept["id"], frozen["id"]}, listed
        back, orphan = listed[kept["id"]], listed[frozen["id"]]
        assert back["state"] == "re-attached" and back["n_workers"] == 1, back
        assert back["scheduler_address"] == kept["scheduler_address"]
        assert back["connect_code"] == kept["connect_code"]  # same credentials folder
        assert orphan["state"] == "orphaned" and orphan["pids"] == frozen["pids"], orphan

        # the connect code still attaches a notebook (here: this process) to it
        scope: dict[str, Any] = {}
        exec(back["connect_code"], scope)  # the code the sidebar inserts
        with scope["cluster"] as cluster:
            assert cluster.client.submit(sum, [40, 2]).result(timeout=60) == 42

        r = second.request("PATCH", f"clusters/{kept['id']}", json={"n_workers": 2})
        assert r.status_code == 200 and r.json()["options"]["n_workers"] == 2, r.text
        # recorded by the cluster's process: a later server shows what was asked last
        ledger = json.loads((second.home / "clusters" / f"{kept['id']}.json").read_text())
        assert ledger["options"]["n_workers"] == 2
        r = second.request("PATCH", f"clusters/{frozen['id']}", json={"n_workers": 2})
        assert r.status_code == 409 and "orphaned" in r.json()["message"]

        for c in (back, orphan):
            r = second.request("DELETE", f"clusters/{c['id']}")
            assert r.status_code == 200 and r.json()["status"] == "closed", r.text
        assert _gone(kept["pids"] + frozen["pids"])
        assert second.request("GET", "clusters").json() == []
        assert list((second.home / "clusters").glob("*.json")) == []
        assert not Path(kept["credentials"]).exists()
        assert not Path(frozen["credentials"]).exists()
    finally:
        second.stop()
