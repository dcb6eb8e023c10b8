"""The overview's charts (from the per-minute counters) and its alerts (from a real Prometheus,
or a clear word when there is none)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from ops.local_redis import free_port
from runtime import State, records
from tests.api.console.test_auth import log_in
from tests.runtime.test_attempt_history import forget_counters
from tests.support.alerting import start_prometheus
from tests.support.polling import wait_for

RULES = {
    "groups": [
        {
            "name": "console-test",
            "rules": [
                {
                    "alert": "GaveursConsoleDrill",
                    "expr": "vector(1)",
                    "labels": {"severity": "critical", "queue": "exports"},
                    "annotations": {"summary": "a drill alert, always firing"},
                }
            ],
        }
    ]
}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus evaluating one always-firing rule every second."""
    tmp: Path = tmp_path_factory.mktemp("prometheus")
    (tmp / "rules.yml").write_text(yaml.safe_dump(RULES))
    config = {"global": {"evaluation_interval": "1s"}, "rule_files": ["rules.yml"]}
    process, url = start_prometheus(tmp, config)
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _client(demo_database: str, **settings: Any) -> Any:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from domain.platform.settings import Settings

    return TestClient(create_app(Settings(**settings)))


def _overview(client: Any) -> str:
    log_in(client)
    answer = client.get("/console/fragments/overview")
    assert answer.status_code == 200, answer.text
    return str(answer.text)


def test_firing_alerts_of_a_real_prometheus_are_listed(demo_database: str, prometheus: str) -> None:
    with _client(demo_database, prometheus_url=prometheus) as client:
        # When Prometheus has evaluated its rule, the overview lists the alert with its labels
        page = wait_for(
            lambda: text if "GaveursConsoleDrill" in (text := _overview(client)) else None,
            timeout=30,
            what="the drill alert on the overview",
        )
        assert 'data-alerts="ok"' in page
        assert "a drill alert, always firing" in page and "critical" in page


def test_no_prometheus_or_an_unreachable_one_is_said(demo_database: str) -> None:
    with _client(demo_database) as client:
        assert "Prometheus not configured" in _overview(client)
    dead = f"http://127.0.0.1:{free_port()}"
    with _client(demo_database, prometheus_url=dead) as client:
        page = _overview(client)
        assert 'data-alerts="unreachable"' in page and f"Prometheus unreachable at {dead}" in page


def test_charts_show_the_last_hour(demo_database: str, clean_redis: redis.Redis) -> None:
    # Given no counters, then one job of `exports` that ran for 3 s and succeeded
    forget_counters(clean_redis)
    task_id = uuid.uuid4().hex
    fields = {"task_id": task_id, "task_name": "export_pdf", "queue": "exports"}
    records().transition(task_id, State.PENDING, epoch=0, mode="create", fields=fields)
    seconds, micros = clean_redis.time()
    started = {"started_at": seconds * 1000 + micros // 1000 - 3_000, "delivery": "d1"}
    records().transition(task_id, State.STARTED, epoch=0, fields=started)
    records().transition(task_id, State.SUCCESS, epoch=0)
    # When the overview is drawn
    with _client(demo_database) as client:
        page = _overview(client)
    # Then its charts count it: by outcome, in its queue's rate, in the p95 (about 3 s)
    assert page.count("<svg") >= 2 + 5  # outcomes, p95, one sparkline per queue
    assert "1 SUCCESS, 0 RETRY, 0 FAILURE, 0 REVOKED" in page
    assert 'aria-label="exports: attempts ended per minute: 1 in the last 60 min' in page
    job_row = page.split('<tr data-job="export_pdf">')[1].split("</tr>")[0]
    assert "<td>1</td>" in job_row and " s</td>" in job_row, job_row
    p95 = page.split("data-p95>")[1].split("<")[0]
    assert p95.endswith(" s") and 2.5 <= float(p95.removesuffix(" s")) <= 3.6, p95
