"""The clusters routes against a real Jupyter server and real Dask clusters."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def jp_server_config(tmp_home: Any) -> dict[str, Any]:
    # sidebar clusters outlive the server by default: not those of a test
    return {
        "ServerApp": {"jpserver_extensions": {"lepton_nb": True}},
        "LeptonSettings": {"stop_clusters_on_exit": True},
    }


async def test_cluster_lifecycle(api: Any, jp_serverapp: Any) -> None:
    code, listed = await api("clusters")
    assert (code, listed) == (200, [])

    body = json.dumps({"n_workers": 1, "threads_per_worker": 1, "gpu": "off"})
    code, info = await api("clusters", method="POST", body=body)
    assert code == 201, info
    cid = info["id"]
    try:
        assert info["status"] == "running"
        # TLS by default (issue 11): the credentials live in the user's runtime dir
        assert info["scheduler_address"].startswith("tls://127.0.0.1:") and info["secure"]
        creds = info["credentials"]
        assert creds.startswith(str(jp_serverapp.runtime_dir))
        assert f"credentials={creds!r}" in info["connect_code"]
        assert info["n_workers"] == 1 and info["threads"] == 1 and info["gpus"] == 0
        assert info["memory"] > 0 and info["workers"][0]["address"].startswith("tls://127.0.0.1")
        assert info["dashboard_link"].startswith("http://127.0.0.1:")

        code, listed = await api("clusters")
        assert code == 200 and [c["id"] for c in listed] == [cid]

        code, scaled = await api("clusters", cid, method="PATCH", body=json.dumps({"n_workers": 2}))
        assert code == 200 and scaled["options"]["n_workers"] == 2
        manager = jp_serverapp.web_app.settings["lepton_clusters"]
        manager._entry(cid).cluster.wait_for_workers(2, timeout=60)
        code, got = await api("clusters", cid)
        assert code == 200 and got["n_workers"] == 2 and got["threads"] == 2

        adapt = json.dumps({"adapt": {"minimum": 1, "maximum": 2}})
        code, adapted = await api("clusters", cid, method="PATCH", body=adapt)
        assert code == 200 and adapted["options"]["adapt"] == {"minimum": 1, "maximum": 2}

        bad = json.dumps({"n_workers": 1, "adapt": {"minimum": 0, "maximum": 1}})
        code, err = await api("clusters", cid, method="PATCH", body=bad)
        assert code == 400 and err["error"] == "ConfigError" and "exactly one" in err["message"]
    finally:
        code, stopped = await api("clusters", cid, method="DELETE")
    assert code == 200 and stopped["status"] == "closed"
    code, err = await api("clusters", cid)
    assert code == 404 and err["error"] == "NotFoundError" and "traceback" not in err


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"n_workers": 0}), "n_workers"),
        (json.dumps({"gpu": "maybe"}), "gpu"),
        (json.dumps({"workers": 2}), "workers"),
    ],
)
async def test_launch_rejects_bad_bodies(api: Any, body: str, field: str) -> None:
    code, err = await api("clusters", method="POST", body=body)
    assert code == 400
    assert err["error"] == "ConfigError" and field in err["message"]
    assert "Traceback" not in json.dumps(err)


async def test_unknown_profile_is_a_400_with_known_names(api: Any) -> None:
    body = json.dumps({"profile": "no-such-profile", "gpu": "off"})
    code, err = await api("clusters", method="POST", body=body)
    assert code == 400 and "no-such-profile" in err["message"] and "local-cpu" in err["message"]


async def test_a_launch_that_fails_in_its_process_answers_its_error(
    api: Any, tmp_home: Any
) -> None:
    # no GPU here: the detached process reports GPUUnavailableError and leaves nothing behind
    code, err = await api("clusters", method="POST", body=json.dumps({"gpu": "on"}))
    assert code == 409 and err["error"] == "GPUUnavailableError", err
    assert "gpu='auto'" in err["message"]
    assert [p.name for p in (tmp_home / "clusters").iterdir()] == []  # no entry, report, log
    assert (await api("clusters"))[1] == []


async def test_unknown_cluster_ids(api: Any) -> None:
    for method, body in (("GET", None), ("PATCH", '{"n_workers": 1}'), ("DELETE", None)):
        code, err = await api("clusters", "deadbeef", method=method, body=body)
        assert code == 404, (method, err)
        assert "deadbeef" in err["message"] and set(err) == {"error", "message"}
