"""Shared fixtures: a real redis-server for the whole run, a demo database, workers, API client.

The session starts one redis-server, points the environment at it and at a throw-away SQLite
file, and sets the job runtime up for those settings (`runtime.setup`), as an entry point does.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ops.local_redis import RedisServer, free_port

API_TOKEN = secrets.token_urlsafe(24)
ADMIN_TOKEN = secrets.token_urlsafe(24)


def soak_run() -> bool:
    """`make soak`: the fault-injection suite at scale (RELIABILITY_SCALE) or GAVEURS_SOAK=1."""
    return os.environ.get("RELIABILITY_SCALE", "1") != "1" or os.environ.get("GAVEURS_SOAK") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `soak` (long runs) are left out of `make test` and run by `make soak`."""
    if soak_run():
        return
    kept = [item for item in items if item.get_closest_marker("soak") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


#: The session's files (GAVEURS_TEST_TMP) are in a directory of this prefix.
SESSION_PREFIX = "gaveurs-tests-"


@pytest.fixture(scope="session", autouse=True)
def redis_server() -> Iterator[RedisServer]:
    """The test Redis, and the environment every test, worker and server process reads."""
    import runtime
    from domain.platform.settings import Settings, get_settings

    _remove_finished_sessions()
    tmp = Path(tempfile.mkdtemp(prefix=SESSION_PREFIX))
    (tmp / "owner.pid").write_text(str(os.getpid()))
    server = RedisServer()
    os.environ.update(
        {
            "ENVIRONMENT": "test",
            "REDIS_URL": server.url,
            "DATABASE_URL": f"sqlite:///{tmp}/gaveurs.db",
            "EXPORT_DIR": str(tmp / "exports"),
            "BACKUP_DIR": str(tmp / "backups"),
            "API_TOKEN": API_TOKEN,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "GAVEURS_TEST_TMP": str(tmp),
            # Fast failure detection so crash tests take seconds, not minutes.
            "WORKER_HEARTBEAT_TIMEOUT_MS": "3000",
            "dramatiq_prom_port": str(free_port()),
        }
    )
    get_settings.cache_clear()
    runtime.setup(Settings())
    yield server
    server.stop()


def _remove_finished_sessions() -> None:
    """The directories of earlier sessions whose pytest has exited (database, exports, worker
    logs: a failed run's are there until the next run). Not at this session's own exit: the job
    journal's thread may still be writing its last rows there."""
    for directory in Path(tempfile.gettempdir()).glob(f"{SESSION_PREFIX}*"):
        try:
            owner = int((directory / "owner.pid").read_text())
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(directory, ignore_errors=True)
        except (FileNotFoundError, ValueError):
            # Made before sessions named their owner: gone once a day old.
            if time.time() - directory.stat().st_mtime > 86_400:
                shutil.rmtree(directory, ignore_errors=True)
        except OSError:
            pass  # another user's live session


@pytest.fixture(scope="session")
def tmp_root(redis_server: RedisServer) -> Path:
    return Path(os.environ["GAVEURS_TEST_TMP"])


@pytest.fixture(scope="session")
def demo_database() -> str:
    """The test database, migrated and loaded with a small deterministic demo dataset."""
    from datetime import date

    from domain import demo
    from domain.platform import db

    url = os.environ["DATABASE_URL"]
    db.migrate(url)
    demo.load_if_empty(db.make_engine(url), seed=7, scale=0.1, today=date(2026, 1, 8))
    return url


@pytest.fixture()
def api_client(demo_database: str) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from domain.platform.settings import Settings

    with TestClient(create_app(Settings())) as client:
        yield client


@pytest.fixture()
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture()
def admin_auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture()
def clean_redis(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """The test Redis with no scheduler state, an empty `default` queue and no pending debounced
    run, before and after."""
    from runtime import broker
    from tests.support.scheduler import clear_scheduler_state

    client = redis_server.client

    def clean() -> None:
        clear_scheduler_state(client)
        broker().flush("default")
        # Debounced runs the flush dropped without a record update (an operator's purge
        # revokes them): their keys would answer later requests with runs that never start.
        for key in client.scan_iter("gaveurs:debounce:*"):
            client.delete(key)

    clean()
    yield client
    clean()
