"""The processing audit trail end to end: a named client asks a real worker to thank a consumer;
the trail says who processed whose data, once, and the API and the CLI read it back."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from domain.models import ConsumerFeedback, Lot
from domain.platform import db
from ops.cli import app
from ops.local_redis import RedisServer
from tests.support.polling import wait_for, wait_state
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def notifier(redis_server: RedisServer, demo_database: str, tmp_root: Path) -> Iterator[None]:
    from runtime import broker

    broker().flush("notifications")
    worker = WorkerProcess(
        redis_server.client,
        module="actors",
        queues=("notifications",),
        threads=2,
        env={"NOTIFY_BACKEND": "file", "OUTBOX_DIR": str(tmp_root / "audit-outbox")},
    )
    yield
    worker.stop()


def _new_feedback() -> tuple[int, str]:
    """A consumer feedback of its own (another test may have thanked the demo's already)."""
    address = f"conso-{uuid.uuid4().hex[:8]}@example.org"
    with Session(db.make_engine(os.environ["DATABASE_URL"])) as session, session.begin():
        lot_id = session.scalars(select(Lot.id).order_by(Lot.id).limit(1)).one()
        row = ConsumerFeedback(
            lot_id=lot_id, rating=5, texture=5, taste=5, comment="Parfait", consumer_email=address
        )
        session.add(row)
        session.flush()
        return row.id, address


def _trail(api_client: Any, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    response = api_client.get("/api/audit", params=params, headers=headers)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def test_a_feedback_ack_is_audited_once_under_its_client_and_read_back(
    notifier: None, api_client: Any, admin_auth: dict[str, str]
) -> None:
    # Given a named client of the quality team
    name = f"quality-{uuid.uuid4().hex[:6]}"
    created = api_client.post(
        "/api/clients", json={"name": name, "scopes": ["jobs:write"]}, headers=admin_auth
    )
    token = {"Authorization": f"Bearer {created.json()['token']}"}
    feedback_id, address = _new_feedback()
    path = f"/api/tasks/notifications/feedback-ack?feedback_id={feedback_id}"

    # When it asks for the consumer to be thanked, twice (the second finds the e-mail sent)
    for _ in range(2):
        accepted = api_client.post(path, headers=token)
        assert accepted.status_code == 202, accepted.text
        assert wait_state(api_client, accepted.json()["task_id"], "SUCCESS")["client"] == name

    # Then the trail holds one processing, on the feedback and on the address (hashed)
    mine = _trail(api_client, admin_auth, client=name)
    assert {e["subject"].split(":")[0] for e in mine} == {"feedback", "email"}
    assert all(
        e["job"] == "send_feedback_ack" and e["purpose"] == "feedback acknowledgement" for e in mine
    )
    assert len(mine) == 2 and address not in json.dumps(mine)
    # found by the person's address or feedback, within a window, and by the CLI too
    by_address = _trail(api_client, admin_auth, subject=f"email:{address.upper()}")
    assert name in {e["client"] for e in by_address}
    by_feedback = _trail(api_client, admin_auth, subject=f"feedback:{feedback_id}", to="2000-01-01")
    assert by_feedback == []
    printed = CliRunner().invoke(app, ["audit", "--client", name, "--json"])
    assert printed.exit_code == 0, printed.output
    assert [e["subject"] for e in json.loads(printed.output)] == [e["subject"] for e in mine]

    # A client without audit:read may not read the trail; a bad subject is a clear 422
    assert api_client.get("/api/audit", headers=token).status_code == 403
    bad = api_client.get("/api/audit", params={"subject": "lot:1"}, headers=admin_auth)
    assert bad.status_code == 422 and "gaveur:" in bad.json()["detail"]


def test_an_email_sent_twice_under_one_key_is_audited_once(
    notifier: None, api_client: Any, auth: dict[str, str], admin_auth: dict[str, str]
) -> None:
    from actors.notifications import SendEmail, send_email

    to = f"{uuid.uuid4().hex[:8]}@example.org"
    key = uuid.uuid4().hex
    sent = [
        send_email.send(SendEmail(to_email=to, subject="s", body_html="<p>b</p>", key=key))
        for _ in range(2)
    ]
    for message in sent:
        wait_state(api_client, message.message_id, "SUCCESS")
    wait_for(lambda: _trail(api_client, admin_auth, subject=f"email:{to}"), what="the audit entry")
    entries = _trail(api_client, admin_auth, subject=f"email:{to}")
    assert len(entries) == 1 and entries[0]["task_id"] in {m.message_id for m in sent}
