"""Provider batching (issue 21, part 6): routine e-mails requested within the batch window go
out in one SMTP session (real worker, real aiosmtpd), each exactly once by its key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from actors.notifications import SendEmail, send_email_batch
from ops.local_redis import RedisServer
from tests.support.notify import SmtpServer
from tests.support.polling import wait_for, wait_state
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mail_worker(redis_server: RedisServer, demo_database: str, smtp: SmtpServer) -> Iterator[None]:
    from runtime import broker

    broker().flush("notifications")
    env = {
        "NOTIFY_BACKEND": "live",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_SECURITY": "none",
        "EMAIL_RATE_PER_SECOND": "1000",
        "EMAIL_BATCH_WINDOW_MS": "400",
    }
    worker = WorkerProcess(
        redis_server.client, module="actors", queues=("notifications",), threads=2, env=env
    )
    yield
    worker.stop()


def _addresses(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"{tag}.{i}@example.org" for i in range(n)]


def test_a_bulk_email_goes_out_in_one_smtp_session(
    mail_worker: None, api_client: Any, auth: dict[str, str], smtp: SmtpServer
) -> None:
    # Given a bulk e-mail to 30 people (it fans out one item per recipient)
    recipients = _addresses(30)
    body = {"recipients": recipients, "subject": "Assemblée", "body_html": "<p>Jeudi</p>"}
    response = api_client.post("/api/tasks/notifications/bulk-email", json=body, headers=auth)
    assert response.status_code == 202, response.text
    wait_state(api_client, response.json()["task_id"], "SUCCESS")

    # Then everyone gets it once, and all 30 went through one SMTP connection
    wanted = set(recipients)
    wait_for(lambda: wanted <= {m["To"] for m in smtp.messages} or None, what="the 30 e-mails")
    assert all(len(smtp.to(address)) == 1 for address in recipients)
    assert len(smtp.sessions_to(wanted)) == 1


def test_items_added_in_the_window_share_one_run_and_go_out_once(
    mail_worker: None, api_client: Any, smtp: SmtpServer
) -> None:
    # Given five e-mails added within the window, each with its own key
    recipients = _addresses(5)
    items = [
        SendEmail(to_email=to, subject="Lot", body_html="<p>prêt</p>", key=uuid.uuid4().hex)
        for to in recipients
    ]
    added = [send_email_batch.add(item) for item in items]

    # Then they joined one run, which sent them in one session
    assert len({a.task_id for a in added}) == 1
    assert [a.duplicate for a in added] == [False, True, True, True, True]
    done = wait_state(api_client, added[0].task_id, "SUCCESS")
    assert done["result"]["emails"] == 5 and done["result"]["sent"] == 5
    assert len(smtp.sessions_to(set(recipients))) == 1
    assert "@example.org" not in str(done["args"])

    # When the same items are added again (a re-run of the job that fanned them out)
    again = [send_email_batch.add(item) for item in items]
    rerun = wait_state(api_client, again[0].task_id, "SUCCESS")

    # Then the outbox knows them: nothing is sent twice
    assert again[0].task_id != added[0].task_id
    assert rerun["result"]["already_sent"] == 5 and rerun["result"]["sent"] == 0
    assert all(len(smtp.to(address)) == 1 for address in recipients)
