"""`gaveurs workflow submit|show|cancel` against the test Redis, and --wait with a real worker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from ops.cli import app
from ops.local_redis import RedisServer
from runtime import broker
from tests.support import workflow_jobs  # noqa: F401  (declares the steps' jobs)
from tests.support.workers import WorkerProcess

runner = CliRunner()


def gaveurs(*args: str, code: int = 0, stdin: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exit_code == code, result.output
    return result.output


def graph(key: str) -> str:
    return json.dumps(
        {
            "name": "cli",
            "steps": [
                {"name": "a", "job": "number", "payload": {"key": key, "value": 4}},
                {
                    "name": "sum",
                    "job": "total",
                    "payload": {"key": f"{key}-sum"},
                    "depends_on": ["a"],
                    "receives": "results",
                },
            ],
        }
    )


@pytest.fixture()
def empty_default(redis_server: RedisServer, demo_database: str) -> Iterator[redis.Redis]:
    broker().flush("default")
    yield redis_server.client
    broker().flush("default")


def test_submit_show_cancel_without_a_worker(empty_default: redis.Redis) -> None:
    submitted: dict[str, Any] = json.loads(
        gaveurs("workflow", "submit", "-", "--json", stdin=graph("cli"))
    )
    workflow_id = submitted["workflow_id"]
    shown = json.loads(gaveurs("workflow", "show", workflow_id, "--json"))
    assert [(s["name"], s["state"]) for s in shown["steps"]] == [
        ("a", "PENDING"),
        ("sum", "WAITING"),
    ]
    assert "sum WAITING" in gaveurs("workflow", "show", workflow_id)
    cancelled = json.loads(gaveurs("workflow", "cancel", workflow_id, "--json"))
    assert cancelled["cancelled"] == [submitted["steps"]["a"]]
    assert "already finished" in gaveurs("workflow", "cancel", workflow_id, code=1)


def test_a_bad_graph_gets_a_message_naming_the_step(empty_default: redis.Redis) -> None:
    bad = json.loads(graph("bad"))
    bad["steps"][1]["depends_on"] = ["zz"]
    output = gaveurs("workflow", "submit", "-", stdin=json.dumps(bad), code=1)
    assert "step 'sum': depends on unknown step 'zz'" in output
    assert empty_default.llen("dramatiq:default") == 0
    assert "unknown workflow" in gaveurs("workflow", "show", "nope", code=1)


@pytest.mark.slow
def test_show_wait_draws_the_tree_until_the_workflow_ends(empty_default: redis.Redis) -> None:
    worker = WorkerProcess(empty_default, module="tests.support.workflow_jobs")
    try:
        key = uuid.uuid4().hex
        submitted = json.loads(gaveurs("workflow", "submit", "-", "--json", stdin=graph(key)))
        output = gaveurs("workflow", "show", submitted["workflow_id"], "--wait")
    finally:
        worker.stop()
    assert "SUCCESS 100%" in output and "sum SUCCESS" in output
