"""Erasure end to end: a person seeded everywhere (database, notifications sent by a real
worker, written e-mails, a dead letter, job records, an export file, the search index) is
erased through the admin API as a job, and no trace of their name, phone or e-mail is left in
Redis, the database or the export and outbox directories."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from actors.notifications import SendEmail, SendSms, send_email, send_sms
from domain.models import ConsumerFeedback, Gaveur, Lot, Site
from domain.platform import db
from ops.local_redis import RedisServer
from tests.support import jobs
from tests.support.polling import wait_for, wait_state
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def erasure_worker(redis_server: RedisServer, demo_database: str, tmp_root: Path) -> Iterator[Path]:
    from runtime import broker

    # Earlier modules can leave jobs queued with no worker then (bulk e-mails, alerts): this
    # worker would run them first, and the erasure's own jobs would wait behind them.
    for queue in ("default", "notifications"):
        broker().flush(queue)
    # Unique jobs flushed with their queue (index_changes after an earlier test's writes) would
    # keep their keys, and a new request would get back a run that never starts.
    for key in redis_server.client.scan_iter("gaveurs:unique:*"):
        redis_server.client.delete(key)
    outbox = tmp_root / "erasure-outbox"
    worker = WorkerProcess(
        redis_server.client,
        queues=("default", "notifications"),
        env={"NOTIFY_BACKEND": "file", "OUTBOX_DIR": str(outbox)},
    )
    yield outbox
    worker.stop()


def _engine() -> Any:
    return db.make_engine(os.environ["DATABASE_URL"])


def _seed_person() -> tuple[int, dict[str, str]]:
    tag = uuid.uuid4().hex[:8]
    person = {
        "name": f"Zéphirine Quatrebarbe{tag}",
        "last_name": f"Quatrebarbe{tag}",
        "email": f"zephirine.{tag}@example.org",
        "phone": f"+3361{int(tag, 16) % 10_000_000:07d}",
    }
    with Session(_engine()) as session, session.begin():
        site_id = session.scalars(select(Site.id).order_by(Site.id).limit(1)).one()
        gaveur = Gaveur(
            site_id=site_id,
            code=f"G{tag}"[:16],
            first_name="Zéphirine",
            last_name=person["last_name"],
            phone=person["phone"],
            email=person["email"],
        )
        session.add(gaveur)
        lot_id = session.scalars(select(Lot.id).order_by(Lot.id).limit(1)).one()
        # also a consumer, with a comment signed with her name
        session.add(
            ConsumerFeedback(
                lot_id=lot_id,
                rating=4,
                texture=4,
                taste=5,
                comment=f"Très bon — {person['name']}",
                consumer_email=person["email"],
            )
        )
        session.flush()
        return gaveur.id, person


def _redis_text(client: redis.Redis) -> str:
    """Every key and value of the test Redis, as text."""
    chunks = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        chunks.append(key.decode("utf-8", "replace"))
        if kind == "string":
            value: Any = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "zset":
            value = client.zrange(key, 0, -1)
        elif kind == "set":
            value = client.smembers(key)
        else:
            continue
        chunks.append(repr(value))
    return "\n".join(chunks)


def _database_text() -> str:
    engine = _engine()
    chunks = []
    with engine.connect() as connection:
        for table in inspect(engine).get_table_names():
            chunks += [
                repr(tuple(row)) for row in connection.execute(text(f'SELECT * FROM "{table}"'))
            ]
    return "\n".join(chunks)


def _files_text(*roots: Path) -> str:
    return "\n".join(
        path.read_bytes().decode("utf-8", "replace")
        for root in roots
        if root.is_dir()
        for path in root.rglob("*")
        if path.is_file()
    )


def _traces(person: dict[str, str]) -> list[str]:
    return [person["last_name"].lower(), person["email"].lower(), person["phone"]]


def _left(haystack: str, person: dict[str, str]) -> list[str]:
    lowered = haystack.lower()
    return [trace for trace in _traces(person) if trace in lowered]


def test_an_erased_person_leaves_no_trace(
    erasure_worker: Path,
    api_client: Any,
    admin_auth: dict[str, str],
    redis_server: RedisServer,
    tmp_root: Path,
) -> None:
    from runtime import State, records

    gaveur_id, person = _seed_person()
    export_dir = Path(os.environ["EXPORT_DIR"])
    # Given her data everywhere: notifications sent (outbox rows, written e-mails, journal),
    sent = [
        send_email.send(
            SendEmail(
                to_email=person["email"], subject="Bonjour", body_html=f"<p>{person['name']}</p>"
            )
        ),
        send_sms.send(SendSms(phone=person["phone"], message=f"Bonjour {person['name']}")),
        # a job whose result names her, and a dead letter whose payload and error carry her address
        jobs.broken.send(jobs.Keyed(key=person["email"])),
    ]
    for message in sent[:2]:
        wait_state(api_client, message.message_id, "SUCCESS", timeout=60)
    wait_for(
        lambda: (r := records().get(sent[2].message_id)) is not None and r.state == State.FAILURE,
        timeout=60,
        what="the dead letter",
    )
    # an export file that names her, and the search index (feedback comments)
    (export_dir / "csv").mkdir(parents=True, exist_ok=True)
    (export_dir / "csv" / f"gaveurs_{uuid.uuid4().hex[:6]}.csv").write_text(
        f"code;nom\nG1;{person['name']}\n"
    )
    indexed = api_client.post("/api/tasks/search/index-changes", headers=admin_auth)
    wait_state(api_client, indexed.json()["task_id"], "SUCCESS", timeout=60)
    before = _left(_redis_text(redis_server.client), person) + _left(_database_text(), person)
    assert set(before) == set(_traces(person)), "the seeding missed a store"
    assert _left(_files_text(export_dir, erasure_worker), person)

    # (the test job's own attempt counters are named after its key: not the platform's data)
    redis_server.client.delete(
        *(f"{jobs.PREFIX}{kind}:{person['email']}" for kind in ("attempts", "count"))
    )

    # What we hold on her can be exported first
    exported = api_client.post(
        "/api/gdpr/export", json={"gaveur_id": gaveur_id}, headers=admin_auth
    )
    assert exported.status_code == 200, exported.text
    assert exported.json()["gaveurs"][0]["email"] == person["email"]

    # When the admin erases her (by address: she is a gaveur and a consumer)
    erased = api_client.post("/api/gdpr/erase", json={"email": person["email"]}, headers=admin_auth)
    assert erased.status_code == 202, erased.text
    done = wait_state(api_client, erased.json()["task_id"], "SUCCESS", timeout=60)
    assert (
        done["result"]["erased"]["gaveurs"] == 1 and done["result"]["erased"]["dead_letters"] == 1
    )

    # Then no trace of her name, phone or e-mail is left anywhere
    assert _left(_redis_text(redis_server.client), person) == []
    assert _left(_database_text(), person) == []
    assert _left(_files_text(export_dir, erasure_worker), person) == []
    # her gaveur row stays, anonymised, and the erasure is in the audit trail
    with Session(_engine()) as session:
        row = session.get_one(Gaveur, gaveur_id)
        assert (row.first_name, row.email, row.active) == ("Gaveur", "", False)
    trail = api_client.get(
        "/api/audit", params={"subject": f"gaveur:{gaveur_id}"}, headers=admin_auth
    ).json()["entries"]
    assert [e["purpose"] for e in trail][-1] == "erasure"
    assert json.dumps(trail).lower().count(person["email"]) == 0


def test_unknown_people_are_404_and_bad_requests_422(
    api_client: Any, admin_auth: dict[str, str], demo_database: str
) -> None:
    unknown = api_client.post("/api/gdpr/erase", json={"gaveur_id": 999_999}, headers=admin_auth)
    assert unknown.status_code == 404
    nobody = api_client.post(
        "/api/gdpr/erase", json={"email": "nobody-at-all@example.org"}, headers=admin_auth
    )
    assert nobody.status_code == 404 and "no data" in nobody.json()["detail"]
    both = api_client.post(
        "/api/gdpr/erase", json={"gaveur_id": 1, "email": "a@b.example"}, headers=admin_auth
    )
    assert both.status_code == 422
