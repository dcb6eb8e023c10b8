"""The operator console in Debian's chromium, against a real redis-server, a real worker process
and the API served over HTTP: log in, watch a job's progress, cancel, re-drive a dead letter,
watch workers come and go, run a schedule entry now, log out. No request may leave the machine,
and every page passes axe-core's WCAG 2 A/AA rules."""

from __future__ import annotations

import uuid

import httpx
import pytest
import redis
from selenium import webdriver
from selenium.webdriver.common.by import By

from runtime import live_workers
from tests.browser.conftest import log_in, screenshot
from tests.conftest import API_TOKEN
from tests.support.browser import LiveServer, accessibility_violations, wait_for
from tests.support.jobs import PREFIX
from tests.support.workers import WorkerProcess

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def submit(server: LiveServer, name: str, payload: dict[str, object]) -> str:
    response = httpx.post(f"{server.url}/api/jobs/{name}", json=payload, headers=AUTH, timeout=10)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


def submit_flaky(server: LiveServer, failures: int) -> str:
    """A job whose first `failures` attempts fail with a transient error."""
    return submit(server, "flaky", {"key": f"console-{uuid.uuid4().hex}", "failures": failures})


def state_on_page(driver: webdriver.Chrome) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, "[data-state]").text)


def accept_confirm(driver: webdriver.Chrome) -> None:
    wait_for(lambda: driver.switch_to.alert, what="the confirmation dialog").accept()


def test_pages_need_a_login_and_logout_ends_the_session(
    offline: webdriver.Chrome, server: LiveServer
) -> None:
    driver = offline
    # Given no session, every console page and the dashboard lead to the login page
    for path in ("/console", "/console/jobs", "/console/queues", "/dashboard/"):
        driver.get(server.url + path)
        assert "/console/login" in driver.current_url, path
    assert accessibility_violations(driver) == []
    screenshot(driver, "login")
    # When the wrong token is given, the page says so and no session is opened
    log_in(driver, server.url, token="not-the-token")
    assert "Wrong admin token" in driver.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert driver.get_cookie("gaveurs_console") is None
    # When the admin token is given, the overview opens; the cookie is HttpOnly and SameSite
    log_in(driver, server.url)
    wait_for(lambda: driver.current_url.endswith("/console"), what="the overview")
    cookie = driver.get_cookie("gaveurs_console")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert driver.find_element(By.TAG_NAME, "h1").text == "Overview"
    # Then logging out ends the session: the pages lead to the login page again
    driver.find_element(By.CSS_SELECTOR, "button[data-logout]").click()
    wait_for(lambda: "/console/login" in driver.current_url, what="the login page")
    driver.get(f"{server.url}/console/jobs")
    assert "/console/login" in driver.current_url
    # And the old cookie value is dead server-side too (not only removed from this browser)
    driver.add_cookie({"name": "gaveurs_console", "value": cookie["value"], "path": "/"})
    driver.get(f"{server.url}/console/jobs")
    assert "/console/login" in driver.current_url


def test_an_action_without_the_csrf_token_is_refused(server: LiveServer) -> None:
    # Given a session opened with the admin token
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/console/login")
        form_token = page.text.split('name="form_token" value="')[1].split('"')[0]
        client.post(
            "/console/login",
            data={
                "token": __import__("tests.conftest").conftest.ADMIN_TOKEN,
                "form_token": form_token,
                "next": "/console",
            },
        )
        assert client.get("/console/jobs").status_code == 200
        # When a state-changing call comes without the CSRF token (a forged cross-site form)
        refused = client.post("/console/actions/schedules/health-check-periodic/run")
        # Then it is refused with a reason, and nothing was sent
        assert refused.status_code == 403
        assert "CSRF" in refused.json()["detail"]


@pytest.fixture()
def logged_in(offline: webdriver.Chrome, server: LiveServer) -> webdriver.Chrome:
    log_in(offline, server.url)
    wait_for(lambda: offline.current_url.endswith("/console"), what="the overview")
    return offline


def test_progress_bar_moves_to_100_without_reload(
    logged_in: webdriver.Chrome, server: LiveServer, worker: WorkerProcess
) -> None:
    driver = logged_in
    # Given a long job submitted through the API
    task_id = submit(server, "slow", {"key": f"console-{uuid.uuid4().hex}", "seconds": 4})
    driver.get(f"{server.url}/console/jobs/{task_id}")
    driver.execute_script("window.notReloaded = true")
    # When the page is left alone, its bar moves (seen between 0 and 100) and reaches 100 %
    bar = "document.querySelector('progress').value"
    wait_for(lambda: 0 < driver.execute_script(f"return {bar}") < 100, what="a moving bar")
    screenshot(driver, "job")
    wait_for(lambda: state_on_page(driver) == "SUCCESS", timeout_s=30, what="SUCCESS")
    assert driver.execute_script(f"return {bar}") == 100
    # Then it was the same page all along: no reload
    assert driver.execute_script("return window.notReloaded") is True
    assert accessibility_violations(driver) == []
    # And the jobs list shows it, found by its task id
    driver.get(f"{server.url}/console/jobs?search={task_id}")
    row = driver.find_element(By.CSS_SELECTOR, f"tr[data-task-id='{task_id}']")
    assert "SUCCESS" in row.text
    driver.get(f"{server.url}/console/jobs")
    assert accessibility_violations(driver) == []
    screenshot(driver, "jobs")


def test_the_job_page_shows_each_attempt(
    logged_in: webdriver.Chrome, server: LiveServer, worker: WorkerProcess
) -> None:
    driver = logged_in
    # Given a job whose first two attempts fail with a transient error
    task_id = submit_flaky(server, 2)
    driver.get(f"{server.url}/console/jobs/{task_id}")
    # When it runs to its success, the page lists the attempts as they end, without reload
    wait_for(lambda: state_on_page(driver) == "SUCCESS", timeout_s=30, what="SUCCESS")

    def attempts() -> list[tuple[str, str]]:
        # Read in one go: the next poll may swap the rows for new ones (stale elements).
        rows = driver.find_elements(By.CSS_SELECTOR, "tr[data-attempt]")
        return [(r.find_element(By.CSS_SELECTOR, ".state").text, r.text) for r in rows]

    rows = wait_for(lambda: len(found := attempts()) == 3 and found, what="three attempts")
    # Then each retry shows its error and its backoff, the last its success
    assert [outcome for outcome, _ in rows] == ["RETRY", "RETRY", "SUCCESS"]
    assert "TransientError: simulated outage 2/2" in rows[1][1]
    assert " ms (at " in rows[0][1] or " s (at " in rows[0][1]
    assert accessibility_violations(driver) == []
    screenshot(driver, "job-attempts")


def test_cancel_a_running_job(
    logged_in: webdriver.Chrome, server: LiveServer, worker: WorkerProcess
) -> None:
    driver = logged_in
    # Given a job running on the worker
    task_id = submit(server, "slow", {"key": f"console-{uuid.uuid4().hex}", "seconds": 60})
    driver.get(f"{server.url}/console/jobs/{task_id}")
    wait_for(lambda: state_on_page(driver) == "STARTED", what="STARTED")
    # When the operator presses Cancel and confirms
    driver.find_element(By.XPATH, "//button[text()='Cancel']").click()
    accept_confirm(driver)
    # Then the page shows REVOKED, and the worker stopped it (it never finished)
    wait_for(lambda: state_on_page(driver) == "REVOKED", what="REVOKED")
    assert worker.client.get(f"{PREFIX}done:{task_id}") is None


def test_redrive_a_dead_letter_from_the_queues_page(
    logged_in: webdriver.Chrome, server: LiveServer, worker: WorkerProcess
) -> None:
    driver = logged_in
    client: redis.Redis = worker.client
    key = f"console-{uuid.uuid4().hex}"
    # Given a job that failed permanently into the dead letters
    task_id = submit(server, "broken", {"key": key})
    driver.get(f"{server.url}/console/queues")
    row = f"tr[data-task-id='{task_id}']"
    found = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, row), what="the dead letter")
    assert "has no feeding records" in found[0].text
    assert accessibility_violations(driver) == []
    screenshot(driver, "queues")
    # When the cause is fixed and the operator re-drives that letter
    client.set(f"{PREFIX}fixed:{key}", 1)
    driver.find_element(By.CSS_SELECTOR, f"{row} button").click()
    # Then it leaves the dead letters and succeeds, same task id
    wait_for(lambda: not driver.find_elements(By.CSS_SELECTOR, row), what="the letter gone")
    driver.get(f"{server.url}/console/jobs/{task_id}")
    wait_for(lambda: state_on_page(driver) == "SUCCESS", what="SUCCESS after re-drive")


def test_a_worker_appears_and_disappears(
    logged_in: webdriver.Chrome, server: LiveServer, worker: WorkerProcess
) -> None:
    driver = logged_in
    driver.get(f"{server.url}/console/workers")
    before = {w["worker"] for w in live_workers(worker.client)}
    # When a second worker process starts
    extra = WorkerProcess(worker.client, queues=("default",), threads=2)
    try:
        (started,) = {w["worker"] for w in live_workers(worker.client)} - before
        row = f"tr[data-worker='{started}']"
        # Then it appears without a reload
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, row), what="the new worker")
        assert accessibility_violations(driver) == []
    finally:
        extra.stop()
    # And disappears once stopped, into the workers gone in the last hour, as stopped
    wait_for(lambda: not driver.find_elements(By.CSS_SELECTOR, row), what="the worker gone")
    gone = f"tr[data-gone='{started}']"
    # (texts read at once: the next poll may swap the rows for new ones)
    texts = wait_for(
        lambda: [row.text for row in driver.find_elements(By.CSS_SELECTOR, gone)],
        what="it among the gone",
    )
    assert "stopped at" in texts[0]
    assert accessibility_violations(driver) == []
    screenshot(driver, "workers")


def test_worker_counts_and_memory(
    logged_in: webdriver.Chrome, server: LiveServer, worker: WorkerProcess
) -> None:
    driver = logged_in
    # Given the worker ran a job that failed once before it succeeded
    status_url = f"{server.url}/api/tasks/status/{submit_flaky(server, 1)}"
    wait_for(lambda: httpx.get(status_url).json()["status"] == "SUCCESS", timeout_s=30,
             what="the job's success")  # fmt: skip
    # Then the workers page shows, without reload, its failed attempts and its memory
    driver.get(f"{server.url}/console/workers")

    def failed_and_rss() -> list[tuple[str, str]]:
        # Read in one go: the next poll may swap the rows for new ones (stale elements).
        cells = [
            (row.find_element(By.CSS_SELECTOR, "[data-failed]").text,
             row.find_element(By.CSS_SELECTOR, "[data-rss]").text)
            for row in driver.find_elements(By.CSS_SELECTOR, "tr[data-worker]")
        ]  # fmt: skip
        return [(failed, rss) for failed, rss in cells if "default" in failed]

    (_, rss), *_ = wait_for(failed_and_rss, timeout_s=15, what="a failed count on default")
    assert rss.endswith(" MB") and int(rss.removesuffix(" MB")) > 10


def test_run_a_schedule_entry_now(
    logged_in: webdriver.Chrome, server: LiveServer, worker: WorkerProcess
) -> None:
    from runtime import ACTIVE_STATES, Control, broker, records

    # Given no health check left active by an earlier test: one whose message a queue flush
    # removed would hold the entry's uniqueness key, and "run now" would answer that job
    control = Control(broker(), records())
    for stale in records().list(actor="health_check", states=ACTIVE_STATES, limit=500):
        control.cancel(stale.task_id)
    driver = logged_in
    driver.get(f"{server.url}/console/schedules")
    assert accessibility_violations(driver) == []
    screenshot(driver, "schedules")
    # When the operator runs the health check now
    driver.find_element(By.CSS_SELECTOR, "tr[data-entry='health-check-periodic'] button").click()
    accept_confirm(driver)
    # Then its job page opens and the worker runs it to the end
    wait_for(lambda: "/console/jobs/" in driver.current_url, what="the job page")
    assert "health_check" in driver.find_element(By.ID, "h-state").text
    wait_for(
        lambda: state_on_page(driver) in ("SUCCESS", "FAILURE"), timeout_s=30, what="an outcome"
    )
    driver.get(f"{server.url}/console")
    # And the overview's charts count the jobs of the last hour; no Prometheus is configured
    assert driver.find_elements(By.CSS_SELECTOR, "[data-activity] svg.chart")
    outcomes = driver.find_element(By.CSS_SELECTOR, "[data-outcomes]").text
    assert int(outcomes.split(" SUCCESS")[0]) > 0, outcomes
    alerts = driver.find_element(By.CSS_SELECTOR, "[data-alerts]").text
    assert "Prometheus not configured" in alerts
    assert accessibility_violations(driver) == []
    driver.execute_script("window.scrollTo(0, 0)")
    screenshot(driver, "overview")


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_work_offline(offline: webdriver.Chrome, server: LiveServer, path: str) -> None:
    driver = offline
    driver.get(server.url + path)
    # Then the documentation renders from assets served here (the fixture fails on any other)
    selector = ".opblock" if path == "/docs" else "[data-section-id]"
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, selector), what=f"{path} rendered")


def test_dashboard_behind_the_console_login(
    logged_in: webdriver.Chrome, server: LiveServer
) -> None:
    driver = logged_in
    driver.get(f"{server.url}/dashboard/")
    wait_for(lambda: "default" in driver.page_source, what="the dashboard's queues")
    assert "/console/login" not in driver.current_url
