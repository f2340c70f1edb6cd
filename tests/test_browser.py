"""A real browser: JupyterLab on the course, a notebook run in headless Chromium, a slider
moved, the figure redrawn.

Select it alone with ``pytest -m browser``. It needs Debian's ``chromium`` and
``chromium-driver`` (``make test`` installs them when it runs as root with apt) and the
Python package ``selenium``; where they are missing it fails under CI=true and otherwise
skips, loudly. A screenshot is left in .test-output/browser/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOTS = REPO / ".test-output" / "browser"
FIXTURE = REPO / "tests" / "fixtures" / "widget_fixture.ipynb"


def missing(reason: str) -> None:
    """Fail in CI, skip loudly elsewhere."""
    message = f"BROWSER TEST NOT RUN: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    print(f"\n*** {message} ***", file=sys.stderr)
    pytest.skip(message)


def widget_notebook() -> Path:
    """The real 03 (optimizer explorer) or 07 (attention explorer) when present, else a fixture."""
    for number in ("03", "07"):
        for path in sorted((REPO / "notebooks").glob(f"{number}_*.ipynb")):
            nb = nbformat.read(str(path), as_version=4)
            if any("explorer(" in c.source for c in nb.cells if c.cell_type == "code"):
                return path
    return FIXTURE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on a scratch copy of the course (the browser's autosave never touches the
    repository), token auth, loopback only, fresh config; yields (url, notebook name)."""
    notebook = widget_notebook()
    course = tmp_path / "course"
    shutil.copytree(REPO / "notebooks", course / "notebooks", ignore=shutil.ignore_patterns(".*"))
    shutil.copy(notebook, course / "notebooks" / notebook.name)
    port, token = free_port(), os.urandom(12).hex()
    env = {**os.environ, "BERTLAB_PROFILE": "ci", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
         f"--port={port}", "--port-retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={course}", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    log.flush()
                    pytest.fail("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-2000:])
                time.sleep(0.5)
        yield f"{base}/lab/tree/notebooks/{notebook.name}?token={token}", notebook.stem
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture
def browser(tmp_path):
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            missing(f"{path} is missing; install Debian's chromium and chromium-driver "
                    "(apt-get install -y chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("the Python package selenium is not installed in this environment")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition, timeout: float, what: str, driver=None, shot: str = ""):
    """Poll `condition()` until it returns something truthy; on timeout save a screenshot."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = condition()
        except Exception:  # the page is still changing under us
            value = None
        if value:
            return value
        time.sleep(0.5)
    if driver is not None and shot:
        SHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SHOTS / f"{shot}-timeout.png"))
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


# The first cell whose output holds a slider: its first slider's handle, and the figure
# (an <img> in the same cell's output) as its pixels, drawn to a canvas.
FIND = """
const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
const cell = cells.find(c => c.querySelector('.jp-OutputArea .widget-slider .noUi-handle'));
if (!cell) return null;
const img = cell.querySelector('.jp-OutputArea img');
if (!img || !img.complete || !img.naturalWidth) return [cell.querySelector('.widget-slider .noUi-handle'), null];
// The pixels, not the src: an Image widget's src is a fresh blob: URL for every value.
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
canvas.getContext('2d').drawImage(img, 0, 0);
return [cell.querySelector('.widget-slider .noUi-handle'), canvas.toDataURL('image/png')];
"""


def test_slider_redraws_the_figure_in_jupyterlab(browser, lab):  # browser first: skip before starting a lab
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, name = lab
    browser.get(url)
    wait_for(lambda: browser.execute_script(
        "return document.querySelector('.jp-Notebook .jp-Cell') !== null"
        " && /\\| Idle/.test(document.body.innerText)"), 120, "the notebook and an idle kernel",
        browser, name)

    # Run > Run All Cells, from the menu as a learner would.
    run_menu = next(e for e in browser.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
                    if e.text.strip() == "Run")
    run_menu.click()
    wait_for(lambda: next(e for e in browser.find_elements(By.CSS_SELECTOR, ".lm-Menu-itemLabel")
                          if e.text.strip() == "Run All Cells"), 10, "the Run menu", browser, name).click()
    for button in browser.find_elements(By.CSS_SELECTOR, ".Toastify button"):
        if button.text.strip() == "No":  # "notified about Jupyter news?": no, and out of the way
            button.click()

    handle, before = wait_for(lambda: (found := browser.execute_script(FIND)) and found[1] and found,
                              180, "the widget and its first figure", browser, name)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", handle)
    time.sleep(0.5)
    ActionChains(browser).click_and_hold(handle).move_by_offset(40, 0).release().perform()
    try:
        after = wait_for(lambda: (src := browser.execute_script(FIND)[1]) and src != before and src,
                         30, "the figure to change after dragging the slider")
    except pytest.fail.Exception:  # some sliders only move by keyboard in headless mode
        handle.send_keys(Keys.ARROW_RIGHT * 5)
        after = wait_for(lambda: (src := browser.execute_script(FIND)[1]) and src != before and src,
                         60, "the figure to change after moving the slider", browser, name)
    assert after.startswith("data:image/png;base64,") and after != before

    browser.execute_script(  # the controls and the figure in view for the screenshot
        "arguments[0].closest('.jp-OutputArea').scrollIntoView({block: 'start'});", handle)
    time.sleep(1)
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / f"{name}-timeout.png").unlink(missing_ok=True)
    shot = SHOTS / f"{name}.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
