"""A real browser for the console tests: Debian's chromium driven by Selenium through Debian's
chromedriver, and the API served by uvicorn on a free port in this process (so the test jobs of
tests/support/jobs.py are registered in it).

Nothing may leave the machine: Chromium's resolver maps every host but 127.0.0.1 to "not
found", and `outside_requests` reads the DevTools network log for any request that tried."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from axe_selenium_python import Axe
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from ops.local_redis import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LOCAL_SCHEMES = ("data:", "blob:", "about:", "chrome:", "devtools:", "chrome-extension:")


class LiveServer:
    """uvicorn serving `app` on 127.0.0.1:<free port> in a thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def chromium() -> tuple[webdriver.Chrome, Path]:
    profile = Path(tempfile.mkdtemp(prefix="gaveurs-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    return driver, profile


def close(driver: webdriver.Chrome, profile: Path) -> None:
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def outside_requests(driver: webdriver.Chrome, base_url: str) -> list[str]:
    """URLs the pages asked for since the last call that are not on our server."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") != "Network.requestWillBeSent":
            continue
        url = message["params"]["request"]["url"]
        if not (url.startswith(base_url) or url.startswith(LOCAL_SCHEMES)):
            urls.append(url)
    return urls


def accessibility_violations(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """axe-core's WCAG 2 A/AA violations on the current page (labels, contrast, names...)."""
    axe = Axe(driver)
    axe.inject()
    results = axe.run(options=json.dumps({"runOnly": ["wcag2a", "wcag2aa"]}))
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in results["violations"]
    ]


def wait_for(check: Callable[[], Any], *, timeout_s: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as error:  # noqa: BLE001 - a page mid-swap; try again
            last = error
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
