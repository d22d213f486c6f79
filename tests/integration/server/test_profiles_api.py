"""GET lepton/api/profiles (the sidebar's Profile field) against a real Jupyter server, and a
profile-launched factory cluster through the clusters route."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import dask.config
import pytest

pytestmark = pytest.mark.integration

FACTORY = {
    "kind": "factory",
    "module": "distributed",
    "class": "LocalCluster",
    "description": "LocalCluster through the factory kind",
    "kwargs": {
        "n_workers": 1,
        "threads_per_worker": 1,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:0",
    },
}
SECRET = {
    "kind": "gateway",
    "address": "http://127.0.0.1:1",
    "auth": {"type": "basic", "password": "do-not-show"},
}


@pytest.fixture
def jp_server_config(tmp_home: Any) -> Iterator[dict[str, Any]]:
    with dask.config.set({"lepton.profiles.lc-factory": FACTORY, "lepton.profiles.hub": SECRET}):
        yield {"ServerApp": {"jpserver_extensions": {"lepton_nb": True}}}


async def test_profiles_listed_with_kind_and_launchable(jp_fetch: Any) -> None:
    r = await jp_fetch("lepton", "api", "profiles")
    rows = {p["name"]: p for p in json.loads(r.body)}
    assert rows["lc-factory"] == {
        "name": "lc-factory",
        "kind": "factory",
        "description": FACTORY["description"],
    }
    assert rows["hub"]["kind"] == "gateway" and rows["local-cpu"]["kind"] == "local"
    assert "do-not-show" not in r.body.decode()  # settings (credentials) never leave

    body = json.dumps({"profile": "lc-factory", "secure": False})
    r = await jp_fetch("lepton", "api", "clusters", method="POST", body=body, request_timeout=180)
    info = json.loads(r.body)
    try:
        assert info["kind"] == "factory" and info["status"] == "running"
    finally:
        await jp_fetch("lepton", "api", "clusters", info["id"], method="DELETE")
