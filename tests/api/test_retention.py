"""The retention report says what this deployment's settings keep, and the README agrees."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from api.routers.retention import retention
from domain.platform.retention import personal_data_stores
from domain.platform.settings import DAY_S, Settings
from runtime import REGISTRY
from scheduler.schedule import SCHEDULE

ROOT = Path(__file__).resolve().parents[2]


def test_the_route_answers_with_the_servers_settings(api_client: Any) -> None:
    answer = api_client.get("/api/retention")
    assert answer.status_code == 200
    stores = {s["name"]: s for s in answer.json()["stores"]}
    assert stores["job records"]["kept_s"] == Settings().job_retention_s
    assert stores["notification outbox"]["schedule"] == "0 4 * * *"


def test_the_report_follows_the_settings() -> None:
    # Given a deployment that keeps things for other periods than the defaults
    settings = Settings(
        job_retention_s=3600,
        outbox_retention_days=30,
        dead_letter_ttl_ms=2 * DAY_S * 1000,
        result_ttl_ms=60_000,
        export_retention_days=3,
        backup_keep=4,
        feedback_retention_days=400,
    )
    # (the route's function: another app here would set the session's runtime up again)
    stores = {s["name"]: s for s in retention(settings)["stores"]}
    # Then the report says so, store by store
    expected = {
        "job journal": 3600,
        "job records": 3600,
        "notification outbox": 30 * DAY_S,
        "dead letters": 2 * DAY_S,
        "job results": 60,
        "reports and exports": 3 * DAY_S,
        "database backups": 4 * DAY_S,
        "consumer feedback": 400 * DAY_S,
        "workflow journal": 3600,
        "notification files": 30 * DAY_S,
    }
    assert {name: stores[name]["kept_s"] for name in expected} == expected
    assert stores["reports and exports"]["kept_days"] == 3
    # and each deleting job exists and is on the schedule, with its cron
    scheduled = {entry.actor: entry.cron for entry in SCHEDULE}
    for store in stores.values():
        deleter = store["deleted_by"]
        if deleter in REGISTRY:
            assert store["schedule"] == scheduled[deleter], store
        elif store["kept_s"] is not None:
            assert deleter in ("Redis expiry",), store
        # the setting it names is a real one
        if store["setting"]:
            assert store["setting"].lower() in Settings.model_fields, store


def test_the_readme_table_lists_every_store() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("**Retention.**", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    names = [re.split(r"\s*\|\s*", row)[1] for row in rows[1:]]
    assert names == [store.name for store in personal_data_stores(Settings())]
    for store in personal_data_stores(Settings()):
        row = next(r for r in rows if r.startswith(f"| {store.name} |"))
        if store.setting:
            assert store.setting in row, row
        if store.deleted_by in REGISTRY:
            assert f"`{store.deleted_by}`" in row, row
