"""Fixtures for the browser suite: one real `jupyter lab` and one headless Debian chromium.

The lab (random port, token, temporary root and LEPTON_HOME) serves every test of this
directory; each test gets a fresh page. Screenshots go to test-artifacts/browser/.
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


def write_notebook(path: Path, cells: list[tuple[str, str, list[str]]]) -> None:
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


@pytest.fixture(scope="session")
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
    write_notebook(
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
    write_notebook(root / "scratch.ipynb", [("code", "", [])])
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
            # sidebar clusters outlive a server by default (issue 15): not a test's
            "--LeptonSettings.stop_clusters_on_exit=True",
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
        # SIGINT lets the server stop the clusters it launched (atexit), then the group goes.
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
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


CURRENT_NB = ".jp-NotebookPanel:not(.lm-mod-hidden)"


class UI:
    """What the tests do to JupyterLab, in one place."""

    artifacts = ARTIFACTS
    current_nb = CURRENT_NB

    def __init__(self, page: Any) -> None:
        self.page = page

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    def open_sidebar(self) -> Any:
        page = self.page
        # Activate through the shell, not by clicking the tab: a click on a tab that is already
        # current collapses the left area (a toggle), and the tab's class can lag the layout.
        page.evaluate("() => { window.jupyterapp.shell.activateById('lepton-sidebar'); }")
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

    def open_notebook(self, path: str) -> None:
        # Return nothing from evaluate: the opened widget is not serialisable.
        self.page.evaluate(
            "async (path) => {"
            " await window.jupyterapp.commands.execute('docmanager:open', {path}); }",
            path,
        )
        self.page.wait_for_selector(f"{CURRENT_NB} .jp-Cell", state="visible")

    def run_cell(self, index: int) -> None:
        """Start cell ``index`` of the current notebook without waiting for it to finish."""
        self.page.evaluate(
            "async (i) => { const app = window.jupyterapp; const panel = app.shell.currentWidget;"
            " await panel.sessionContext.ready; panel.content.activeCellIndex = i;"
            " void app.commands.execute('notebook:run-cell'); }",
            index,
        )


@pytest.fixture
def ui(page: Any) -> UI:
    return UI(page)


@pytest.fixture
def notebook_writer() -> Any:
    return write_notebook
