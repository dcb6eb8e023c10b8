"""The aggregates' refresh on a real PostgreSQL while batches are being stored: ids are taken
when a row is written and seen when its transaction commits, so a batch may commit after one
with higher ids. A refresh between the two must not step its watermark over the first."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from domain import aggregates, demo
from domain.ingest import SqalBatch, store_batch
from domain.models import Grade, SqalSample, SqalStatsHourly
from domain.platform import db
from ops.local_postgres import PostgresServer

pytestmark = pytest.mark.slow


@pytest.fixture()
def engine(postgres: PostgresServer) -> Iterator[Engine]:
    url = postgres.create_database("aggregates_race")
    db.migrate(url)
    made = db.make_engine(url)
    summary = demo.load_if_empty(made, seed=7, scale=0.05, today=date(2026, 1, 8))
    assert summary is not None
    with db.session_factory(made)() as session, session.begin():
        aggregates.refresh_aggregates(session)
    yield made
    made.dispose()


def _batch(device: str, lot_id: int, samples: int) -> SqalBatch:
    start = datetime(2026, 1, 8, 9, tzinfo=UTC)
    return SqalBatch.model_validate(
        {
            "device_id": device,
            "batch_id": f"{device}-1",
            "lot_id": lot_id,
            "samples": [
                {
                    "measured_at": (start + timedelta(minutes=n)).isoformat(),
                    "tof_zones_mm": [40.0] * 64,
                    "liver_weight_g": 600.0,
                    "grade": Grade.A.value,
                }
                for n in range(samples)
            ],
        }
    )


def _aggregated_and_stored(engine: Engine) -> tuple[int, int]:
    with db.session_factory(engine)() as session:
        aggregated = session.scalar(select(func.sum(SqalStatsHourly.samples))) or 0
        stored = session.scalar(select(func.count()).select_from(SqalSample)) or 0
    return int(aggregated), int(stored)


def test_a_batch_that_commits_after_a_later_one_is_still_aggregated(engine: Engine) -> None:
    lot_id = 3001
    # Given a batch stored but not yet committed (its ids taken), and a second batch stored
    # and committed after it (higher ids)
    first = db.session_factory(engine)()
    first.begin()
    store_batch(first, _batch("early", lot_id, 30))
    with db.session_factory(engine)() as second, second.begin():
        store_batch(second, _batch("late", lot_id, 20))

    # When a refresh runs meanwhile, and the first batch commits while it runs
    outcomes: list[dict[str, Any]] = []

    def refresh() -> None:
        with db.session_factory(engine)() as session, session.begin():
            outcomes.append(aggregates.refresh_aggregates(session))

    running = threading.Thread(target=refresh)
    running.start()
    time.sleep(1.0)
    first.commit()
    first.close()
    running.join(timeout=60)
    # (it waited for the first batch's commit, and folded both batches)
    assert [outcome["new_sqal_samples"] for outcome in outcomes] == [50]
    # and the next refresh runs too
    with db.session_factory(engine)() as session, session.begin():
        aggregates.refresh_aggregates(session)

    # Then every stored sample is in the hourly stats, the first batch's included
    aggregated, stored = _aggregated_and_stored(engine)
    assert aggregated == stored
