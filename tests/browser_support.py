"""A real JupyterLab server and Debian's chromium (driven by Playwright) for the browser tests.

What works on a headless root machine is recorded in the project's browser-testing notes: JupyterLab
needs `--allow-root`; isolated config/runtime/data/settings/workspaces directories keep the user's state
out; a notification settings file removes the news toast (`lucidwidget lab` sets that default itself);
chromium is Debian's own (never `playwright install`), launched with a fresh profile and the flags below.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import nbformat
import pytest

SMALL_CNN = """\
import keras
import lucidwidget as lw

model = keras.Sequential([
    keras.Input((None, None, 3)),
    keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
    keras.layers.Conv2D(12, 3, padding="same", activation="relu", name="conv2"),
    keras.layers.Conv2D(12, 3, padding="same", activation="relu", name="conv3"),
])
"""
"""Notebook source of the browser tests' model: three small conv layers, any image size; ends with
`model` (add the cell's widget line after it)."""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
TOKEN = "lucidwidget-e2e-token"
SERVER_START_TIMEOUT = 60.0
"""Seconds for JupyterLab to answer /api/status (2-4 s on an idle 2-core machine)."""
PAGE_TIMEOUT_MS = 90_000
"""First load of the lab page plus a kernel start and TensorFlow import, on a busy 2-core machine."""


def require_chromium():
    """Skips without chromium, except in CI (CI=true), where a missing browser is a failure."""
    if os.path.exists(CHROMIUM):
        return
    message = f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_notebook(path, cells):
    """Writes a notebook of code cells (sources as strings) for the python3 kernel."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


class LabServer:
    """A running JupyterLab: its base URL (token in `TOKEN`) and the file its log goes to."""

    def __init__(self, url, log):
        self.url = url
        self.log = log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def jupyter_lab(root, *, through_lucidwidget=False):
    """Runs JupyterLab on 127.0.0.1 serving `root`; yields a `LabServer`.

    Config, runtime, data, settings and workspaces live in a fresh temporary folder, so nothing of the
    user's Jupyter state leaks in or is written. `through_lucidwidget` starts it the way users do,
    `lucidwidget lab --dir root` (which copies the shipped notebooks into `root` and sets JupyterLab's
    defaults itself); otherwise the notification settings file below stands in for the user's choice.
    """
    home = pathlib.Path(tempfile.mkdtemp(prefix="lucidwidget-lab-"))
    if not through_lucidwidget:
        settings = home / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
    port = free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    server_options = [
        "--ip=127.0.0.1", "--ServerApp.port_retries=0", "--allow-root", f"--IdentityProvider.token={TOKEN}",
        "--LabApp.expose_app_in_browser=True",
    ]
    if through_lucidwidget:
        command = [sys.executable, "-m", "lucidwidget", "lab", "--dir", str(root), "--no-browser",
                   "--port", str(port), *server_options]
    else:
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *server_options,
        ]
    log = open(home / "server.log", "wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(base_url, server, home / "server.log")
        yield LabServer(base_url, home / "server.log")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def _wait_for_server(base_url, server, log_path):
    request = urllib.request.Request(f"{base_url}/api/status", headers={"Authorization": f"token {TOKEN}"})
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited early:\n{log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"JupyterLab did not start in {SERVER_START_TIMEOUT} s:\n{log_path.read_text(errors='replace')}")


@contextlib.contextmanager
def playwright():
    """A Playwright session (sync API) to open chromium pages with (`fresh_page`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as session:
        yield session


@contextlib.contextmanager
def fresh_page(session):
    """A page in a new chromium with a fresh profile (no cache, storage or cookies), 1280x900."""
    profile = tempfile.mkdtemp(prefix="lucidwidget-chromium-")
    try:
        context = session.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            yield page
        finally:
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def browser(session):
    """One chromium (no profile of its own) whose `new_context()` gives fresh storage, cache and cookies,
    cheaper than a new browser: for tests that open a page again and again."""
    launched = session.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    try:
        yield launched
    finally:
        launched.close()


@contextlib.contextmanager
def new_context_page(launched):
    """A page in a new context of `launched` (see `browser`), 1280x900."""
    context = launched.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        yield page
    finally:
        context.close()


@contextlib.contextmanager
def chromium():
    """A fresh-profile chromium page in a Playwright session of its own."""
    with playwright() as session, fresh_page(session) as page:
        yield page


def open_notebook(page, base_url, name):
    """Opens a notebook in the lab (a fresh workspace) and waits until its kernel is idle."""
    page.goto(f"{base_url}/lab/tree/{name}?reset&token={TOKEN}")
    page.wait_for_function(
        """(name) => {
            const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const kernel = widget && widget.sessionContext && widget.sessionContext.session
                && widget.sessionContext.session.kernel;
            return kernel && kernel.status === "idle" && widget.context.isReady && widget.context.path === name;
        }""",
        arg=name,
        polling=100,
    )


def run_all(page):
    """Sends Run All to the open notebook without waiting for the cells; returns the page's clock in ms."""
    return page.evaluate(
        """() => {
            const sent = performance.now();
            window.jupyterapp.commands.execute('notebook:run-all-cells');
            return sent;
        }"""
    )


def open_and_run_notebook(page, base_url, name):
    """Opens a notebook in the lab, waits for an idle kernel, then runs all cells."""
    open_notebook(page, base_url, name)
    run_all(page)


# Records (page clock, ms) when the first widget appears in the page and when it first draws tiles, and
# every text its steps/s field shows, in order.
FIRST_TILE_PROBE = """() => {
    const times = { shown: null, tile: null, speeds: [] };
    const look = () => {
        const root = document.querySelector(".lw-root");
        if (root && times.shown === null) times.shown = performance.now();
        if (root && Number(root.dataset.frames || 0) >= 1 && times.tile === null) times.tile = performance.now();
        const speed = root && root.querySelector(".lw-speed").textContent;
        if (speed && speed !== times.speeds[times.speeds.length - 1]) times.speeds.push(speed);
    };
    new MutationObserver(look).observe(document.body, { subtree: true, childList: true, attributes: true });
    window.lucidFirstTile = times;
}"""


def run_all_until_first_tile(page) -> dict:
    """Runs all cells of the open notebook and waits until a widget draws its first tiles.

    Returns:
        Seconds from Run All until the widget appeared in the page (`shown`) and until its first tile
        image was drawn (`tile`), both measured by the page's own clock.
    """
    page.evaluate(FIRST_TILE_PROBE)
    sent = run_all(page)
    page.wait_for_function("() => window.lucidFirstTile.tile !== null", polling="raf")
    times = page.evaluate("() => window.lucidFirstTile")
    return {name: (times[name] - sent) / 1000 for name in ("shown", "tile")}


def speeds_shown(page) -> list:
    """The texts the widget's steps/s field showed since `run_all_until_first_tile`, in order."""
    return page.evaluate("() => window.lucidFirstTile.speeds")


def close_notebook(page):
    """Saves the open notebook (into the server's temporary root), shuts its kernel down and closes it."""
    page.evaluate(
        """async () => {
            const widget = window.jupyterapp.shell.currentWidget;
            await widget.context.save();
            await widget.sessionContext.shutdown();
            await window.jupyterapp.commands.execute("application:close-all");
        }"""
    )
