"""The Lepton sidebar in a real JupyterLab: clusters and jobs, end to end in chromium."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_sidebar_launches_a_cluster_and_shows_its_workers(page: Any, ui: Any, lab: Any) -> None:
    ui.open_sidebar()
    page.fill(".lepton-LaunchForm .lepton-workers", "2")
    page.fill(".lepton-LaunchForm .lepton-threads", "1")
    page.select_option(".lepton-LaunchForm .lepton-gpu", "off")
    page.click(".lepton-LaunchForm .lepton-launch")
    page.wait_for_function(
        "() => document.querySelectorAll('.lepton-ClusterCard .lepton-Worker').length === 2",
        timeout=120_000,
    )
    card = page.locator(".lepton-ClusterCard").first
    assert "2 workers" in card.inner_text()
    address = card.locator(".lepton-ClusterCard-address").inner_text()
    assert address.startswith("tls://127.0.0.1:")  # TLS by default (issue 11)
    ui.shot("sidebar-cluster")

    # The server agrees with what the browser shows.
    clusters = lab.api("lepton/api/clusters")
    assert [c["scheduler_address"] for c in clusters] == [address]
    assert clusters[0]["n_workers"] == 2

    # "Dashboard" opens the Dask dashboard through the server; bokeh's live plots get their
    # websocket through the proxy too (issue 15): frames arrive on a proxied socket.
    sockets: list[str] = []
    frames: list[Any] = []

    def watch(ws: Any) -> None:
        sockets.append(ws.url)
        ws.on("framereceived", lambda payload: frames.append(payload))

    page.context.on("page", lambda p: p.on("websocket", watch))  # before it can connect
    with page.context.expect_page() as opened:
        page.click(".lepton-ClusterCard .lepton-dashboard")
    dash = opened.value
    for _ in range(300):  # ACK, the document, then live patches: well over 6 frames
        if len(frames) >= 6:
            break
        dash.wait_for_timeout(200)
    assert sockets and all("/lepton/dashboard/" in url for url in sockets), sockets
    assert len(frames) >= 6, frames
    dash.close()

    # Scale down from the card and watch the worker table follow.
    page.fill(".lepton-ClusterCard .lepton-scale-n", "1")
    page.click(".lepton-ClusterCard .lepton-scale")
    page.wait_for_function(
        "() => document.querySelectorAll('.lepton-ClusterCard .lepton-Worker').length === 1",
        timeout=60_000,
    )

    # "Insert connect code" writes a cell that attaches the notebook to this cluster, with the
    # TLS credentials folder the server wrote.
    creds = clusters[0]["credentials"]
    ui.open_notebook("scratch.ipynb")
    page.click(".lepton-ClusterCard .lepton-insert")
    page.wait_for_function(
        "([sel, code]) => [...document.querySelectorAll(sel + ' .jp-Cell .jp-InputArea-editor')]"
        ".some(e => e.textContent.includes(code))",
        arg=[ui.current_nb, f'ln.connect("{address}", credentials="{creds}")'],
        timeout=30_000,
    )
    page.wait_for_timeout(500)  # let the notebook finish painting for the screenshot
    ui.shot("sidebar-cluster-connect-code")

    page.click(".lepton-ClusterCard .lepton-stop")
    page.wait_for_selector(".lepton-ClusterCard", state="detached", timeout=60_000)
    assert lab.api("lepton/api/clusters") == []


def test_run_as_job_succeeds_and_opens_its_output(page: Any, ui: Any, lab: Any) -> None:
    ui.open_notebook("short.ipynb")
    button = page.wait_for_selector(f"{ui.current_nb} .lepton-RunAsJobButton", state="visible")
    button.click()
    area = page.wait_for_selector(".lepton-RunJobDialog textarea.lepton-params")
    prefilled = json.loads(area.input_value())
    assert prefilled == {"n": 3, "label": "demo", "delay": 0}  # read from the `parameters` cell
    area.fill(json.dumps({"n": 7, "label": "browser"}))
    ui.shot("run-as-job-dialog")
    page.click(".jp-Dialog .jp-mod-accept")

    ui.open_sidebar()
    status = page.locator(".lepton-Job .lepton-Job-status").first
    page.wait_for_function(
        "() => { const s = document.querySelector('.lepton-Job .lepton-Job-status');"
        " return s && ['succeeded', 'failed', 'cancelled', 'lost'].includes(s.textContent); }",
        timeout=240_000,
    )
    job_text = page.locator(".lepton-Job").first.inner_text()
    assert status.inner_text() == "succeeded", job_text
    assert "n=7" in job_text and 'label="browser"' in job_text
    assert "answer=49" in job_text  # the value the notebook recorded
    ui.shot("sidebar-job-succeeded")

    page.click(".lepton-Job .lepton-open-output")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-OutputArea-output')]"
        ".some(o => o.textContent.includes('answer=49 label=browser'))",
        timeout=60_000,
    )
    ui.shot("job-output-notebook")
    jobs = lab.api("lepton/api/jobs")
    assert jobs[0]["status"] == "succeeded" and jobs[0]["parameters"] == {
        "n": 7,
        "label": "browser",
    }
    assert (lab.root / jobs[0]["output_path"]).is_file()

    # Rerun from the sidebar: a second record with the same parameters, and it succeeds too.
    ui.open_sidebar()
    page.click(f".lepton-Job[data-job-id='{jobs[0]['id']}'] .lepton-rerun")
    page.wait_for_function(
        "() => { const s = [...document.querySelectorAll('.lepton-Job .lepton-Job-status')];"
        " return s.length === 2 && s.every(e => e.textContent === 'succeeded'); }",
        timeout=240_000,
    )
    jobs = lab.api("lepton/api/jobs")
    assert jobs[0]["parameters"] == jobs[1]["parameters"] and jobs[0]["seed"] == jobs[1]["seed"]

    # Cancel a long job from the sidebar.
    slow = lab.api(
        "lepton/api/jobs", "POST", {"notebook": "short.ipynb", "parameters": {"delay": 120}}
    )
    row = f".lepton-Job[data-job-id='{slow['id']}']"
    page.wait_for_selector(f"{row} .lepton-cancel", timeout=60_000)
    page.wait_for_function(
        "(row) => document.querySelector(row + ' .lepton-Job-status')?.textContent === 'running'",
        arg=row,
        timeout=120_000,
    )
    page.click(f"{row} .lepton-cancel")
    page.wait_for_function(
        "(row) => document.querySelector(row + ' .lepton-Job-status')?.textContent === 'cancelled'",
        arg=row,
        timeout=60_000,
    )
    ui.shot("sidebar-job-cancelled")
    assert lab.api(f"lepton/api/jobs/{slow['id']}")["status"] == "cancelled"
