"""The result cache (issue 21, part 7) on real Redis, SQLite and workers: a lot report asked for
again on unchanged data is answered from the finished run; new SQAL or gavage data for the lot
invalidates it, and only it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from domain.models import FeedingRecord, Meal
from domain.platform import db
from ops.local_redis import RedisServer
from tests.support.exports import start_exports_worker
from tests.support.polling import wait_state
from tests.support.sqal import sqal_batch
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow
LOT = 3004
PDF = f"/api/tasks/export/pdf/lot?lot_id={LOT}&report_type=summary"


@pytest.fixture(scope="module")
def exports_worker(
    redis_server: RedisServer, demo_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    process = start_exports_worker(redis_server.client, tmp_path_factory, threads=2)
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def no_entries(redis_server: RedisServer) -> None:
    for key in redis_server.client.scan_iter("gaveurs:cache:*"):
        redis_server.client.delete(key)


def _ask(api_client: Any, auth: dict[str, str], path: str = PDF) -> dict[str, Any]:
    response = api_client.post(path, headers=auth)
    assert response.status_code == 202, response.text
    return dict(response.json())


def _run(api_client: Any, auth: dict[str, str], path: str = PDF) -> dict[str, Any]:
    """A request that must run the job: not cached, then SUCCESS."""
    asked = _ask(api_client, auth, path)
    assert "cached" not in asked and asked["status"] == "submitted", asked
    return wait_state(api_client, asked["task_id"], "SUCCESS", timeout=60)


def test_a_repeated_request_is_answered_from_the_finished_run(
    exports_worker: WorkerProcess, api_client: Any, auth: dict[str, str], redis_server: RedisServer
) -> None:
    # Given the lot's PDF made once
    done = _run(api_client, auth)

    # When it is asked for again, with nothing changed
    queued = redis_server.client.llen("dramatiq:exports")
    again = _ask(api_client, auth)

    # Then the answer is that run, its result marked cached, and nothing was queued
    assert again["cached"] is True and again["status"] == "SUCCESS"
    assert again["task_id"] == done["task_id"] and again["result"] == done["result"]
    assert again["status_url"] == f"/api/tasks/status/{done['task_id']}"
    assert redis_server.client.llen("dramatiq:exports") == queued
    # the other report type, and the workbook, are other entries
    _run(api_client, auth, f"/api/tasks/export/pdf/lot?lot_id={LOT}&report_type=complete")
    _run(api_client, auth, f"/api/tasks/export/xlsx/lot?lot_id={LOT}")
    assert _ask(api_client, auth, f"/api/tasks/export/xlsx/lot?lot_id={LOT}")["cached"] is True


def test_new_sqal_data_for_the_lot_invalidates_its_reports_only(
    exports_worker: WorkerProcess,
    worker: WorkerProcess,
    api_client: Any,
    auth: dict[str, str],
) -> None:
    # Given the lot's PDF and another lot's PDF, both cached
    first = _run(api_client, auth)
    other = f"/api/tasks/export/pdf/lot?lot_id={LOT + 1}&report_type=summary"
    other_run = _run(api_client, auth, other)
    assert _ask(api_client, auth)["cached"] is True

    # When a SQAL batch for the lot is ingested (the default worker stores it)
    batch = sqal_batch(LOT, ["A", "A"], batch_id=uuid.uuid4().hex[:10])
    ingest = api_client.post("/api/ingest/sqal", json=batch, headers=auth)
    assert ingest.status_code == 202, ingest.text
    wait_state(api_client, ingest.json()["task_id"], "SUCCESS", timeout=60)

    # Then the lot's next request runs the report again, and that run is cached in turn
    second = _run(api_client, auth)
    assert second["task_id"] != first["task_id"]
    assert _ask(api_client, auth)["task_id"] == second["task_id"]
    # while the other lot's entry still answers
    assert _ask(api_client, auth, other)["task_id"] == other_run["task_id"]


def test_new_gavage_data_for_the_lot_invalidates_it(
    exports_worker: WorkerProcess, api_client: Any, auth: dict[str, str], demo_database: str
) -> None:
    # Given the lot's PDF, cached
    first = _run(api_client, auth)
    # When a feeding record is added for the lot (there is no gavage ingest route: straight
    # into the database, as the feeding-data import does)
    engine = db.make_engine(demo_database)
    with db.session_factory(engine)() as session:
        day = (
            session.scalar(select(func.max(FeedingRecord.day)).where(FeedingRecord.lot_id == LOT))
            or 0
        ) + 1
        added = FeedingRecord(
            lot_id=LOT, day=day, meal=Meal.MORNING.value, record_date=date(2026, 1, 8),
            dose_g=400.0, mean_weight_g=6000.0, temperature_c=20.0, humidity_pct=60.0, mortality=0,
        )  # fmt: skip
        session.add(added)
        session.commit()
        try:
            # Then the next request runs again
            assert _run(api_client, auth)["task_id"] != first["task_id"]
        finally:  # the shared demo data stays as other modules expect it
            session.delete(added)
            session.commit()
    engine.dispose()
