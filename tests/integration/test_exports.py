"""Exports end to end: the API enqueues, a real `exports` worker runs the job, the client
polls, downloads with its token, and the bytes match the recorded sha256."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from domain.models import FeedingRecord, Lot, LotStatus
from domain.platform import db
from ops.local_redis import RedisServer
from tests.support.exports import pdf_text, sha256, start_exports_worker
from tests.support.polling import status, wait_for
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow
FINAL = ("SUCCESS", "FAILURE", "REVOKED")


@pytest.fixture(scope="module")
def exports_worker(
    redis_server: RedisServer, demo_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """The exports worker as the Procfile runs it (4 threads), on the production actors."""
    process = start_exports_worker(redis_server.client, tmp_path_factory)
    yield process
    process.stop()


def _slaughtered_lot(demo_database: str) -> tuple[int, str]:
    engine = db.make_engine(demo_database)
    with db.session_factory(engine)() as session:
        row = session.execute(
            select(Lot.id, Lot.code)
            .where(Lot.status == LotStatus.SLAUGHTERED.value)
            .order_by(Lot.id.desc())
        ).first()
    engine.dispose()
    assert row is not None
    return row.id, row.code


def _run(
    api_client: Any, auth: dict[str, str], path: str, **kwargs: Any
) -> tuple[list[int], dict[str, Any]]:
    """Enqueue through the API and poll until the job ends: progress seen, final record."""
    response = api_client.post(path, headers=auth, **kwargs)
    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]
    seen: list[int] = []

    def finished() -> dict[str, Any] | None:
        body = status(api_client, task_id)
        if body["status"] == "STARTED":
            seen.append(body["progress"])
        return body if body["status"] in FINAL else None

    done = wait_for(finished, timeout=60, interval=0.02, what=f"{path} to finish")
    assert done["status"] == "SUCCESS", done.get("error")
    assert done["progress"] == 100 and done["queue"] == "exports"
    return seen, done


def test_lot_pdf_end_to_end_downloads_the_recorded_bytes(
    exports_worker: WorkerProcess, api_client: Any, auth: dict[str, str], demo_database: str
) -> None:
    # Given a slaughtered lot, when its complete PDF is asked for and the job runs
    lot_id, code = _slaughtered_lot(demo_database)
    seen, done = _run(
        api_client, auth, f"/api/tasks/export/pdf/lot?lot_id={lot_id}&report_type=complete"
    )

    # Then the result has seed 001's shape
    result = done["result"]
    assert result["status"] == "success" and result["lot_id"] == lot_id
    assert result["report_type"] == "complete"
    assert result["pdf_url"].startswith(f"/exports/reports/lot_{lot_id}_complete_")
    assert seen == sorted(seen)
    # and the download, with the token, is exactly the recorded file
    download = api_client.get(result["pdf_url"], headers=auth)
    assert download.status_code == 200 and download.headers["content-type"] == "application/pdf"
    meta = api_client.get(f"/api/files/{result['file_id']}", headers=auth).json()
    assert sha256(download.content) == result["sha256"] == meta["sha256"]
    assert len(download.content) == result["file_size"] == meta["size_bytes"]
    assert meta["task_id"] == done["task_id"]
    _, text = pdf_text(download.content)
    assert f"Rapport de lot {code}" in text
    # without the token there is nothing to read
    assert api_client.get(result["pdf_url"]).status_code == 401


def test_unknown_lot_is_refused_before_queueing(api_client: Any, auth: dict[str, str]) -> None:
    response = api_client.post("/api/tasks/export/pdf/lot?lot_id=99999", headers=auth)
    assert response.status_code == 404 and "lot 99999" in response.json()["detail"]


def test_gavage_csv_end_to_end_counts_every_record(
    exports_worker: WorkerProcess, api_client: Any, auth: dict[str, str], demo_database: str
) -> None:
    _, done = _run(api_client, auth, "/api/tasks/export/csv/gavage")

    engine = db.make_engine(demo_database)
    with db.session_factory(engine)() as session:
        records = session.scalar(select(func.count()).select_from(FeedingRecord))
    engine.dispose()
    download = api_client.get(done["result"]["file_url"], headers=auth)
    assert sha256(download.content) == done["result"]["sha256"]
    lines = download.content.decode("utf-8").splitlines()
    assert len(lines) - 1 == done["result"]["rows"] == records


def test_certificate_verifies_then_fails_once_a_byte_changes(
    exports_worker: WorkerProcess, api_client: Any, auth: dict[str, str], demo_database: str
) -> None:
    # Given a certificate issued by the worker
    lot_id, code = _slaughtered_lot(demo_database)
    _, done = _run(
        api_client, auth, f"/api/tasks/export/certificate?lot_id={lot_id}&certificate_type=origin"
    )
    result = done["result"]
    verify_url = f"/api/certificates/{result['certificate_id']}/verify"
    assert result["verify_url"] == verify_url
    link = api_client.get(f"/api/certificates/{result['certificate_id']}").json()
    assert link["chain_hash"] == result["chain_hash"] and link["pdf_url"] == result["pdf_url"]
    # When verified as issued, it is valid
    verdict = api_client.get(verify_url).json()
    assert verdict["valid"] is True, verdict
    download = api_client.get(result["pdf_url"], headers=auth)
    assert sha256(download.content) == result["content_hash"]
    assert code in pdf_text(download.content)[1]

    # When one byte of the stored file changes, it no longer is
    path = Path(os.environ["EXPORT_DIR"]) / result["pdf_url"].removeprefix("/exports/")
    original = path.read_bytes()
    path.write_bytes(original[:100] + bytes([original[100] ^ 0xFF]) + original[101:])
    try:
        tampered = api_client.get(verify_url).json()
    finally:
        path.write_bytes(original)
    assert tampered["valid"] is False and "changed" in tampered["reason"]
    assert api_client.get(verify_url).json()["valid"] is True
