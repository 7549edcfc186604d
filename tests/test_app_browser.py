"""The web app in a real browser: headless Chromium (Debian's, /usr/bin/chromium, which `make test`
installs) driven by playwright loads the page, runs a structure prediction with both shipped models
and finds the 3D views (plotly's WebGL scenes) and the results tables in the DOM; a bad composition
then gets its message on the page and a screenshot is saved under the test's tmp dir.

``HFMAT_APP_SCREENSHOT=docs/images/app.png`` also writes the screenshot there (how the README's
picture is made)."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CHROMIUM = Path("/usr/bin/chromium")
#: Flags that work for a headless Chromium in a container: no sandbox, GPU, QUIC or background traffic.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-unsafe-swiftshader",  # WebGL in software, for plotly's 3D scene
]

pytestmark = [
    pytest.mark.slow,  # a server, a browser and the models' first calls: ~50 s
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing: `apt-get install chromium` (make test does, as root)",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    from hfmat.app import build_app

    demo = build_app()
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    yield url
    demo.close()


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # a fresh profile folder (playwright passes it as --user-data-dir)
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def test_structure_prediction_in_the_browser(app_url, page, tmp_path):
    page.set_default_timeout(50_000)
    page.goto(app_url)
    page.locator("#csp-samples input").fill("2")
    page.locator("#csp-steps input").fill("20")
    page.locator("#predict").click()
    for key in ("lm", "diffusion"):
        page.locator(f"#{key}-view .js-plotly-plot").wait_for()
        # the WebGL scene rendered: plotly draws it on a canvas (it shows a notice instead without WebGL)
        assert page.locator(f"#{key}-view .gl-container canvas").count() >= 1
        assert "Sr1Ti1O3" in page.locator(f"#{key}-table").inner_text()
        checks = page.locator(f"#{key}-checks").inner_text()
        assert "formula_consistency" in checks and "structural" in checks
    command = page.locator("#csp-command").inner_text()
    assert "hfmat generate --model cif-gpt2-perov5 --composition SrTiO3 -n 2 --seed 0" in command
    # another sample from the menu: its view, checks and CIF replace the first one's
    assert "cif-gpt2-perov5_0000_Sr1Ti1O3" in page.locator("#lm-cif").inner_text()
    page.locator("#lm-pick input").click()
    page.get_by_role("option", name="#1 ").click()
    page.locator("#lm-cif").get_by_text("cif-gpt2-perov5_0001_Sr1Ti1O3").wait_for()
    shot = tmp_path / "app.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("HFMAT_APP_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["HFMAT_APP_SCREENSHOT"])

    # bad input: the library's message on the page, and the app still answers
    page.locator("#composition textarea, #composition input").first.fill("Xx2")
    page.locator("#predict").click()
    page.get_by_text("unknown element 'Xx'").first.wait_for()
