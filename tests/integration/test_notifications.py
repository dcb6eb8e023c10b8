"""Notifications end to end: HTTP API -> real worker processes -> real SMTP and SMS servers."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from actors.notifications import SendEmail, send_email
from ops.local_redis import RedisServer
from runtime import BREAKER_PREFIX
from tests.support.notify import SmsProvider, SmtpServer
from tests.support.polling import wait_for, wait_state
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workers(
    redis_server: RedisServer, demo_database: str, smtp: SmtpServer, provider: SmsProvider
) -> Iterator[None]:
    """Like the Procfile: one worker for bulk `notifications`, one for `notifications_urgent`.

    Other modules leave notification jobs queued (anomaly alerts sent by ML and ingest tests,
    with no notification worker running then): dropped first, so only this module's jobs reach
    the SMS provider whose requests these tests count."""
    from runtime import broker

    for queue in ("notifications", "notifications_urgent"):
        broker().flush(queue)
    env = {
        "NOTIFY_BACKEND": "live",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_SECURITY": "none",
        "SMS_TIMEOUT_S": "0.5",
        "NOTIFY_RETRY_MIN_BACKOFF_MS": "200",
        "NOTIFY_MAX_RETRIES": "30",
        "BREAKER_FAILURE_THRESHOLD": "3",
        "BREAKER_OPEN_S": "1",
        "EMAIL_RATE_PER_SECOND": "1000",
        **provider.env(),
    }
    bulk = WorkerProcess(
        redis_server.client, module="actors", queues=("notifications",), threads=2, env=env
    )
    urgent = WorkerProcess(
        redis_server.client, module="actors", queues=("notifications_urgent",), threads=2, env=env
    )
    yield
    bulk.stop()
    urgent.stop()


@pytest.fixture(autouse=True)
def healthy(provider: SmsProvider, redis_server: RedisServer) -> None:
    provider.mode = "ok"
    redis_server.client.delete(BREAKER_PREFIX + "sms", BREAKER_PREFIX + "sms:probe")


def number() -> str:
    return f"+3361{uuid.uuid4().int % 10_000_000:07d}"


def post(api_client: Any, auth: dict[str, str], path: str, **kwargs: Any) -> dict[str, Any]:
    response = api_client.post(f"/api/tasks/notifications/{path}", headers=auth, **kwargs)
    assert response.status_code == 202, response.text
    return dict(response.json())


def test_email_is_delivered_multipart_and_masked_in_the_record(
    workers: None, api_client: Any, auth: dict[str, str], smtp: SmtpServer
) -> None:
    to = f"{uuid.uuid4().hex[:8]}@example.org"
    body = {"to_email": to, "subject": "Bonjour", "body_html": "<p>Message <b>test</b></p>"}
    submitted = post(api_client, auth, "email", json=body)
    done = wait_state(api_client, submitted["task_id"], "SUCCESS")
    received = smtp.to(to)
    assert len(received) == 1 and received[0].is_multipart()
    assert {p.get_content_type() for p in received[0].walk()} >= {"text/plain", "text/html"}
    assert to not in str(done["args"]) and to not in str(done["result"])
    assert submitted["to_email"].startswith(to[0] + "***@")


def test_provider_down_opens_the_breaker_then_every_sms_is_delivered_once(
    workers: None,
    api_client: Any,
    auth: dict[str, str],
    provider: SmsProvider,
    redis_server: RedisServer,
) -> None:
    provider.mode = "down"
    numbers = [number() for _ in range(5)]
    tasks = [
        post(api_client, auth, "sms", json={"phone": n, "message": "coupure", "priority": "low"})
        for n in numbers
    ]
    key = BREAKER_PREFIX + "sms"
    wait_for(
        lambda: int(redis_server.client.hget(key, "failures") or 0) >= 3, what="breaker to open"
    )
    # While open, jobs wait instead of calling: at most a probe per open period gets through.
    before = provider.requests
    time.sleep(0.8)
    assert provider.requests - before <= 2
    provider.mode = "ok"
    for task in tasks:
        done = wait_state(api_client, task["task_id"], "SUCCESS", timeout=60)
        assert done["attempts"] > 1
    assert [len(provider.deliveries_to(n)) for n in numbers] == [1] * 5
    assert not redis_server.client.exists(key)


def test_invalid_number_is_dead_lettered_with_the_reason_without_retry(
    workers: None, api_client: Any, auth: dict[str, str], provider: SmsProvider
) -> None:
    provider.mode = "400"
    phone = number()
    task = post(api_client, auth, "sms", json={"phone": phone, "message": "x"})
    failed = wait_state(api_client, task["task_id"], "FAILURE")
    assert failed["attempts"] == 1
    assert (
        failed["error"].startswith("ProviderRejected: SMS API 400") and "21211" in failed["error"]
    )
    assert phone not in failed["error"] and phone not in str(failed["args"])
    # Nor in the worker's log, where Dramatiq writes a failed message with its arguments (the
    # line reaches the file through Dramatiq's main process, maybe after the record's FAILURE)
    log = Path(os.environ["GAVEURS_TEST_TMP"]) / "worker.log"
    wait_for(
        lambda: "Failed to process message send_sms[" in log.read_text(),
        timeout=10,
        what="the worker's log of the failure",
    )
    assert phone not in log.read_text()


def test_a_number_that_cannot_exist_is_refused_by_the_api(
    api_client: Any, auth: dict[str, str]
) -> None:
    response = api_client.post(
        "/api/tasks/notifications/sms", headers=auth, json={"phone": "12345", "message": "x"}
    )
    assert response.status_code == 422 and "invalid phone number" in response.text


def test_a_send_that_timed_out_after_delivering_is_not_sent_twice(
    workers: None, api_client: Any, auth: dict[str, str], provider: SmsProvider
) -> None:
    provider.mode = "slow"  # delivers, then answers after the worker's 0.5 s timeout
    phone = number()
    task = post(api_client, auth, "sms", json={"phone": phone, "message": "une seule fois"})
    # This job's own first attempt delivered (another test's late retry must not count).
    wait_for(lambda: provider.deliveries_to(phone), what="first attempt")
    provider.mode = "ok"
    done = wait_state(api_client, task["task_id"], "SUCCESS")
    assert done["attempts"] >= 2 and done["result"]["status"] == "already_sent"
    assert len(provider.deliveries_to(phone)) == 1


def test_critical_anomaly_alert_reaches_site_people_by_email_and_sms(
    workers: None, api_client: Any, auth: dict[str, str], smtp: SmtpServer
) -> None:
    from domain.models import Site
    from domain.notify.messages import site_recipients
    from domain.platform import db
    from domain.platform.settings import get_settings

    with db.session_factory(db.make_engine(get_settings().database_url))() as session:
        site = session.query(Site).first()
        assert site is not None
        people = site_recipients(session, site)
    title = f"Mortalité {uuid.uuid4().hex[:6]}"
    alert = {
        "site_code": site.code,
        "severity": "critical",
        "title": title,
        "anomalies": [{"kind": "mortality", "ref": "L1", "score": 0.9, "description": "pic"}],
    }
    task = post(api_client, auth, "anomaly-alert", json=alert)
    done = wait_state(api_client, task["task_id"], "SUCCESS")
    assert done["queue"] == "notifications_urgent"
    assert done["result"]["emails"] == done["result"]["sms"] == len(people)
    wait_for(
        lambda: len([m for m in smtp.messages if title in str(m["Subject"])]) == len(people),
        what="alert e-mails",
    )


def test_critical_sms_starts_within_a_second_behind_1000_bulk_emails(
    workers: None, api_client: Any, auth: dict[str, str], redis_server: RedisServer
) -> None:
    for i in range(1000):
        send_email.send(
            SendEmail(to_email=f"bulk{i}@example.org", subject="Lettre", body_html="<p>x</p>")
        )
    task = post(
        api_client,
        auth,
        "sms",
        json={"phone": number(), "message": "urgent", "priority": "critical"},
    )
    done = wait_state(api_client, task["task_id"], "SUCCESS")
    assert done["queue"] == "notifications_urgent"
    from runtime import records

    record = records().get(task["task_id"])
    assert record is not None and record.started_at and record.enqueued_at
    assert record.started_at - record.enqueued_at < 1000
    from runtime import broker

    broker().flush("notifications")


def test_no_phone_address_or_name_is_stored_in_clear_in_redis(
    workers: None,
    api_client: Any,
    auth: dict[str, str],
    smtp: SmtpServer,
    redis_server: RedisServer,
) -> None:
    """Every notification kind, then a scan of every key in Redis and of an uncompressed RDB
    dump for the people's numbers, addresses and names (issue 20, part 5)."""
    from actors.notifications import SendSms, send_sms
    from domain.models import JournalEntry, Site, WorkflowJournalEntry
    from domain.notify.messages import site_recipients
    from domain.platform import db
    from domain.platform.settings import get_settings
    from runtime import flush_journal

    marker = uuid.uuid4().hex[:8]
    name = f"Zoé Témoin-{marker}"
    phones = [number(), number(), number()]
    emails = [f"{marker}-{i}@example.org" for i in range(4)]
    with db.session_factory(db.make_engine(get_settings().database_url))() as session:
        site = session.query(Site).first()
        assert site is not None
        assert site_recipients(session, site), "the alert fans out to somebody"
    # The bytes a message carries to Redis: sealed fields only
    raw = send_sms.message(SendSms(phone=phones[0], message=f"Bonjour {name}")).encode()
    assert phones[0].encode() not in raw and name.encode() not in raw
    html = f"<p>{name}</p>"
    alert = {
        "site_code": site.code,
        "severity": "critical",
        "title": f"Alerte {marker}",
        "anomalies": [{"kind": "mortality", "ref": "L1", "score": 0.9, "description": "pic"}],
    }
    requests = [
        ("sms", {"phone": phones[0], "message": f"Lot de {name}"}),
        ("sms", {"phone": phones[1], "message": name, "priority": "critical"}),
        ("email", {"to_email": emails[0], "subject": name, "body_html": html}),
        ("bulk-email", {"recipients": emails[1:], "subject": name, "body_html": html}),
        ("anomaly-alert", alert),
    ]
    tasks = [post(api_client, auth, path, json=body) for path, body in requests]
    # and a workflow whose steps carry a person's number, address and name (its graph is kept
    # in the database's workflow_journal, its steps' messages in Redis)
    workflow_email = f"{marker}-workflow@example.org"
    flow = {
        "name": "notify-person",
        "steps": [
            {"name": "sms", "job": "send_sms", "payload": {"phone": phones[2], "message": name}},
            {
                "name": "mail",
                "job": "send_email",
                "payload": {"to_email": workflow_email, "subject": name, "body_html": html},
                "depends_on": ["sms"],
            },
        ],
    }
    submitted = api_client.post("/api/workflows", json=flow, headers=auth)
    assert submitted.status_code == 202, submitted.text
    steps = submitted.json()["steps"]
    for task_id in [*(task["task_id"] for task in tasks), *steps.values()]:
        wait_state(api_client, task_id, "SUCCESS", timeout=60)
    wait_for(lambda: len(smtp.to(emails[3])) == 1, what="the bulk e-mails")
    assert len(smtp.to(workflow_email)) == 1
    # Workflow steps' records say who submitted them, as every job record does
    for task_id in steps.values():
        assert api_client.get(f"/api/tasks/status/{task_id}").json()["client"] == "api-token"
    # (Only this test's own values: other tests plant the demo's people in Redis on purpose.)
    secrets = {*phones, *emails, workflow_email, name}
    # Then no key, field or list item holds one in clear (records, results, queues, dead
    # letters, batches, outbox keys)...
    client = redis_server.client
    found = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            values = [client.get(key) or b""]
        elif kind == b"hash":
            values = [v for pair in client.hgetall(key).items() for v in pair]
        elif kind == b"list":
            values = client.lrange(key, 0, -1)
        elif kind in (b"set", b"zset"):
            values = list(client.smembers(key)) if kind == b"set" else client.zrange(key, 0, -1)
        else:
            values = []
        blob = b"\n".join([key, *values])
        found += [(key, s) for s in secrets if s.encode() in blob]
    assert not found, found[:5]
    # ...nor the snapshot Redis writes to disk (uncompressed, so a string could not hide)
    client.config_set("rdbcompression", "no")
    client.save()
    dump = (
        Path(client.config_get("dir")["dir"]) / client.config_get("dbfilename")["dbfilename"]
    ).read_bytes()
    assert not [s for s in secrets if s.encode() in dump]
    # The database journals hold the same messages: the workflow's graph and each job's body
    assert flush_journal()
    with db.session_factory(db.make_engine(get_settings().database_url))() as session:
        graphs = session.scalars(select(WorkflowJournalEntry.graph)).all()
        bodies = session.scalars(select(JournalEntry.body)).all()
    assert any(task_id in graph for graph in graphs for task_id in steps.values())
    stored = "\n".join([*graphs, *bodies])
    assert not [s for s in secrets if s in stored]
