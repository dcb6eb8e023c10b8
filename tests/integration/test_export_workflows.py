"""Weekly reports and batch exports as workflows (issue 21, part 5): the API starts them, a real
`exports` worker runs the per-site / per-lot steps and the callback, the client follows the
workflow; the e-mail goes through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from actors.exports import lots_zip_flow, weekly_flow
from ops.local_redis import RedisServer
from runtime import submit_workflow
from tests.support.exports import sha256, start_exports_worker
from tests.support.notify import SmtpServer
from tests.support.polling import wait_for, wait_state
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow
WORKFLOW_ENDS = ("SUCCESS", "FAILURE", "REVOKED")
DIRECTION = "direction@cooperative.example"


@pytest.fixture(scope="module")
def exports_worker(
    redis_server: RedisServer,
    demo_database: str,
    smtp: SmtpServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    """The exports worker as the Procfile runs it (4 threads), mailing through aiosmtpd."""
    process = start_exports_worker(
        redis_server.client,
        tmp_path_factory,
        env={
            "NOTIFY_BACKEND": "live",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.port),
            "SMTP_SECURITY": "none",
            "WEEKLY_REPORTS_EMAIL_TO": DIRECTION,
        },
    )
    yield process
    process.stop()


def _workflow_end(api_client: Any, workflow_url: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        response = api_client.get(workflow_url)
        if response.status_code == 404:  # the starter job has not run yet
            return None
        body = dict(response.json())
        return body if body["state"] in WORKFLOW_ENDS else None

    return wait_for(ended, timeout=90, interval=0.05, what=f"{workflow_url} to end")


def _start(api_client: Any, auth: dict[str, str], path: str, **kwargs: Any) -> dict[str, Any]:
    """POST a starter route; the 202 names the workflow, the starter's result names it too."""
    response = api_client.post(path, headers=auth, **kwargs)
    assert response.status_code == 202, response.text
    accepted = dict(response.json())
    starter = wait_state(api_client, accepted["task_id"], "SUCCESS", timeout=60)
    assert starter["result"]["status"] == "started"
    assert starter["result"]["workflow_id"] == accepted["workflow_id"]
    assert accepted["workflow_url"] == f"/api/workflows/{accepted['workflow_id']}"
    return {**accepted, "result_task_id": starter["result"]["result_task_id"]}


def test_weekly_reports_make_one_pdf_per_site_then_one_email(
    exports_worker: WorkerProcess, api_client: Any, auth: dict[str, str], smtp: SmtpServer
) -> None:
    # Given the weekly reports asked for on demand
    before = len(smtp.to(DIRECTION))
    started = _start(api_client, auth, "/api/tasks/export/weekly-reports?week_start=2025-12-31")

    # When the workflow ends, every site's PDF step succeeded and the e-mail step ran last
    flow = _workflow_end(api_client, started["workflow_url"])
    assert flow["state"] == "SUCCESS" and flow["policy"] == "continue", flow
    names = [step["name"] for step in flow["steps"]]
    assert names == ["site-LL", "site-LS", "site-MT", "email"]
    final = wait_state(api_client, started["result_task_id"], "SUCCESS")
    result = final["result"]
    assert result["week_start"] == "2025-12-29" and result["week_end"] == "2026-01-04"
    assert [r["site_code"] for r in result["reports"]] == ["LL", "LS", "MT"]
    for report in result["reports"]:
        pdf = api_client.get(report["pdf_url"], headers=auth)
        assert pdf.status_code == 200 and len(pdf.content) == report["file_size"]
    # Then exactly one e-mail went out, listing the three PDFs
    mails = wait_for(lambda: smtp.to(DIRECTION)[before:] or None, what="the weekly e-mail")
    assert len(mails) == 1 and result["email"]["status"] == "sent"
    text = mails[0].get_body(preferencelist=("plain",)).get_content()
    assert all(r["pdf_url"] in text for r in result["reports"]) and "échec" not in text


def test_a_failing_site_still_mails_the_others_and_fails_the_workflow(
    exports_worker: WorkerProcess, api_client: Any, smtp: SmtpServer
) -> None:
    # Given the weekly workflow over a site that does not exist (its PDF fails at once)
    from datetime import date

    before = len(smtp.to(DIRECTION))
    flow = weekly_flow(date(2025, 12, 29), ["LL", "ZZ"])
    submitted = submit_workflow(flow, name="weekly-reports", policy="continue")

    # When it ends: policy continue runs the e-mail step anyway, and the workflow is FAILURE
    ended = _workflow_end(api_client, f"/api/workflows/{submitted.workflow_id}")
    assert ended["state"] == "FAILURE" and ended["failed"] == 1, ended
    final = wait_state(api_client, submitted.steps["email"], "SUCCESS")
    assert [r["site_code"] for r in final["result"]["reports"]] == ["LL"]
    assert [f["step"] for f in final["result"]["failed"]] == ["site-ZZ"]
    # Then one e-mail lists LL's PDF and names the failed site
    mails = wait_for(lambda: smtp.to(DIRECTION)[before:] or None, what="the weekly e-mail")
    assert len(mails) == 1
    text = mails[0].get_body(preferencelist=("plain",)).get_content()
    assert "site-ZZ" in text and final["result"]["reports"][0]["pdf_url"] in text


def test_batch_export_zips_the_per_lot_files(
    exports_worker: WorkerProcess, api_client: Any, auth: dict[str, str]
) -> None:
    # Given a batch of three lots (one repeated)
    started = _start(
        api_client, auth, "/api/tasks/export/csv/lots", json={"lot_ids": [3005, 3001, 3005, 3002]}
    )

    # When the workflow ends, one CSV step per lot ran, then the ZIP
    flow = _workflow_end(api_client, started["workflow_url"])
    assert flow["state"] == "SUCCESS" and flow["policy"] == "fail_fast", flow
    assert [s["name"] for s in flow["steps"]] == ["lot-3005", "lot-3001", "lot-3002", "zip"]
    per_lot = {s["name"]: s["result"] for s in flow["steps"][:3]}
    result = wait_state(api_client, started["result_task_id"], "SUCCESS")["result"]
    assert result["lot_ids"] == [3005, 3001, 3002]
    # Then the ZIP holds lots.csv and, byte for byte, each step's CSV
    archive_bytes = api_client.get(result["file_url"], headers=auth).content
    assert sha256(archive_bytes) == result["sha256"]
    with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
        names = archive.namelist()
        assert names[0] == "lots.csv" and len(names) == 4
        index = list(csv.reader(io.TextIOWrapper(archive.open("lots.csv"), encoding="utf-8")))
        assert [row[0] for row in index[1:]] == ["3005", "3001", "3002"]
        for lot_id, name in zip((3005, 3001, 3002), names[1:], strict=True):
            assert name.startswith(f"lot_{lot_id}_")
            step = per_lot[f"lot-{lot_id}"]
            member = archive.read(name)
            assert member == api_client.get(step["file_url"], headers=auth).content
    assert result["rows"] == sum(step["rows"] for step in per_lot.values())


def test_a_failing_lot_stops_the_batch_before_the_zip(
    exports_worker: WorkerProcess, api_client: Any
) -> None:
    # Given the batch workflow over a lot that does not exist (its CSV step fails at once)
    submitted = submit_workflow(lots_zip_flow([3001, 99_999]), name="lots-zip", policy="fail_fast")

    # Then fail fast: the workflow is FAILURE and the ZIP step is never enqueued
    ended = _workflow_end(api_client, f"/api/workflows/{submitted.workflow_id}")
    assert ended["state"] == "FAILURE", ended
    steps = {s["name"]: s for s in ended["steps"]}
    assert steps["lot-99999"]["state"] == "FAILURE"
    assert "99999" in steps["lot-99999"]["error"]["message"]
    assert steps["zip"]["state"] == "WAITING"
