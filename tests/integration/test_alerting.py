"""Alerts reach a person: a stopped worker and a filling queue end as an e-mail and a webhook call
naming the queue, the depth and the runbook, and as a resolved notice once the queue drains.

Real parts throughout: redis-server, `dramatiq` workers, the exporter, Prometheus evaluating
ops/prometheus/rules.yml, Alertmanager running the config `python -m ops.alerting render`
writes, aiosmtpd and an HTTP webhook receiver. Only waits are shortened (see
tests/support/alerting.py): each rule's `for:` is 2 s, scrapes and evaluations every second.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ops.local_redis import RedisServer, free_port
from tests.support import jobs
from tests.support.alerting import RUNBOOK_BASE, AlertingStack
from tests.support.polling import wait_for
from tests.support.workers import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
URGENT = "notifications_urgent"
QUEUES = ("default", URGENT)
THRESHOLD = 500  # ready messages, GaveursBacklogTooDeep in ops/prometheus/rules.yml
DEPTH = 600


def _flush() -> None:
    from runtime import broker

    for queue in QUEUES:
        broker().flush(queue)


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    # Fixed per queue so that a restarted worker is scraped at the same target.
    return {queue: free_port() for queue in QUEUES}


@pytest.fixture(scope="module")
def stack(
    redis_server: RedisServer, demo_database: str, tmp_path_factory: pytest.TempPathFactory,
    ports: dict[str, int],
) -> Iterator[AlertingStack]:  # fmt: skip
    _flush()
    stack = AlertingStack(tmp_path_factory.mktemp("alerting"), worker_ports=list(ports.values()))
    yield stack
    stack.stop()
    _flush()


def _worker(redis_server: RedisServer, queue: str, port: int) -> WorkerProcess:
    return WorkerProcess(
        redis_server.client, queues=(queue,), env={"dramatiq_prom_port": str(port)}
    )


def _scraped(stack: AlertingStack, queue: str, alive: int) -> bool:
    found = stack.query(f'gaveurs_workers_alive{{queue="{queue}"}} == {alive}')
    return bool(found)


def test_a_backlog_past_the_threshold_mails_and_calls_the_webhook_then_resolves(
    stack: AlertingStack, redis_server: RedisServer, ports: dict[str, int],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # Given a worker on `default`, seen alive by Prometheus,
    worker = _worker(redis_server, "default", ports["default"])
    wait_for(lambda: _scraped(stack, "default", 1), timeout=30, what="the worker in Prometheus")
    # when the worker stops and the queue fills past the backlog threshold,
    worker.stop()
    key = uuid.uuid4().hex[:8]
    crossed = 0.0
    for n in range(DEPTH):
        jobs.flaky.send(jobs.Flaky(key=f"{key}-{n}", failures=0))
        if n == THRESHOLD:  # the 501st message: the shipped rule's `> 500` holds from here
            crossed = time.monotonic()
    # then an e-mail names the alert, the queue, its depth and the runbook,
    mail, hooked = stack.notified("GaveursBacklogTooDeep", "firing", queue="default")
    to_mail_s = time.monotonic() - crossed
    assert "queue=default" in mail and "on default" in mail
    assert f"Queue default holds {DEPTH} ready messages" in mail
    assert f"Runbook: {RUNBOOK_BASE}docs/runbooks.md#gaveursbacklogtoodeep" in mail
    # and the webhook got the same alert.
    assert hooked["labels"]["queue"] == "default"
    assert hooked["labels"]["severity"] == "warning"
    assert hooked["annotations"]["runbook_url"] == "docs/runbooks.md#gaveursbacklogtoodeep"

    # When a worker drains the queue,
    drained = time.monotonic()
    worker = _worker(redis_server, "default", ports["default"])
    try:
        # then the resolved notice arrives by e-mail and by webhook.
        resolved, _ = stack.notified("GaveursBacklogTooDeep", "resolved", queue="default")
        to_resolved_s = time.monotonic() - drained
        assert "RESOLVED GaveursBacklogTooDeep queue=default" in resolved
    finally:
        worker.stop()
    with capsys.disabled():
        print(
            "\nalerting e2e (for: 2s, scrape/eval 1s, group_wait 1s): backlog threshold crossed"
            f" -> e-mail {to_mail_s:.1f} s; worker restarted -> resolved e-mail"
            f" {to_resolved_s:.1f} s"
        )


def test_no_consumer_on_urgent_notifications_pages_and_inhibits_the_age_alert(
    stack: AlertingStack, redis_server: RedisServer, ports: dict[str, int],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from actors.notifications import SendEmail, send_urgent_email
    from runtime import broker

    # Given no worker on `notifications_urgent`, seen so by Prometheus,
    wait_for(lambda: _scraped(stack, "notifications_urgent", 0), timeout=30, what="no worker")
    # when an urgent e-mail has waited there 20 minutes (past the 10 min age threshold too),
    payload = SendEmail(to_email="site-ll@coop.example", subject="Anomalie", body_html="<p>x</p>")
    message = send_urgent_email.message(payload)
    old = message.copy(message_timestamp=int((time.time() - 1200) * 1000))
    broker().enqueue(old)
    crossed = time.monotonic()
    # then the critical no-consumer alert pages by e-mail and webhook with its runbook,
    mail, hooked = stack.notified("GaveursQueueWithoutConsumer", "firing", queue=URGENT)
    to_mail_s = time.monotonic() - crossed
    assert "queue=notifications_urgent severity=critical" in mail
    assert f"{RUNBOOK_BASE}docs/runbooks.md#gaveursqueuewithoutconsumer" in mail
    assert hooked["labels"]["queue"] == "notifications_urgent"
    # and the backlog-age alert, firing in Prometheus for the same queue, is held back.
    aged = wait_for(
        lambda: [
            a
            for a in stack.alertmanager_alerts("GaveursBacklogTooOld")
            if a["labels"]["queue"] == "notifications_urgent"
        ],
        timeout=30,
        what="the age alert in Alertmanager",
    )
    assert aged[0]["labels"]["queue"] == "notifications_urgent"
    assert aged[0]["status"]["state"] == "suppressed"
    assert aged[0]["status"]["inhibitedBy"]
    assert not stack.mails("GaveursBacklogTooOld", "firing", queue=URGENT)
    assert not stack.webhook.alerts("GaveursBacklogTooOld", "firing", queue=URGENT)

    # When its worker starts and sends the e-mail,
    worker = _worker(redis_server, "notifications_urgent", ports["notifications_urgent"])
    try:
        # then the page resolves.
        resolved, _ = stack.notified("GaveursQueueWithoutConsumer", "resolved", queue=URGENT)
        assert "queue=notifications_urgent" in resolved
    finally:
        worker.stop()
    with capsys.disabled():
        print(f"\nalerting e2e: no consumer on notifications_urgent -> page {to_mail_s:.1f} s")


def test_the_chain_used_the_shipped_rules(stack: AlertingStack) -> None:
    # The rules Prometheus evaluated are the shipped ones, `for:` aside: same names, expressions,
    # labels and annotations (a test copy drifting from rules.yml would prove nothing).
    shipped = yaml.safe_load((ROOT / "ops" / "prometheus" / "rules.yml").read_text())
    expected = {r["alert"]: r for g in shipped["groups"] for r in g["rules"]}
    with urllib.request.urlopen(f"{stack.prometheus_url}/api/v1/rules") as response:
        groups = json.loads(response.read())["data"]["groups"]
    loaded = {r["name"]: r for g in groups for r in g["rules"]}
    assert set(loaded) == set(expected)
    for name, rule in loaded.items():
        assert "".join(rule["query"].split()) == "".join(expected[name]["expr"].split()), name
        assert rule["labels"] == expected[name]["labels"], name
        assert rule["annotations"] == expected[name]["annotations"], name
        assert rule["duration"] == (2 if "for" in expected[name] else 0), name
