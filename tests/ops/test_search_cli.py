"""`gaveurs search ...` on the test database (and Redis for the enqueue commands)."""

from __future__ import annotations

import json
from typing import Any

import redis
from typer.testing import CliRunner

from domain import search
from domain.platform import db
from ops.cli import app

runner = CliRunner()


def test_query_and_status_read_the_index(demo_database: str) -> None:
    search.index_changes(db.make_engine(demo_database))
    found = runner.invoke(app, ["search", "query", "foies fondants", "--kind", "feedback",
                                "--limit", "2", "--json"])  # fmt: skip
    assert found.exit_code == 0, found.output
    body = json.loads(found.output)
    assert body["total"]["value"] > 0 and len(body["results"]) == 2
    status = runner.invoke(app, ["search", "status", "--json"])
    assert status.exit_code == 0 and json.loads(status.output)["pending_changes"] == 0


def test_a_bad_query_is_one_line_and_exit_1(demo_database: str) -> None:
    result = runner.invoke(app, ["search", "query", '"foie'])
    assert result.exit_code == 1
    assert "unbalanced quote" in result.output


def test_index_enqueues_the_job(clean_redis: redis.Redis, demo_database: str) -> None:
    result = runner.invoke(app, ["search", "index", "--json"])
    assert result.exit_code == 0, result.output
    body: dict[str, Any] = json.loads(result.output)
    assert body["job"] == "index_changes" and body["task_id"]
