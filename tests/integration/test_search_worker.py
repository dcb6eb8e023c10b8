"""The indexing jobs in a real worker: enqueued through the API, SIGKILLed mid-run."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, insert, select

from domain import demo, search
from domain.models import ConsumerFeedback
from domain.platform import db
from ops.local_redis import RedisServer
from tests.support.polling import wait_for
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow
EXTRA_COMMENTS = 30_000


def test_a_worker_killed_mid_run_loses_no_change(
    redis_server: RedisServer,
    clean_redis: redis.Redis,
    api_client: Any,
    auth: dict[str, str],
    tmp_path: Path,
) -> None:
    # Given a database whose change log holds ~30,000 changes (tens of batches to index)
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    db.migrate(url)
    engine = db.make_engine(url)
    demo.load_if_empty(engine, seed=7, scale=0.1, today=date(2026, 1, 8))
    created = datetime(2026, 1, 6, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(ConsumerFeedback),
            [
                {"lot_id": 3001 + n % 60, "created_at": created, "rating": 3, "texture": 3,
                 "taste": 3, "comment": f"avis numéro {n}, note zibeline"}
                for n in range(EXTRA_COMMENTS)
            ],
        )  # fmt: skip
    logged = search.status(engine)["pending_changes"]
    worker = WorkerProcess(
        redis_server.client,
        module="actors",
        env={"DATABASE_URL": url, "GAVEURS_TEST_TMP": str(tmp_path)},
        threads=1,
    )
    try:
        # When the run is enqueued through the API and the worker is SIGKILLed half-way
        answer = api_client.post("/api/tasks/search/index-changes", headers=auth)
        assert answer.status_code == 202, answer.text
        wait_for(
            lambda: 0 < search.status(engine)["pending_changes"] < logged - 2_000,
            timeout=60,
            interval=0.02,
            what="the run to commit a few batches",
        )
        worker.kill()
    finally:
        worker.stop()
    left = search.status(engine)
    assert 0 < left["pending_changes"] < logged, "the kill did not land mid-run"

    # Then what it committed is indexed and what it did not is still logged: a new run
    # brings the index to exactly one document per comment.
    outcome = search.index_changes(engine)
    assert outcome["changes"] == left["pending_changes"]
    with engine.connect() as connection:
        comments = connection.execute(select(func.count()).select_from(ConsumerFeedback))
        assert search.status(engine)["documents"]["feedback"] == comments.scalar_one()
    # (a window as wide as the comments: the API's counts stop at 1,000)
    found = search.search(engine, "zibeline", window=EXTRA_COMMENTS)
    assert found["total"] == {"value": EXTRA_COMMENTS, "relation": "eq"}
    assert search.status(engine)["pending_changes"] == 0
    engine.dispose()
    assert os.path.exists(tmp_path / "killed.db")
