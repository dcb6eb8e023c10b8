"""The exports HTTP contract: auth, seed 001's 202 shape, 404/410/422 before anything runs,
and downloads of recorded files (no worker here: tests/integration/test_exports.py runs them)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from domain import cleanup
from domain.models import Lot, LotStatus, StoredFile
from domain.platform import db
from domain.platform.files import store_for
from domain.platform.settings import Settings

POSTS = [
    "/api/tasks/export/pdf/lot?lot_id=3001",
    "/api/tasks/export/pdf/site?site_code=LL",
    "/api/tasks/export/xlsx/lot?lot_id=3001",
    "/api/tasks/export/xlsx/site?site_code=LL",
    "/api/tasks/export/csv/gavage",
    "/api/tasks/export/csv/sqal",
    "/api/tasks/export/csv/feedbacks",
    "/api/tasks/export/csv/lots",
    "/api/tasks/export/certificate?lot_id=3001",
    "/api/tasks/export/weekly-reports",
]


@pytest.fixture()
def exports_queue(redis_server: Any) -> Iterator[None]:
    """Whatever a test queues on `exports` is purged after it (records REVOKED, keys freed)."""
    yield
    from runtime import Control, broker, records

    Control(broker(), records()).purge("exports")


def _lot(demo_database: str, status: LotStatus) -> int:
    engine = db.make_engine(demo_database)
    with db.session_factory(engine)() as session:
        lot_id = session.scalar(select(Lot.id).where(Lot.status == status.value).order_by(Lot.id))
    engine.dispose()
    assert lot_id is not None
    return lot_id


@pytest.mark.parametrize("path", POSTS)
def test_export_routes_need_a_bearer_token(api_client: Any, path: str) -> None:
    assert api_client.post(path).status_code == 401


@pytest.mark.parametrize("path", ["/exports/reports/lot_3001_summary_20260108.pdf", "/api/files/1"])
def test_files_need_a_bearer_token(api_client: Any, path: str) -> None:
    response = api_client.get(path)
    assert response.status_code == 401 and "Bearer" in response.json()["detail"]


def test_lot_pdf_is_accepted_with_the_seed_shape_once(
    api_client: Any, auth: dict[str, str], exports_queue: None
) -> None:
    path = "/api/tasks/export/pdf/lot?lot_id=3001&report_type=complete"
    response = api_client.post(path, headers=auth)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "submitted" and body["message"] == "PDF generation started"
    assert body["lot_id"] == 3001 and body["report_type"] == "complete"
    assert body["task_name"] == "generate_lot_pdf_report" and body["queue"] == "exports"
    assert response.headers["Location"] == body["status_url"]
    # the same lot and report type while the first is queued: the first task comes back
    again = api_client.post(path, headers=auth).json()
    assert again["duplicate"] is True and again["task_id"] == body["task_id"]


def test_site_reports_default_to_the_last_30_days(
    api_client: Any, auth: dict[str, str], exports_queue: None
) -> None:
    body = api_client.post("/api/tasks/export/xlsx/site?site_code=ll", headers=auth).json()
    start, end = (
        datetime.fromisoformat(body["date_debut"]),
        datetime.fromisoformat(body["date_fin"]),
    )
    assert body["site_code"] == "LL" and (end - start).days == 29


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/api/tasks/export/pdf/lot?lot_id=99999", "lot 99999"),
        ("/api/tasks/export/xlsx/lot?lot_id=99999", "lot 99999"),
        ("/api/tasks/export/csv/gavage?lot_id=99999", "lot 99999"),
        ("/api/tasks/export/csv/sqal?lot_id=99999", "lot 99999"),
        ("/api/tasks/export/certificate?lot_id=99999", "lot 99999"),
        ("/api/tasks/export/pdf/site?site_code=ZZ", "site 'ZZ'"),
        ("/api/tasks/export/xlsx/site?site_code=ZZ", "site 'ZZ'"),
    ],
)
def test_unknown_lots_and_sites_are_404_before_queueing(
    api_client: Any, auth: dict[str, str], path: str, named: str
) -> None:
    response = api_client.post(path, headers=auth)
    assert response.status_code == 404 and named in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/tasks/export/pdf/site?site_code=LL&date_debut=2025-12-01&date_fin=2025-11-01",
        "/api/tasks/export/csv/gavage?date_debut=2025-12-01&date_fin=2025-11-01",
        "/api/tasks/export/csv/feedbacks?date_debut=2025-12-01&date_fin=2025-11-01",
    ],
)
def test_a_period_ending_before_it_starts_is_422(
    api_client: Any, auth: dict[str, str], path: str
) -> None:
    response = api_client.post(path, headers=auth)
    assert response.status_code == 422
    assert response.json()["detail"] == "date_fin 2025-11-01 is before date_debut 2025-12-01"


def test_batch_lists_unknown_lots_and_bounds_its_size(
    api_client: Any, auth: dict[str, str]
) -> None:
    path = "/api/tasks/export/csv/lots"
    unknown = api_client.post(path, json={"lot_ids": [3001, 7, 99999]}, headers=auth)
    assert unknown.status_code == 404 and unknown.json()["detail"] == "unknown lot ids: 7, 99999"
    too_many = api_client.post(path, json={"lot_ids": list(range(1, 1002))}, headers=auth)
    assert too_many.status_code == 422 and "1 to 1000 lot ids" in too_many.json()["detail"]
    assert api_client.post(path, json={"lot_ids": []}, headers=auth).status_code == 422


def test_certificates_are_for_finished_lots_only(
    api_client: Any, auth: dict[str, str], demo_database: str
) -> None:
    feeding = _lot(demo_database, LotStatus.FEEDING)
    response = api_client.post(f"/api/tasks/export/certificate?lot_id={feeding}", headers=auth)
    assert response.status_code == 422 and "only finished or slaughtered" in response.text
    bogus = f"/api/tasks/export/certificate?lot_id={feeding}&certificate_type=bogus"
    assert api_client.post(bogus, headers=auth).status_code == 422
    assert api_client.get("/api/certificates/99999").status_code == 404


def test_download_serves_the_recorded_bytes_then_410_then_404_after_cleanup(
    api_client: Any, auth: dict[str, str], demo_database: str
) -> None:
    # Given a live export and one whose retention ended yesterday
    settings = Settings()
    store = store_for(settings)
    now = datetime.now(UTC)
    engine = db.make_engine(demo_database)
    factory = db.session_factory(engine)
    with factory() as session, session.begin():
        live = store.save(session, "csv", "live.csv", lambda out: out.write(b"a,b\r\n1,2\r\n"),
                          kind="test", now=now, task_id=None)  # fmt: skip
        old = store.save(session, "reports", "old.pdf", lambda out: out.write(b"%PDF-old"),
                         kind="test", now=now - timedelta(days=8), task_id=None)  # fmt: skip
    try:
        # When downloaded with the token, the live one comes back as recorded
        response = api_client.get("/exports/csv/live.csv", headers=auth)
        assert response.status_code == 200 and response.content == b"a,b\r\n1,2\r\n"
        assert response.headers["X-Content-SHA256"] == live.sha256
        assert response.headers["content-type"].startswith("text/csv")
        assert 'filename="live.csv"' in response.headers["content-disposition"]
        meta = api_client.get(f"/api/files/{live.id}", headers=auth).json()
        assert meta["sha256"] == live.sha256 and meta["url"] == "/exports/csv/live.csv"
        # the expired one is Gone until the cleanup deletes it, then unknown
        assert api_client.get("/exports/reports/old.pdf", headers=auth).status_code == 410
        with factory() as session:
            deleted = cleanup.delete_expired_files(session, settings.export_dir, now=now)
        assert deleted["files_deleted"] >= 1 and not store.path_of(old).exists()
        gone = api_client.get("/exports/reports/old.pdf", headers=auth)
        assert gone.status_code == 404 and "no export file" in gone.json()["detail"]
        assert api_client.get(f"/api/files/{old.id}", headers=auth).status_code == 404
        assert api_client.get("/exports/reports/../../etc/passwd", headers=auth).status_code == 404
    finally:
        with factory() as session, session.begin():
            row = session.get(StoredFile, live.id)
            if row is not None:
                session.delete(row)
        store.path_of(live).unlink(missing_ok=True)
        engine.dispose()
