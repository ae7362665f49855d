"""The workbench in a real browser: JupyterLab on localhost, headless Chromium (Debian's
package) driven by Playwright. Opens notebooks/01_workbench.ipynb, runs all cells, drags the
yaw slider and waits for the preview to change; saves the page to docs/workbench.png.

Run with ``make test-browser`` (marked slow and browser, so ``make test`` leaves it out).
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "01_workbench.ipynb"
SCREENSHOT = ROOT / "docs" / "workbench.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_S = 90
NOTEBOOK_RUN_S = 300  # start-up (anny, Blender scene) and the first render, on 2 busy cores
PREVIEW_UPDATE_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer within {timeout} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def lab(tmp_path):
    """JupyterLab serving a copy of the workbench notebook (the repo's copy stays clean)."""
    pytest.importorskip("jupyterlab")
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    config = tmp_path / "config"
    (config / "labconfig").mkdir(parents=True)
    # No "would you like news?" prompt over the screenshot, and no fetching it.
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    log = open(tmp_path / "jupyter.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", "--ServerApp.ip=127.0.0.1",
         "--allow-root", f"--ServerApp.root_dir={root}", "--LabApp.extension_manager=readonly",
         f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", proc, SERVER_START_S)
        yield f"http://127.0.0.1:{port}", token, tmp_path
    finally:
        _stop(proc)
        log.close()


def _run_all_cells(page, tries: int = 3) -> None:
    """Run > Run All Cells, once the kernel is up; again if no cell started (a click that came
    while JupyterLab was still settling)."""
    for _ in range(tries):
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=SERVER_START_S * 1000)
        page.wait_for_timeout(2000)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-InputArea-prompt')]"
                ".some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))", timeout=30_000)
            return
        except Exception:  # playwright's TimeoutError
            page.keyboard.press("Escape")
    raise AssertionError("Run All Cells did not start the notebook")


def test_workbench_in_jupyterlab(lab):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install chromium (make test-browser does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[browser]'")
    base, token, tmp_path = lab
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM),
            headless=True, args=CHROMIUM_FLAGS, viewport={"width": 1440, "height": 1150})
        try:
            page = ctx.new_page()
            page.goto(f"{base}/doc/tree/{NOTEBOOK.name}?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=SERVER_START_S * 1000)
            _run_all_cells(page)

            preview = page.locator("img.rf-preview")
            preview.wait_for(state="visible", timeout=NOTEBOOK_RUN_S * 1000)
            page.wait_for_function("document.querySelector('img.rf-preview').naturalWidth > 0",
                                   timeout=PREVIEW_UPDATE_S * 1000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=NOTEBOOK_RUN_S * 1000)
            preview.scroll_into_view_if_needed()
            src_before, pixels_before = preview.get_attribute("src"), preview.screenshot()
            readout = page.locator(".rf-yaw .widget-readout")
            yaw_before = readout.inner_text()

            handle = page.locator(".rf-yaw .noUi-handle")
            box = handle.bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x + 30, y, steps=8)  # a drag: several value events, debounced
            page.mouse.up()
            released = time.perf_counter()
            page.wait_for_function(
                "src => document.querySelector('img.rf-preview').src !== src", arg=src_before,
                timeout=PREVIEW_UPDATE_S * 1000)
            latency = time.perf_counter() - released
            yaw_after = readout.inner_text()
            page.wait_for_function(
                "() => document.querySelector('img.rf-preview').complete", timeout=10_000)
            assert yaw_after != yaw_before
            assert preview.screenshot() != pixels_before
            labels = page.locator(".rf-workbench pre").first.inner_text()
            assert "pose (AFLW, deg)" in labels
            print(f"yaw {yaw_before} -> {yaw_after}; preview updated {latency:.2f} s after release")

            page.locator(".rf-workbench").scroll_into_view_if_needed()
            page.evaluate("document.querySelector('.rf-workbench').scrollIntoView({block: 'center'})")
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            print(f"page at the failure: {tmp_path / 'failure.png'}; server log: {tmp_path / 'jupyter.log'}")
            raise
        finally:
            ctx.close()
    assert SCREENSHOT.stat().st_size > 10_000
