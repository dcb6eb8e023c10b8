"""The console in a real browser: a live API server, a real worker, Debian's chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from ops.local_redis import RedisServer
from tests.conftest import ADMIN_TOKEN
from tests.support.browser import LiveServer, chromium, close, outside_requests
from tests.support.workers import WorkerProcess

#: `make console-screenshots` sets it to docs/console: the README's pictures come from here.
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS_DIR")


@pytest.fixture(scope="module")
def server(demo_database: str) -> Iterator[LiveServer]:
    import tests.support.jobs  # noqa: F401  (the slow, broken... jobs the tests submit)
    from api.main import create_app
    from domain.platform.settings import Settings

    live = LiveServer(create_app(Settings()))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def worker(redis_server: RedisServer, demo_database: str) -> Iterator[WorkerProcess]:
    process = WorkerProcess(redis_server.client)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser(server: LiveServer) -> Iterator[webdriver.Chrome]:
    driver, profile = chromium()
    yield driver
    close(driver, profile)


@pytest.fixture()
def offline(browser: webdriver.Chrome, server: LiveServer) -> Iterator[webdriver.Chrome]:
    """The browser, checked after the test for any request that tried to leave the machine."""
    outside_requests(browser, server.url)  # forget earlier tests' log
    yield browser
    assert outside_requests(browser, server.url) == []


def log_in(driver: webdriver.Chrome, base_url: str, *, token: str = ADMIN_TOKEN) -> None:
    driver.get(f"{base_url}/console/login")
    field = driver.find_element(By.ID, "token")
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    # The next page has loaded once the login form is gone from the DOM.
    WebDriverWait(driver, 20).until(lambda _: _detached(field))


def _detached(element: WebElement) -> bool:
    """Whether the element has left the document, including while the browser swaps documents.

    Selenium's `staleness_of` knows only StaleElementReferenceException; caught mid-navigation,
    chromium answers "Node with given id does not belong to the document" instead (a CI run
    failed on it), which means the same thing.
    """
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in str(error):
            return True
        raise
    return False


def screenshot(driver: webdriver.Chrome, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SCREENSHOTS) / f"{name}.png"))
