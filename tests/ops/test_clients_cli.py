"""`gaveurs clients ...`: create prints the token once, list never shows it, rotate and revoke
refuse the old token; jobs the CLI sends are submitted by "cli"."""

from __future__ import annotations

import json
import os
import uuid

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from domain.platform import clients, db
from ops.cli import app
from runtime import records
from tests.support import jobs  # noqa: F401  (declares `flaky`)

runner = CliRunner()


def gaveurs(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _find(token: str) -> clients.Client | None:
    with Session(db.make_engine(os.environ["DATABASE_URL"])) as session:
        return clients.find(session, token)


def test_create_list_rotate_revoke(demo_database: str) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = json.loads(gaveurs("clients", "create", name, "-s", "jobs:write", "--json"))
    token = created["token"]
    assert created["scopes"] == ["jobs:write"] and _find(token) is not None

    listing = gaveurs("clients", "list", "--json")
    assert name in listing and token not in listing

    rotated = json.loads(gaveurs("clients", "rotate", name, "--json"))
    assert _find(token) is None and _find(rotated["token"]) is not None

    revoked = json.loads(gaveurs("clients", "revoke", name, "--json"))
    assert revoked["status"] == "revoked" and _find(rotated["token"]) is None
    assert "already exists" in gaveurs("clients", "create", name, "-s", "admin", code=1)
    assert "unknown or no scopes" in gaveurs("clients", "create", "other-x", "-s", "root", code=1)
    assert "no API client named" in gaveurs("clients", "revoke", "nobody-here", code=1)


def test_jobs_the_cli_sends_are_submitted_by_cli(demo_database: str) -> None:
    # (a job without a uniqueness key: another test's queued health check would be returned)
    key = f"key={uuid.uuid4().hex}"
    sent = json.loads(gaveurs("enqueue", "flaky", "-p", key, "-p", "failures=0", "--json"))
    record = records().get(sent["task_id"])
    assert record is not None and record.client == "cli"
