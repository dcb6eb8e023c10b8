"""Dashboards valid against Grafana's schema, and every metric they and the alert rules (those of
Prometheus and of Grafana) use is really exported: live scrapes of a worker's metrics port, the
exporter process and the API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis
import yaml

from ops.local_redis import RedisServer, free_port
from scheduler.state import ScheduleState
from tests.support import jobs
from tests.support.polling import wait_for
from tests.support.workers import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "ops" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
METRIC = re.compile(r"\b((?:gaveurs|dramatiq)_[a-z_]+)")


def _dashboard(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_validates_against_grafanas_schema(path: Path) -> None:
    schema = json.loads((GRAFANA / "schema" / "dashboard.jsonschema.json").read_text())
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(_dashboard(path)), key=lambda e: e.path
    )
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_dashboards_have_the_promised_panels_and_variables() -> None:
    by_uid = {d["uid"]: d for d in map(_dashboard, DASHBOARDS)}
    assert set(by_uid) == {"gaveurs-overview", "gaveurs-actor"}
    for dashboard in by_uid.values():
        names = {v["name"] for v in dashboard["templating"]["list"]}
        assert {"datasource", "queue"} <= names
    assert "actor" in {v["name"] for v in by_uid["gaveurs-actor"]["templating"]["list"]}
    titles = " | ".join(p["title"].lower() for p in by_uid["gaveurs-overview"]["panels"])
    for topic in ("throughput", "failure rate", "backlog", "backlog age", "p99", "dead letters",
                  "workers", "scheduler"):  # fmt: skip
        assert topic in titles, topic
    # Alert annotations link to dashboards that exist.
    rules = yaml.safe_load((ROOT / "ops" / "prometheus" / "rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            uid = rule["annotations"]["dashboard"].split("/")[2]
            assert uid in by_uid, rule["alert"]


def _used_metrics() -> set[str]:
    texts = [path.read_text() for path in DASHBOARDS]
    texts.append((ROOT / "ops" / "prometheus" / "rules.yml").read_text())
    # Grafana alert rules' queries, too (ops/grafana/provisioning/alerting/).
    texts += [p.read_text() for p in (GRAFANA / "provisioning" / "alerting").glob("*.yml")]
    return {name for text in texts for name in METRIC.findall(text)}


def _scrape(url: str) -> set[str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"
    }


def test_every_metric_used_by_dashboards_and_alerts_is_exported(
    redis_server: RedisServer, demo_database: str, api_client: Any, auth: dict[str, str],
    clean_redis: redis.Redis,
) -> None:  # fmt: skip
    # Given a worker that ran a success, a retry, a dead letter and a delayed job,
    worker = WorkerProcess(redis_server.client)
    exporter_port = free_port()
    exporter = subprocess.Popen(
        [sys.executable, "-m", "ops.exporter"],
        cwd=ROOT,
        env={**os.environ, "EXPORTER_PORT": str(exporter_port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        key = uuid.uuid4().hex[:10]
        ids = [
            jobs.slow.send(jobs.Slow(key=key, seconds=0.1)).message_id,
            jobs.flaky.send(jobs.Flaky(key=key + "f", failures=1)).message_id,
            jobs.broken.send(jobs.Keyed(key=key + "b")).message_id,
            jobs.slow.send(jobs.Slow(key=key + "d", seconds=0.1), delay_ms=200).message_id,
        ]
        from runtime import records

        wait_for(
            lambda: all((r := records().get(i)) and not r.active for i in ids),
            timeout=30,
            what="the four jobs",
        )
        # a clock beat and a skipped run, and API traffic (an enqueue and an error),
        state = ScheduleState(clean_redis)
        state.beat("test-clock")
        state.mark_skipped("health-check-periodic", "test")
        api_client.post("/api/tasks/maintenance/refresh-aggregates", headers=auth)
        api_client.get("/api/tasks/status/unknown")
        # when the worker port, the exporter and the API are scraped,
        # (Dramatiq's CLI forks the worker's metrics server after the worker is up: wait for it.)
        exported = wait_for(
            lambda: _safe_scrape(f"http://127.0.0.1:{worker.metrics_port}/metrics"),
            what="the worker's metrics",
        )
        exported |= wait_for(
            lambda: _safe_scrape(f"http://127.0.0.1:{exporter_port}/metrics"), what="exporter"
        )
        exported |= {
            line.split("{")[0].split(" ")[0]
            for line in api_client.get("/metrics/").text.splitlines()
            if line and line[0] != "#"
        }
    finally:
        exporter.terminate()
        exporter.wait(timeout=10)
        worker.stop()
    # then every metric a dashboard or an alert rule queries is among the exported series.
    # (The Sentinel series exist only with REDIS_SENTINELS: the failover test scrapes them,
    # tests/reliability/test_sentinel_failover.py.)
    missing = sorted(name for name in _used_metrics() - SENTINEL_ONLY if name not in exported)
    assert not missing, missing


SENTINEL_ONLY = {"gaveurs_redis_sentinel_master_epoch", "gaveurs_redis_sentinel_master_ok"}


def _safe_scrape(url: str) -> set[str] | None:
    try:
        return _scrape(url)
    except OSError:
        time.sleep(0.2)
        return None
