"""`gaveurs search ...` on the test database (and Redis for the enqueue commands)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from domain import search
from domain.platform import db
from domain.platform.settings import get_settings
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


def test_demo_data_is_searchable_as_soon_as_it_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # make run loads the demo before any worker or clock runs: no index_changes job comes yet
    url = f"sqlite:///{tmp_path}/fresh.db"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        db.migrate(url)
        loaded = runner.invoke(app, ["demo-data", "--scale", "0.05", "--today", "2026-01-08"])
        assert loaded.exit_code == 0, loaded.output
        assert "search index:" in loaded.output
        status = json.loads(runner.invoke(app, ["search", "status", "--json"]).output)
        assert status["pending_changes"] == 0 and status["documents"].get("lot", 0) > 0
        found = runner.invoke(app, ["search", "query", "foie", "--json"])
        assert found.exit_code == 0, found.output
        assert json.loads(found.output)["total"]["value"] > 0
    finally:
        get_settings.cache_clear()
