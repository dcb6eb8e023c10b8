"""The `gaveurs` CLI against the test Redis."""

from __future__ import annotations

import json

import redis
from typer.testing import CliRunner

from ops.cli import app


def test_schedules_lists_every_entry(clean_redis: redis.Redis) -> None:
    table = CliRunner().invoke(app, ["schedules"])
    assert table.exit_code == 0, table.output
    assert "backup-database-daily" in table.output and "0 3 * * *" in table.output
    listing = CliRunner().invoke(app, ["schedules", "--json"])
    body = json.loads(listing.output)
    assert body["schedulers_alive"] == 0
    assert {entry["name"] for entry in body["entries"]} >= {
        "broker-maintenance",
        "health-check-periodic",
    }
