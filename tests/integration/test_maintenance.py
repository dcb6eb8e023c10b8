"""Maintenance and ingest through the API with a real worker, and the schedules route."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from domain.platform.settings import get_settings
from runtime import State, records
from tests.support.polling import wait_for
from tests.support.sqal import sqal_batch
from tests.support.workers import WorkerProcess


def _finished(task_id: str) -> Any:
    return wait_for(
        lambda: (r := records().get(task_id)) and r.state in (State.SUCCESS, State.FAILURE) and r,
        timeout=60,
        what=f"job {task_id}",
    )


def test_sqal_batch_is_acknowledged_stored_once_and_graded(
    api_client: Any, auth: dict[str, str], worker: WorkerProcess, demo_database: str
) -> None:
    # Given a batch of 40 samples, half of them grade C, sent twice (a device retry)
    batch = sqal_batch(3001, ["A", "C"] * 20, batch_id=uuid.uuid4().hex[:10])
    started = time.perf_counter()
    first = api_client.post("/api/ingest/sqal", json=batch, headers=auth)
    acknowledged_ms = (time.perf_counter() - started) * 1000
    assert first.status_code == 202, first.text
    assert first.json()["samples"] == 40 and acknowledged_ms < 1000
    result = _finished(first.json()["task_id"]).result
    second = api_client.post("/api/ingest/sqal", json=batch, headers=auth)
    duplicate = _finished(second.json()["task_id"]).result

    # Then the samples are stored once and the grade drop is flagged
    assert result["status"] == "success" and result["stored"] == 40
    assert result["quality_alert"] in ("warning", "critical")
    assert duplicate["status"] == "duplicate" and duplicate["stored"] == 0
    with sqlite3.connect(demo_database.removeprefix("sqlite:///")) as connection:
        (count,) = connection.execute(
            "SELECT count(*) FROM sqal_samples WHERE batch_id = ?", (batch["batch_id"],)
        ).fetchone()
    assert count == 40


def test_bad_sqal_batches_get_clear_4xx(api_client: Any, auth: dict[str, str]) -> None:
    bad_zones = sqal_batch(3001, ["A"], batch_id="x")
    bad_zones["samples"][0]["tof_zones_mm"] = [1.0] * 3
    response = api_client.post("/api/ingest/sqal", json=bad_zones, headers=auth)
    assert response.status_code == 422 and "tof_zones_mm" in response.text
    too_many = sqal_batch(3001, ["A"] * (get_settings().ingest_max_samples + 1), batch_id="y")
    response = api_client.post("/api/ingest/sqal", json=too_many, headers=auth)
    assert response.status_code == 422 and "split it" in response.json()["detail"]
    assert (
        api_client.post("/api/ingest/sqal", json=sqal_batch(3001, ["A"], batch_id="z")).status_code
        == 401
    )


def test_backup_job_writes_a_verified_copy(
    api_client: Any, auth: dict[str, str], worker: WorkerProcess
) -> None:
    response = api_client.post("/api/tasks/maintenance/backup", headers=auth)
    assert response.status_code == 202, response.text
    record = _finished(response.json()["task_id"])
    assert record.state is State.SUCCESS, record.error
    path = Path(record.result["path"])
    assert path.is_file() and path.stat().st_size == record.result["size_bytes"]
    assert record.result["tables"]["lots"] > 0


def test_cleanup_and_kpis_jobs_run(
    api_client: Any, auth: dict[str, str], worker: WorkerProcess
) -> None:
    cleanup = api_client.post("/api/tasks/maintenance/cleanup", headers=auth).json()
    kpis = api_client.post(
        "/api/tasks/maintenance/weekly-kpis?week_start=2026-01-05", headers=auth
    ).json()
    cleaned = _finished(cleanup["task_id"])
    assert cleaned.state is State.SUCCESS
    # every store with a retention is swept (tests/unit/test_retention_cleanup.py for each)
    for swept in ("outbox_files_deleted", "feedback_deleted", "journaled_workflows_deleted"):
        assert isinstance(cleaned.result[swept], int), cleaned.result
    done = _finished(kpis["task_id"])
    assert done.state is State.SUCCESS and done.result["week_start"] == "2026-01-05"


def test_schedules_route_lists_every_entry_with_next_run(api_client: Any) -> None:
    body = api_client.get("/api/schedules").json()
    assert body["timezone"] == "Europe/Paris"
    entries = {entry["name"]: entry for entry in body["entries"]}
    backup = entries["backup-database-daily"]
    assert backup["actor"] == "backup_database" and backup["catch_up"] is True
    assert backup["next_run"].endswith(("T03:00:00+01:00", "T03:00:00+02:00"))
    assert backup["registered"] is True
    assert len(entries) == 13  # seed 001, broker maintenance, seed 002 search
