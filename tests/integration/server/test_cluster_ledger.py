"""Every cluster in one list: a cluster launched by a notebook's kernel shows in the server's
list with its notebook, can be stopped from there, and dead entries are pruned."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

pytestmark = pytest.mark.integration

KERNEL = """
import sys, time
import lepton_nb as ln

if __name__ == "__main__":
    cluster = ln.launch_cluster(n_workers=1, threads_per_worker=1, gpu=False,
                                dashboard_address="127.0.0.1:0")
    print(cluster.scheduler_address, flush=True)
    while not cluster.closed and cluster.client.status == "running":
        time.sleep(0.2)
"""


@pytest.fixture
def jp_server_config(tmp_home: Path) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"lepton_nb": True}}}


async def test_a_kernels_cluster_is_listed_and_stoppable(
    api: Any, tmp_home: Path, tmp_path: Path
) -> None:
    script = tmp_path / "kernel.py"
    script.write_text(KERNEL)
    env = {**os.environ, "LEPTON_HOME": str(tmp_home), "JPY_SESSION_NAME": "work/train.ipynb"}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        address = (await asyncio.to_thread(proc.stdout.readline)).decode().strip()
        assert address.startswith("tcp://127.0.0.1:"), address
        code, clusters = await api("clusters")
        assert code == 200 and len(clusters) == 1, clusters
        (c,) = clusters
        assert c["scheduler_address"] == address and c["owner"] == "work/train.ipynb"
        assert c["origin"] == "kernel" and c["pid"] == proc.pid and c["status"] == "running"
        code, err = await api(
            "clusters", c["id"], method="PATCH", body=json.dumps({"n_workers": 2})
        )
        assert code == 409 and "scale it from there" in err["message"]

        code, stopped = await api("clusters", c["id"], method="DELETE")
        assert code == 200 and stopped["status"] == "closed"
        await asyncio.to_thread(proc.wait, 60)  # its scheduler is gone: the "kernel" ends
        code, clusters = await api("clusters")
        assert clusters == []
        assert list((tmp_home / "clusters").glob("*.json")) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_a_kernels_tls_cluster_is_stopped_with_its_recorded_credentials(
    api: Any, tmp_home: Path, tmp_path: Path
) -> None:
    from lepton_nb.cluster._ledger import answers

    script = tmp_path / "kernel.py"
    script.write_text(KERNEL.replace("gpu=False,", "gpu=False, secure=True,"))
    runtime = tmp_path / "runtime"
    env = {
        **os.environ,
        "LEPTON_HOME": str(tmp_home),
        "JPY_SESSION_NAME": "tls.ipynb",
        "JUPYTER_RUNTIME_DIR": str(runtime),
    }
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        address = (await asyncio.to_thread(proc.stdout.readline)).decode().strip()
        assert address.startswith("tls://127.0.0.1:"), address
        _, (c,) = await api("clusters")
        creds = Path(c["credentials"])  # recorded by the kernel: 0700 in its runtime dir
        assert c["secure"] and creds.parent == runtime / "lepton-clusters"
        assert oct(creds.stat().st_mode & 0o777) == "0o700"

        hidden = creds.with_name("elsewhere")
        creds.rename(hidden)  # credentials gone: refused with why, the cluster untouched
        code, err = await api("clusters", c["id"], method="DELETE")
        assert code == 409 and "no TLS credentials" in err["message"], err
        assert proc.poll() is None
        hidden.rename(creds)

        code, stopped = await api("clusters", c["id"], method="DELETE")
        assert code == 200 and stopped["status"] == "closed", stopped
        for _ in range(100):  # the scheduler closes its port as it ends
            if not answers(address):
                break
            await asyncio.sleep(0.1)
        assert not answers(address) and not creds.exists()
        assert (await api("clusters"))[1] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_dead_entries_are_pruned(api: Any, tmp_home: Path, tmp_path: Path) -> None:
    from lepton_nb.cluster._ledger import LedgerEntry, ProcessRef

    folder = tmp_home / "clusters"
    folder.mkdir()
    # a kernel killed with its cluster: nothing listens at its address any more
    dead = LedgerEntry(scheduler_address="tcp://127.0.0.1:9", origin="kernel", owner="x.ipynb")
    # a sidebar cluster whose process ended (pid gone or reused: the start time differs)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    creds = tmp_path / "lepton-clusters" / "c1"
    creds.mkdir(parents=True)
    ended = LedgerEntry(
        scheduler_address="tls://127.0.0.1:9",
        origin="server",
        processes=[ProcessRef(pid=int(gone.stdout), started=1.0)],
        credentials=str(creds),
    )
    for e in (dead, ended):
        (folder / f"{e.id}.json").write_text(e.model_dump_json())
    (folder / "garbage.json").write_text("{not json")
    code, clusters = await api("clusters")
    assert (code, clusters) == (200, [])
    assert list(folder.glob("*.json")) == []
    assert not creds.exists()  # its credentials go with its entry
    code, _ = await api("clusters", dead.id)
    assert code == 404


async def _bokeh_message(ws: Any) -> list[Any]:
    """One bokeh protocol message: header, metadata and content (JSON text frames), then a
    (header, payload) pair of frames per buffer the header announces."""
    frames = []
    for _ in range(3):
        frame = await asyncio.wait_for(ws.read_message(), timeout=60)
        assert isinstance(frame, str), frame
        frames.append(json.loads(frame))
    for _ in range(2 * int(frames[0].get("num_buffers", 0))):
        assert await asyncio.wait_for(ws.read_message(), timeout=60) is not None
    return frames


async def test_dashboard_is_proxied_behind_the_servers_auth(
    jp_fetch: Any, api: Any, jp_ws_fetch: Any, tmp_home: Path, tmp_path: Path
) -> None:
    script = tmp_path / "kernel.py"
    script.write_text(KERNEL)
    env = {**os.environ, "LEPTON_HOME": str(tmp_home), "JPY_SESSION_NAME": "dash.ipynb"}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        await asyncio.to_thread(proc.stdout.readline)
        _, (c,) = await api("clusters")
        assert c["dashboard_proxy"] == f"lepton/dashboard/{c['id']}/status"
        r = await jp_fetch(*c["dashboard_proxy"].split("/"), request_timeout=60)
        assert r.code == 200 and b"bokeh" in r.body.lower()  # the dashboard's own page
        # served as the page it is, with its scripts allowed (not an API handler's JSON/CSP)
        assert r.headers["Content-Type"].startswith("text/html")
        assert "default-src 'none'" not in r.headers.get("Content-Security-Policy", "")
        status_page = r.body.decode()
        r = await jp_fetch(
            "lepton", "dashboard", c["id"], "info", "main", "workers.html", request_timeout=60
        )
        assert r.code == 200 and b"Worker" in r.body
        with pytest.raises(HTTPClientError) as e:  # no token, no dashboard
            await jp_fetch(*c["dashboard_proxy"].split("/"), headers={"Authorization": ""})
        assert e.value.code == 403
        with pytest.raises(HTTPClientError) as e:  # only clusters the server lists
            await jp_fetch("lepton", "dashboard", "nope", "status")
        assert e.value.code == 404

        # bokeh's live updates: the page's session token opens status/ws through the proxy
        token = re.search(r'"token":\s*"([^"]+)"', status_page)
        assert token is not None, status_page[:2000]
        ws_path = ("lepton", "dashboard", c["id"], "status", "ws")
        ws = await jp_ws_fetch(*ws_path, subprotocols=["bokeh", token.group(1)])
        try:
            assert ws.selected_subprotocol == "bokeh"
            ack = await _bokeh_message(ws)  # bokeh greets every new connection
            assert ack[0]["msgtype"] == "ACK", ack
            for frame in ({"msgid": "q1", "msgtype": "PULL-DOC-REQ"}, {}, {}):  # browser -> bokeh
                await ws.write_message(json.dumps(frame))
            seen: dict[str, list[Any]] = {}
            while not {"PULL-DOC-REPLY", "PATCH-DOC"} <= set(seen):  # a reply, live updates
                message = await _bokeh_message(ws)
                seen.setdefault(message[0]["msgtype"], message)
            reply = seen["PULL-DOC-REPLY"]
            assert reply[0]["reqid"] == "q1" and "doc" in reply[2]  # the plots' document
        finally:
            ws.close()
        for headers, code in (({"Authorization": ""}, 403), ({}, 404)):  # no token; not listed
            parts = ws_path if code == 403 else ("lepton", "dashboard", "nope", "status", "ws")
            with pytest.raises(HTTPClientError) as e:
                await jp_ws_fetch(*parts, headers=headers, subprotocols=["bokeh", "x"])
            assert e.value.code == code
    finally:
        proc.kill()
        proc.wait()
