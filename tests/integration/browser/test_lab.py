"""The Lepton sidebar and the notebook widgets in a real JupyterLab, driven in headless chromium.

One `jupyter lab` subprocess (random port, token, temporary root and LEPTON_HOME) serves every
test of this module; screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    home: Path
    proc: subprocess.Popen[bytes]

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        req = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _notebook(path: Path, cells: list[tuple[str, str, list[str]]]) -> None:
    nb = nbformat.v4.new_notebook()
    for kind, source, tags in cells:
        cell = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(
            source
        )
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian chromium is missing at {CHROMIUM}: apt-get install -y chromium")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright (Python) is not installed: pip install playwright")
    from jupyter_core.paths import jupyter_path

    installed = [Path(d, "lepton-nb", "package.json") for d in jupyter_path("labextensions")]
    if not any(p.is_file() for p in installed):
        pytest.fail(
            "the lepton-nb labextension is not installed: build it (cd extension && npm install "
            "&& npm run build:prod) and run `jupyter labextension develop --overwrite .`"
        )
    base = tmp_path_factory.mktemp("lab")
    root, home, state = base / "root", base / "lepton-home", base / "state"
    for d in (root, home, state):
        d.mkdir()
    _notebook(
        root / "short.ipynb",
        [
            ("markdown", "# A short job", []),
            ("code", "n = 3\nlabel = 'demo'\ndelay = 0", ["parameters"]),
            (
                "code",
                "import time\nimport lepton_nb as ln\ntime.sleep(delay)\n"
                "answer = n * n\nln.record('answer', answer)\n"
                "print(f'answer={answer} label={label}')",
                [],
            ),
        ],
    )
    _notebook(root / "scratch.ipynb", [("code", "", [])])
    token, port = secrets.token_hex(16), _free_port()
    env = {
        **os.environ,
        "LEPTON_HOME": str(home),
        "JUPYTER_RUNTIME_DIR": str(state / "rt"),
        "PYTHONUNBUFFERED": "1",
    }
    log = (base / "lab.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={state / 'settings'}",
            f"--LabApp.workspaces_dir={state / 'ws'}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}api/status?token={token}", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"jupyter lab did not start; log:\n{(base / 'lab.log').read_text()}")
            time.sleep(0.5)
    try:
        yield Lab(url, token, root, home, proc)
    finally:
        # SIGTERM lets the server stop the clusters it launched (atexit), then the group goes.
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, lab: Lab, request: pytest.FixtureRequest) -> Iterator[Any]:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    context = browser.new_context(viewport={"width": 1500, "height": 950})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{lab.url}lab?reset&token={lab.token}")
    page.wait_for_selector("#jp-main-dock-panel", state="visible")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started")
    # JupyterLab asks once whether to fetch news; answer so the toast stays out of screenshots.
    news = page.locator(".jp-Notification-Toast-Close, .jp-toast-button:has-text('No')")
    try:
        news.first.click(timeout=5_000)
    except PlaywrightTimeout:
        pass
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-final.png"))
        context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def open_sidebar(page: Any) -> Any:
    tab = page.locator(".jp-SideBar .lm-TabBar-tab[data-id='lepton-sidebar']")
    if "lm-mod-current" not in (tab.get_attribute("class") or ""):
        tab.click()
    panel = page.wait_for_selector(".lepton-Sidebar", state="visible")
    # Widen the left area (once) so that screenshots show whole addresses.
    box = page.locator("#jp-left-stack").bounding_box()
    if box and box["width"] < 400:
        handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
        hb = handle.bounding_box()
        if hb:
            page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + 200)
            page.mouse.down()
            page.mouse.move(hb["x"] + 180, hb["y"] + 200, steps=5)
            page.mouse.up()
    return panel


CURRENT_NB = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def open_notebook(page: Any, path: str) -> None:
    # Return nothing from evaluate: the opened widget is not serialisable.
    page.evaluate(
        "async (path) => { await window.jupyterapp.commands.execute('docmanager:open', {path}); }",
        path,
    )
    page.wait_for_selector(f"{CURRENT_NB} .jp-Cell", state="visible")


def test_sidebar_launches_a_cluster_and_shows_its_workers(page: Any, lab: Lab) -> None:
    open_sidebar(page)
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
    assert address.startswith("tcp://127.0.0.1:")
    shot(page, "sidebar-cluster")

    # The server agrees with what the browser shows.
    clusters = lab.api("lepton/api/clusters")
    assert [c["scheduler_address"] for c in clusters] == [address]
    assert clusters[0]["n_workers"] == 2

    # Scale down from the card and watch the worker table follow.
    page.fill(".lepton-ClusterCard .lepton-scale-n", "1")
    page.click(".lepton-ClusterCard .lepton-scale")
    page.wait_for_function(
        "() => document.querySelectorAll('.lepton-ClusterCard .lepton-Worker').length === 1",
        timeout=60_000,
    )

    # "Insert connect code" writes a cell that attaches the notebook to this cluster.
    open_notebook(page, "scratch.ipynb")
    page.click(".lepton-ClusterCard .lepton-insert")
    page.wait_for_function(
        "([sel, addr]) => [...document.querySelectorAll(sel + ' .jp-Cell .jp-InputArea-editor')]"
        ".some(e => e.textContent.includes('ln.connect(\"' + addr + '\")'))",
        arg=[CURRENT_NB, address],
        timeout=30_000,
    )
    shot(page, "sidebar-cluster-connect-code")

    page.click(".lepton-ClusterCard .lepton-stop")
    page.wait_for_selector(".lepton-ClusterCard", state="detached", timeout=60_000)
    assert lab.api("lepton/api/clusters") == []


def test_run_as_job_succeeds_and_opens_its_output(page: Any, lab: Lab) -> None:
    open_notebook(page, "short.ipynb")
    button = page.wait_for_selector(f"{CURRENT_NB} .lepton-RunAsJobButton", state="visible")
    button.click()
    area = page.wait_for_selector(".lepton-RunJobDialog textarea.lepton-params")
    prefilled = json.loads(area.input_value())
    assert prefilled == {"n": 3, "label": "demo", "delay": 0}  # read from the `parameters` cell
    area.fill(json.dumps({"n": 7, "label": "browser"}))
    shot(page, "run-as-job-dialog")
    page.click(".jp-Dialog .jp-mod-accept")

    open_sidebar(page)
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
    shot(page, "sidebar-job-succeeded")

    page.click(".lepton-Job .lepton-open-output")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-OutputArea-output')]"
        ".some(o => o.textContent.includes('answer=49 label=browser'))",
        timeout=60_000,
    )
    shot(page, "job-output-notebook")
    jobs = lab.api("lepton/api/jobs")
    assert jobs[0]["status"] == "succeeded" and jobs[0]["parameters"] == {
        "n": 7,
        "label": "browser",
    }
    assert (lab.root / jobs[0]["output_path"]).is_file()

    # Rerun from the sidebar: a second record with the same parameters, and it succeeds too.
    open_sidebar(page)
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
    shot(page, "sidebar-job-cancelled")
    assert lab.api(f"lepton/api/jobs/{slow['id']}")["status"] == "cancelled"


# MLP epochs take a fraction of a second here: 15 of them keep the fit running for seconds,
# long enough to watch the curve grow.
_FIT_WITH_LN = """\
import torch
from lepton_nb import datasets, models
split = datasets.mnist()
train = split.train
result = ln.fit(models.MLP(), train, cluster=cluster, epochs=15, batch_size=64, callbacks=[curve])
print('fit done', len(result.history))
"""

# Until lepton_nb.train.fit exists: the same short MNIST fit as a plain torch loop.
_FIT_BY_HAND = """\
import time
import torch
from lepton_nb import datasets, models
torch.manual_seed(0)
split = datasets.mnist()
model = models.MLP()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loader = torch.utils.data.DataLoader(split.train, batch_size=64, shuffle=True)
for step, (x, y) in zip(range(60), loader):
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
    curve.update(step=step, loss=loss.item())
    time.sleep(0.1)
curve.close()
print('fit done', step + 1)
"""


def run_cell(page: Any, index: int) -> None:
    """Start cell ``index`` of the current notebook without waiting for it to finish."""
    page.evaluate(
        "async (i) => { const app = window.jupyterapp; const panel = app.shell.currentWidget;"
        " await panel.sessionContext.ready; panel.content.activeCellIndex = i;"
        " void app.commands.execute('notebook:run-cell'); }",
        index,
    )


def _points_js() -> str:
    # Points across all traces of the live plotly figures in the current notebook.
    return (
        "(sel) => [...document.querySelectorAll(sel + ' .js-plotly-plot')]"
        ".map(p => (p.data || []).reduce((n, t) => n + ((t.x && t.x.length) || 0), 0))"
        ".reduce((a, b) => Math.max(a, b), 0)"
    )


@pytest.mark.parametrize(
    "layout",
    [
        "display-and-fit-in-one-cell",
        pytest.param(
            "display-then-fit-in-next-cell",
            marks=pytest.mark.xfail(
                strict=True,
                reason="LossCurve finalizes itself at the end of the cell that displays it "
                "(post_run_cell runs before the frontend reports its view), so a fit in a "
                "later cell never reaches the live widget; see docs/extension.md",
            ),
        ),
    ],
)
def test_cluster_widget_and_loss_curve_render_live(page: Any, lab: Lab, layout: str) -> None:
    missing = [
        m
        for m in ("lepton_nb.widgets.cluster", "lepton_nb.widgets.loss_curve")
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        pytest.skip(f"widgets not written yet: {', '.join(missing)}")
    import lepton_nb.train

    fit_source = _FIT_WITH_LN if hasattr(lepton_nb.train, "fit") else _FIT_BY_HAND
    name = f"widgets-{layout}.ipynb"
    _notebook(
        lab.root / name,
        [
            (
                "code",
                "import lepton_nb as ln\ncluster = ln.launch_cluster(n_workers=2, "
                "threads_per_worker=1, gpu=False, dashboard_address='127.0.0.1:0')\n"
                "cluster.wait_for_workers(2)\nln.ClusterWidget(cluster)",
                [],
            ),
            *(
                [
                    (
                        "code",
                        "curve = ln.LossCurve(redraw_interval=0.2)\ndisplay(curve)\n" + fit_source,
                        [],
                    )
                ]
                if layout == "display-and-fit-in-one-cell"
                else [
                    ("code", "curve = ln.LossCurve(redraw_interval=0.2)\ncurve", []),
                    ("code", fit_source, []),
                ]
            ),
            ("code", "cluster.close()", []),
        ],
    )
    open_notebook(page, name)
    run_cell(page, 0)
    widget = page.wait_for_selector(f"{CURRENT_NB} .lepton-cluster-widget", timeout=120_000)
    page.wait_for_function(
        "(sel) => { const w = document.querySelector(sel + ' .lepton-cluster-widget');"
        " return w && w.textContent.includes('2 workers')"
        " && w.querySelectorAll('table tbody tr').length === 2; }",
        arg=CURRENT_NB,
        timeout=60_000,
    )
    assert "127.0.0.1" in widget.inner_text()

    # Sample the live curve while the fit runs: its point count must rise in several steps.
    for index in range(1, 4 if layout == "display-then-fit-in-next-cell" else 3):
        run_cell(page, index)
    page.wait_for_selector(f"{CURRENT_NB} .js-plotly-plot", timeout=120_000)
    samples: list[int] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        samples.append(int(page.evaluate(_points_js(), CURRENT_NB)))
        if samples[-1] > 0 and samples.count(samples[-1]) == 1 and len(set(samples)) == 3:
            shot(page, f"notebook-widgets-live-{layout}")  # mid-fit: the second non-zero count
        done = page.evaluate(
            "(sel) => [...document.querySelectorAll(sel + ' .jp-OutputArea-output')]"
            ".some(o => o.textContent.includes('fit done'))",
            CURRENT_NB,
        )
        if done:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the fit did not finish; point counts seen: {samples}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"loss-curve-points-{layout}.json").write_text(json.dumps(samples))
    rising = sorted(set(samples))
    assert len(rising) >= 3 and rising[-1] >= 20, samples
    first_nonzero = next(i for i, n in enumerate(samples) if n > 0)
    assert samples[-1] > samples[first_nonzero], samples
    page.wait_for_timeout(1000)
    shot(page, f"notebook-widgets-done-{layout}")
