"""The status page in a real browser: Debian's Chromium, headless, driven by Selenium through chromedriver."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.app import App
from tests.bench.test_ocpp16_core import TAG, script
from tests.bench.test_status_api import served  # noqa: F401  (the fixture)

CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    not (CHROMEDRIVER and CHROMIUM),
    reason="no browser: apt-get install chromium chromium-driver (the README's test command does where it can)")


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="evse-chromium-")
    # Headless, and nothing that reaches out of this machine (its network is closed).
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--window-size=1280,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


async def _until(driver: Any, check: Callable[[Any], Any], what: str, timeout: float = 10.0) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def wait() -> Any:
        # The page redraws the connector cards on every status: an element found may be replaced before it is read.
        return WebDriverWait(driver, timeout, ignored_exceptions=[StaleElementReferenceException]).until(
            check, message=f"the page never showed {what}")

    return await asyncio.to_thread(wait)


def _text(driver: Any) -> str:
    return str(driver.find_element("tag name", "body").text)


async def test_the_page_shows_a_session_live_with_its_chart(served: App, browser: Any,  # noqa: F811
                                                            tmp_path: Path) -> None:
    assert served.api is not None
    await script(served, f"plug; tap {TAG}; expect Charging; wait 4")  # a few seconds for the chart
    await asyncio.to_thread(browser.get, served.api.url)
    await _until(browser, lambda d: "Charging" in _text(d) and "connected" in _text(d), "a charging connector")
    await _until(browser, lambda d: "live" in _text(d), "the event stream open")
    text = await _until(browser, lambda d: _text(d), "its text")
    assert "TEST-CP" in text and "Connector 1 (AC)" in text and "contactor" in text.lower()
    assert f"{TAG}," in text  # the session line
    # Samples arrive each second; the chart draws current and power lines on its canvas.
    inked = "const c = document.getElementById('chart'); const d = c.getContext('2d')" \
            ".getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4) " \
            "if (d[i]) n++; return n;"
    await asyncio.sleep(1)
    await _until(browser, lambda d: "connector 1 is Charging" in d.find_element("id", "changes").text,
                 "the changes from before the page opened")
    assert await asyncio.to_thread(browser.execute_script, inked) > 2000
    shot = Path(os.environ.get("EVSE_SCREENSHOT_DIR", tmp_path)) / "status-page.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(browser.save_screenshot, str(shot))
    assert shot.stat().st_size > 10_000
    # The page follows the charger without a reload: the stream's status and the session list.
    await script(served, "unplug; expect Available")
    await _until(browser, lambda d: "Available" in d.find_element("css selector", "[data-evse='1'] .status").text,
                 "the connector Available again")
    await _until(browser, lambda d: "EVDisconnected" in d.find_element("id", "sessions").text, "the ended session")
    await _until(browser, lambda d: "connector 1 is Available" in d.find_element("id", "changes").text,
                 "the change line")
