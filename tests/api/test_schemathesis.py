"""Generated requests against the OpenAPI schema: no operation answers a 5xx.

schemathesis reads the schema from the in-process app and sends examples, boundary values and
invalid inputs to every operation (one test per operation), with the API token, or the admin
token where the route needs it. Hypothesis runs derandomized, so a run is repeatable.

The requests enqueue real jobs into the session Redis; the module fixture removes every queued
message, job record, uniqueness key and any other key the run created, because later modules
run real workers on these queues.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy import delete
from sqlalchemy.orm import Session

from api.main import create_app
from domain.platform.settings import Settings
from ops.local_redis import RedisServer
from tests.conftest import ADMIN_TOKEN, API_TOKEN
from tests.support.routes import find_route, needs_admin

app = create_app(Settings())
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
RECORD_PREFIX = "gaveurs:jobs:job:"

#: Per operation; ~45 operations take about a minute on 2 shared cores at this size.
MAX_EXAMPLES = 60


def forget_jobs(task_ids: list[str]) -> None:
    """Records and journal entries of jobs that will never run: without the journal entry gone
    too, broker maintenance would take a job whose record vanished for a lost one and resend it."""
    from domain.models import JournalEntry
    from runtime import current_settings, engine, flush_journal, records

    for task_id in task_ids:
        records().delete(task_id)
    if not current_settings().journal_enabled:
        return
    assert flush_journal()
    with Session(engine()) as session, session.begin():
        for start in range(0, len(task_ids), 500):
            chunk = task_ids[start : start + 500]
            session.execute(delete(JournalEntry).where(JournalEntry.task_id.in_(chunk)))


@pytest.fixture(scope="module")
def leave_redis_as_found(redis_server: RedisServer, demo_database: str) -> Iterator[None]:
    """Afterwards: no queued message, and no key, job record or journal entry the run made."""
    from runtime import broker

    client = redis_server.client
    before = set(client.scan_iter(count=1000))
    yield
    broker().flush_all()
    created = set(client.scan_iter(count=1000)) - before
    names = [key.decode() for key in created]
    forget_jobs([name[len(RECORD_PREFIX) :] for name in names if name.startswith(RECORD_PREFIX)])
    # Every other key the run made (uniqueness, idempotency, cancel requests, keys of layers
    # added later), and every uniqueness key: the jobs that held one were just flushed.
    leftovers = (set(client.scan_iter(count=1000)) - before) | set(
        client.scan_iter("gaveurs:unique:*", count=1000)
    )
    doomed = sorted(leftovers)
    for start in range(0, len(doomed), 500):
        client.delete(*doomed[start : start + 500])


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_a_server_error(case: Any, leave_redis_as_found: None) -> None:
    route = find_route(app, case.operation.path, case.operation.method)
    token = ADMIN_TOKEN if needs_admin(route) else API_TOKEN
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error]
    )


# What schemathesis found, kept as plain requests so a regression shows without generation.
# Each was a 500: SQLite raised OverflowError on an id no row can have, or a period's end
# (the next midnight) or a default start (30 days earlier) fell outside Python's dates.
TOO_BIG = 2**63
ID_URLS = [
    ("GET", f"/api/lots?offset={TOO_BIG}"),
    ("GET", f"/api/lots/{TOO_BIG}"),
    ("POST", f"/api/tasks/ml/feeding-curve/optimize?lot_id={TOO_BIG}"),
    ("POST", f"/api/tasks/ml/pysr/train?lot_id={TOO_BIG}"),
    ("POST", f"/api/tasks/export/pdf/lot?lot_id={TOO_BIG}"),
    ("POST", f"/api/tasks/export/csv/gavage?lot_id={TOO_BIG}"),
    ("POST", f"/api/tasks/export/csv/sqal?lot_id={TOO_BIG}"),
    ("POST", f"/api/tasks/export/certificate?lot_id={TOO_BIG}"),
    ("GET", f"/api/files/{TOO_BIG}"),
    ("GET", f"/api/certificates/{TOO_BIG}"),
    ("GET", f"/api/certificates/{TOO_BIG}/verify"),
]


@pytest.mark.parametrize(("method", "url"), ID_URLS, ids=[url for _, url in ID_URLS])
def test_an_id_no_row_can_have_is_a_422(
    api_client: Any, admin_auth: dict[str, str], method: str, url: str
) -> None:
    response = api_client.request(method, url, headers=admin_auth)
    assert response.status_code == 422, response.text
    assert "less than or equal to 2147483647" in response.text


def test_a_batch_with_an_id_no_row_can_have_is_a_422(api_client: Any, auth: dict[str, str]) -> None:
    response = api_client.post(
        "/api/tasks/export/csv/lots", json={"lot_ids": [TOO_BIG]}, headers=auth
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "url",
    [
        "/api/tasks/export/pdf/site?site_code=LL&date_debut=2026-01-01&date_fin=9999-12-31",
        "/api/tasks/export/csv/gavage?date_debut=2026-01-01&date_fin=9999-12-31",
        "/api/tasks/export/csv/sqal?date_debut=0001-01-01&date_fin=9999-12-31",
        "/api/tasks/export/csv/feedbacks?date_debut=2026-01-01&date_fin=9999-12-31",
    ],
)
def test_a_period_ending_on_the_last_date_is_a_422(
    api_client: Any, auth: dict[str, str], url: str
) -> None:
    response = api_client.post(url, headers=auth)
    assert response.status_code == 422, response.text
    assert "date_fin must be before 9999-12-31" in response.json()["detail"]


def test_a_site_report_ending_near_the_first_date_starts_on_it(
    api_client: Any, auth: dict[str, str], leave_redis_as_found: None
) -> None:
    response = api_client.post(
        "/api/tasks/export/xlsx/site?site_code=LL&date_fin=0001-01-05", headers=auth
    )
    assert response.status_code == 202, response.text
    assert response.json()["date_debut"] == "0001-01-01"


def test_a_planning_window_over_a_year_is_a_422(api_client: Any, auth: dict[str, str]) -> None:
    response = api_client.post(
        "/api/tasks/ml/abattage/optimize?date_debut=2026-01-01&date_fin=9999-12-31", headers=auth
    )
    assert response.status_code == 422, response.text
    assert "at most 366 days" in response.json()["detail"]
